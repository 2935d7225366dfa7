"""Where the store lives, and which of its entries holds a path."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

CACHE_TAG = "CACHEDIR.TAG"
"""Marks the store as a cache (https://bford.info/cachedir/): backup tools skip it, and so
does the search for a repository's own `access.yaml` files when the store is inside it."""
_CACHE_TAG_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                   "# This file is a cache directory tag created by Stackyard (its source "
                   "store).\n# For information about cache directory tags, see "
                   "https://bford.info/cachedir/\n")


def cache_root() -> Path:
    """`$STACKYARD_CACHE` (default `~/.cache/stackyard`), absolute and with its links
    resolved: store paths are compared with others by their text (`store_entry`)."""
    return _resolved(os.environ.get("STACKYARD_CACHE") or "~/.cache/stackyard",
                     os.environ.get("HOME", ""), os.getcwd())


@lru_cache(maxsize=8)
def _resolved(configured: str, home: str, cwd: str) -> Path:
    """Once per text and the HOME and folder it is read against."""
    return Path(cwd, Path(configured).expanduser()).resolve()


def tag_cache_root() -> None:
    """Write the store's `CACHEDIR.TAG` unless it is there (before every write)."""
    tag = cache_root() / CACHE_TAG
    if not tag.exists():
        tag.parent.mkdir(parents=True, exist_ok=True)
        tag.write_text(_CACHE_TAG_TEXT)


def stored_checkout(path: Path) -> Path | None:
    """The stored commit checkout (`trees/<url hash>/<commit>`) holding `path`, if any."""
    entry = store_entry(path)
    return entry if entry is not None and entry.parent.parent.name == "trees" else None


def store_entry(path: Path) -> Path | None:
    """The store entry holding `path` (a commit's checkout, an unpacked chart), if any:
    what fetched definitions may read. Another team's stack or chart must not reach the
    build machine's own folders through `path: ../..` or a `file://` dependency."""
    root = cache_root()
    for area in ("trees", "charts"):
        if path.is_relative_to(root / area):
            parts = path.relative_to(root / area).parts
            return root / area / parts[0] / parts[1] if len(parts) >= 2 else None
    return None
