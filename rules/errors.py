"""Errors and warnings that point the user at a file and a key path."""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_said: set[str] = set()
_listeners: list[list[str]] = []
_root: list[str] = []
"""The repository root paths in messages are relative to, once a dodo names it."""


def show_paths_from(root: Path) -> None:
    """Messages name files relative to `root`: doit runs in the dodo's folder, which is
    not the root when the dodo lives elsewhere (`doit -f ci/dodo.py`)."""
    _root[:] = [os.fspath(root)]


def display_path(path: Path | str) -> str:
    """Paths in messages: relative to the repository root (else the working folder). A
    name that is not UTF-8 shows its odd bytes as `\\xe9`, not as Python's `\\udce9`."""
    text = os.fsencode(path).decode(errors="backslashreplace")
    if os.path.isabs(text):
        relative = os.path.relpath(text, *_root)
        if not relative.startswith(".."):
            return relative
    return text


class StackyardError(Exception):
    """A problem with the user's input: says where (file, key path) and what was expected."""

    def __init__(self, message: str, *, file: Path | str | None = None, key: str = "") -> None:
        self.file = display_path(file) if file is not None else None
        self.key = key
        self.message = message
        super().__init__(locate(message, file=file, key=key))


def locate(message: str, *, file: Path | str | None = None, key: str = "") -> str:
    """`<file>: <key path>: <message>`, leaving out what is not known."""
    where = [display_path(file)] if file is not None else []
    if key:
        where.append(key)
    return ": ".join([*where, message])


def warn(message: str, *, file: Path | str | None = None, key: str = "") -> None:
    """Warnings go to stderr so that they never end up in captured manifests, each once
    per process (stacks are shared by many clusters), and to every `collected_warnings`
    list open at the time, so that a cached plan or parse can say them again."""
    text = locate(message, file=file, key=key)
    for listener in _listeners:
        listener.append(text)
    if text not in _said:
        _said.add(text)
        print(f"stackyard: warning: {text}", file=sys.stderr)


@contextmanager
def collected_warnings() -> Iterator[list[str]]:
    """The warnings given inside the block, printed or not (each is printed once)."""
    said: list[str] = []
    _listeners.append(said)
    try:
        yield said
    finally:
        _listeners.pop()  # blocks nest: the last one opened is this one


def join_key(base: str, key: object) -> str:
    """Dotted key path, with list indexes in brackets: `subcomponents[1].name`."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else str(key)


def access_problem(database: Path) -> str:
    """"" or, for a database this user may not open (a CI cache restored by another user,
    under umask 077), `: <file> belongs to <user> ...` naming the first of its folder,
    file, -wal and -shm files this user may not read and write, and what to do."""
    for path in (database.parent, database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        try:
            info = path.stat()
        except OSError:
            continue
        if not os.access(path, os.R_OK | os.W_OK | (os.X_OK if path.is_dir() else 0),
                         effective_ids=True):
            me = _user(os.geteuid())
            return (f": {display_path(path)} belongs to {_user(info.st_uid)} (mode "
                    f"{info.st_mode & 0o777:o}) and this build runs as {me}: let {me} read "
                    "and write it (chown or chmod), or delete it (a cache: built again)")
    return ""


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
