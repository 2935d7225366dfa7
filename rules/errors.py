"""Errors and warnings that point the user at a file and a key path."""

from __future__ import annotations

import sys
from pathlib import Path


class StackyardError(Exception):
    """A problem with the user's input: says where (file, key path) and what was expected."""

    def __init__(self, message: str, *, file: Path | str | None = None, key: str = "") -> None:
        self.file = str(file) if file is not None else None
        self.key = key
        self.message = message
        where = self.file or ""
        if key:
            where = f"{where}: {key}" if where else key
        super().__init__(f"{where}: {message}" if where else message)


def warn(message: str) -> None:
    """Warnings go to stderr so that they never end up in captured manifests."""
    print(f"stackyard: warning: {message}", file=sys.stderr)


def join_key(base: str, key: object) -> str:
    """Dotted key path, with list indexes in brackets: `subcomponents[1].name`."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else str(key)
