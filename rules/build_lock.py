"""One build at a time per repository. Two builds of different commits at once would each
write some clusters last (a mixed `generated/`), and one's housekeeping could drop the
renders the other has just stored. A second build waits for the first, as a second
`cargo build` or `apt-get` does."""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .errors import display_path, warn

if TYPE_CHECKING:  # workspace.py imports the render store, which imports this module
    from .workspace import Workspace

_held: dict[Path, IO[str] | None] = {}
"""Held until the process ends: `doit -n` workers, forked later, share the lock."""


def hold_build_lock(workspace: Workspace) -> None:
    """Wait for the repository's lock and hold it until the process ends, with this
    process's id in the file for the next one to name."""
    path = workspace.state_dir / "build.lock"
    if path in _held:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 (kept open for the life of the process)
        _wait_for(handle)
    except OSError as err:  # no locks on this file system (NFS without lockd, some FUSE)
        warn(f"cannot lock {display_path(path)} ({err.strerror}): two builds of this "
             "repository started at once would not wait for each other")
        _held[path] = None
        return
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _held[path] = handle


@contextmanager
def no_build_but_this(state_dir: Path) -> Iterator[bool]:
    """Whether no other build of the repository runs, for the block's length: this process
    holds the build lock (a forked `doit -n` worker shares it: callers tell one apart),
    or takes it now without waiting."""
    path = state_dir / "build.lock"
    if _held.get(path) is not None:
        yield True
        return
    try:
        handle = open(path, "a")  # noqa: SIM115 (closed below, which releases the lock)
    except OSError:
        yield False
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by a build, or no locks on this file system
            yield False
            return
        yield True


def _wait_for(handle: IO[str]) -> None:
    """Lock `handle`'s file, saying whose build it waits for when it has to."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        print(f"stackyard: another build of this repository is running (pid {holder}); "
              "waiting for it to finish", file=sys.stderr, flush=True)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except KeyboardInterrupt:
            raise SystemExit("interrupted while waiting for the other build") from None
