"""One lock file per store entry: two builds (or doit workers) never write it twice."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .cache import tag_cache_root


@contextmanager
def locked(lock: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `lock` (created if needed) for the block. Every write
    to the store takes one first, so a store that cannot be written is said here."""
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        tag_cache_root()
        handle = open(lock, "a")  # noqa: SIM115 (closed below, after the block)
    except OSError as err:
        from .store import SourceError  # store.py imports this module

        raise SourceError(f"cannot write to the source store {err.filename}: {err.strerror} "
                          "(STACKYARD_CACHE names another folder)") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
