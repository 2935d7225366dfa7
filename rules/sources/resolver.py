"""Sources for the planner: a (source, ref) pinned by the lock, its files from the store.

A ref missing from the lock is resolved (fetching) and added to it, unless
`STACKYARD_FROZEN=1`: then it is an error and nothing is fetched.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import StackyardError, join_key
from ..model import ComponentDef
from .lockfile import LockFile
from .redact import redact
from .store import SourceError, Store


def ref_of(entry: ComponentDef) -> str:
    """Fabrikate: `version` wins, then `branch`, else the default branch (HEAD)."""
    return entry.version or entry.branch or "HEAD"


def frozen() -> bool:
    return os.environ.get("STACKYARD_FROZEN", "") not in ("", "0")


class Sources:
    """One per planning run; the lock file is read once and rewritten when a pin is added."""

    def __init__(self, root: Path, store: Store | None = None) -> None:
        self.store = store or Store()
        self.lock = LockFile.load(root)

    def directory(self, entry: ComponentDef) -> Path:
        """`<checkout of source at ref>/<path>`; errors name the entry's file and key."""
        ref = ref_of(entry)
        where = {"file": entry.file, "key": entry.key or "source"}
        described = f"{entry.name!r} ({redact(entry.source)} at {ref})"
        if not entry.source:
            raise StackyardError(f"git component {entry.name!r} has no source",
                                 file=entry.file, key=join_key(entry.key, "source"))
        try:
            root = self.store.checkout(entry.source, self._commit(entry.source, ref))
        except SourceError as err:
            raise StackyardError(f"git source of {described}: {err}", **where) from None
        directory = Path(os.path.normpath(root / entry.path.lstrip("/")))
        if not directory.is_relative_to(root):
            raise StackyardError(f"path {entry.path!r} of {described} leaves the repository",
                                 file=entry.file, key=join_key(entry.key, "path"))
        if not directory.is_dir():
            raise StackyardError(f"path {entry.path!r} does not exist in {described}",
                                 file=entry.file, key=join_key(entry.key, "path"))
        return directory

    def _commit(self, url: str, ref: str) -> str:
        pinned = self.lock.pins.get((url, ref))
        if pinned is not None:
            return pinned
        if frozen():
            raise SourceError(f"{ref!r} is not pinned in {self.lock.path.name} and "
                              "STACKYARD_FROZEN is set; run a build without it to pin it")
        commit = self.store.resolve(url, ref)
        self.lock.pins[(url, ref)] = commit
        self.lock.save()
        return commit

    def relock(self) -> dict[tuple[str, str], tuple[str, str]]:
        """Re-resolve every pin to the newest commit; returns the pins that moved."""
        moved = {}
        for (url, ref), old in sorted(self.lock.pins.items()):
            try:
                new = self.store.resolve(url, ref)
            except SourceError as err:
                raise StackyardError(str(err), file=self.lock.path) from None
            if new != old:
                moved[(url, ref)] = (old, new)
                self.lock.pins[(url, ref)] = new
        if moved:
            self.lock.save()
        return moved
