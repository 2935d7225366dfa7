"""Content digests (xxh3_128) of values, files and folders.

A render's up-to-date key is one digest over everything that changes its output and nothing
else, so paths are hashed relative to the folder being hashed and mtimes never enter.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import xxhash

from .errors import StackyardError


def canonical_json(value: Any) -> bytes:
    """One byte string per value: sorted keys, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_value(value: Any) -> str:
    return xxhash.xxh3_128_hexdigest(canonical_json(value))


def digest_file(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            return xxhash.xxh3_128_hexdigest(handle.read())
    except OSError as err:
        raise StackyardError(f"cannot read: {err.strerror}", file=path) from err


def digest_tree(root: Path) -> str:
    """Digest of every file below `root` (names relative to it, contents, executable bit)."""
    hasher = xxhash.xxh3_128()
    for relative, path, executable in _walk(root, ""):
        hasher.update(f"{relative}\0{int(executable)}\0{digest_file(path)}\n".encode())
    return hasher.hexdigest()


def _walk(directory: Path, prefix: str) -> list[tuple[str, Path, bool]]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as err:
        raise StackyardError(f"cannot list folder: {err.strerror}", file=directory) from err
    found: list[tuple[str, Path, bool]] = []
    for entry in entries:
        relative = f"{prefix}{entry.name}"
        info = entry.stat()  # follows symlinks, as Helm does when it loads a chart
        if stat.S_ISDIR(info.st_mode):
            found.extend(_walk(Path(entry.path), relative + "/"))
        elif stat.S_ISREG(info.st_mode):
            found.append((relative, Path(entry.path), bool(info.st_mode & stat.S_IXUSR)))
    return found
