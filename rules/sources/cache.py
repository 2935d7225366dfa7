"""Where the store lives, and which of its entries holds a path."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("STACKYARD_CACHE") or Path.home() / ".cache" / "stackyard")


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
