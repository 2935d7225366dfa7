"""Content digests of input files, remembered between runs by (inode, size, mtime, ctime).

A file is hashed again whenever any of the four changed. Unlike doit's md5 checker this
cannot be fooled by an edit whose mtime was restored (`cp -p`, `rsync -a`, a CI cache
restore): every such write also sets the inode's ctime, which user space cannot set back.
A fresh checkout changes every ctime, so a CI clone re-hashes each input once.

As git does ("racy clean"), a digest taken within a timestamp tick of the file's last
change is not remembered: an edit of the same size later in that tick would leave all four
as they were. Such a file is hashed again the next time, when its change is in the past.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from .errors import StackyardError, display_path

FileKey = tuple[int, int, int, int]

RACY_NS = 2_000_000_000
"""A file changed less than this long before it is hashed may change again within the same
timestamp tick: FAT's tick is 2 s, ext3's and HFS+'s 1 s, and Linux stamps even
nanosecond file systems from a clock that moves a few milliseconds at a time."""


@dataclass
class FileState:
    """Path -> (stat key, digest), loaded with the plan cache and saved after the run."""

    digests: dict[str, tuple[FileKey, str]] = field(default_factory=dict)
    made: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Cluster -> (what its `provenance.json` is made from, that file's content digest),
    so a no-op build works it out once, not every run."""
    changed: bool = False
    seen: set[str] = field(default_factory=set, repr=False, compare=False)
    """Paths this process took a digest of: what `prune` keeps. Not saved."""

    def __getstate__(self) -> dict[str, object]:
        """Saved while `changed` (that is why it is saved): it must load unchanged, or
        every no-op run would save it again."""
        return {name: value for name, value in self.__dict__.items()
                if name not in ("seen", "changed")}

    def __setstate__(self, state: dict[str, object]) -> None:
        """A memo that an earlier Stackyard saved lacks the newer fields."""
        self.__dict__.update({"made": {}, **state, "changed": False, "seen": set()})

    def prune(self, keep: Callable[[str], bool]) -> None:
        """Forget every file this process did not look at, unless `keep(path)`: files
        deleted or no longer read, and all of them after the repository moved (a CI
        runner checks out to a new path each job). Called only when the memo is saved
        anyway, so a no-op run pays nothing."""
        stale = [name for name in self.digests.keys() - self.seen if not keep(name)]
        for name in stale:
            del self.digests[name]
        self.changed = self.changed or bool(stale)

    def file_digest(self, path: Path | str) -> str | None:
        """Digest of a regular file's bytes, or None when it does not exist."""
        name = os.fspath(path)
        try:
            info = os.stat(name)
        except OSError:  # absent, a loop of links: the reader of the file says which
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        return self._digest(name, info)

    def tree_digest(self, root: Path | str, skip: Iterable[Path] = ()) -> str | None:
        """Digest of a folder (names, executable bits, contents; the names of its
        sub-folders, empty ones too), or None when absent: of its `tree_listing`."""
        listing = self.tree_listing(root, skip)
        return None if listing is None else listing_digest(listing)

    def tree_listing(self, root: Path | str, skip: Iterable[Path] = ()
                     ) -> dict[str, str] | None:
        """Each file of a folder by relative name with its executable bit and digest,
        then each sub-folder (`name/`) and unreadable entry; None when absent.

        The files and folders in `skip` (Stackyard's own state, output and lock file,
        rewritten by builds) are left out, and so is what a `.git` folder holds: a chart at
        the repository root holds them, and they are never chart content. That there is a
        `.git` folder counts, as any sub-folder does: a static folder must not have one.

        Links are followed, as Helm does; a link to a folder that contains it is an error
        (Helm would follow it until the path is too long, and two such links in a folder
        make that walk exponential). Folders on the current path are known by
        (device, inode), so two links to one shared folder are no loop."""
        top = os.fspath(root)
        try:
            top_info = os.stat(top)
        except OSError:
            return None
        if not stat.S_ISDIR(top_info.st_mode):
            return None
        skipped = set()
        for folder in skip:
            with contextlib.suppress(OSError):  # absent: nothing to leave out
                info = os.stat(folder)
                skipped.add((info.st_dev, info.st_ino))
        stack = [(top, "", ((top_info.st_dev, top_info.st_ino),))]
        entries: list[tuple[str, str, os.stat_result]] = []
        folders: list[tuple[str, str]] = []
        unreadable: list[tuple[str, str]] = []
        while stack:
            folder, prefix, above = stack.pop()
            for entry in os.scandir(folder):
                try:
                    info = entry.stat()  # follows symlinks, as Helm does
                except OSError as err:  # a link to nowhere: the render reading it says so
                    unreadable.append((f"{prefix}{entry.name}", str(err.errno)))
                    continue
                if stat.S_ISDIR(info.st_mode):
                    folder_key = (info.st_dev, info.st_ino)
                    if folder_key in skipped:
                        continue
                    folders.append((f"{prefix}{entry.name}/", ""))
                    if entry.name == ".git":
                        continue
                    if folder_key in above:
                        raise StackyardError(
                            f"a link to {display_path(os.path.realpath(entry.path))}, a "
                            "folder that contains the link: a loop of links, which Helm "
                            "would follow for ever; remove the link or point it elsewhere",
                            file=entry.path)
                    stack.append((entry.path, f"{prefix}{entry.name}/", (*above, folder_key)))
                elif stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in skipped:
                    entries.append((f"{prefix}{entry.name}", entry.path, info))
        listing = {relative: f"{int(bool(info.st_mode & stat.S_IXUSR))}\0"
                             f"{self._digest(path, info)}"
                   for relative, path, info in sorted(entries)}
        listing.update(sorted(unreadable + folders, key=_as_line))
        return listing

    def _digest(self, name: str, info: os.stat_result) -> str:
        self.seen.add(name)
        key = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        known = self.digests.get(name)
        if known is not None and known[0] == key:
            return known[1]
        hashed_at = time.time_ns()
        try:
            with open(name, "rb") as handle:
                digest = content_digest(handle.read())
        except OSError as err:  # no permission: the reader of the file says so
            return f"unreadable:{err.errno}"
        if max(info.st_mtime_ns, info.st_ctime_ns) > hashed_at - RACY_NS:
            if self.digests.pop(name, None) is not None:  # not trusted: hashed next time
                self.changed = True
            return digest
        self.digests[name] = (key, digest)
        self.changed = True
        return digest


def content_digest(content: bytes) -> str:
    """What `file_digest` gives a file holding `content`."""
    return xxhash.xxh3_128_hexdigest(content)


def _as_line(entry: tuple[str, str]) -> str:
    """The order of sub-folders and unreadable entries in a listing: by their line."""
    name, detail = entry
    return f"{name}\0{detail}\n"


def listing_digest(listing: dict[str, str]) -> str:
    """The digest of a folder, from its `FileState.tree_listing`."""
    hasher = xxhash.xxh3_128()
    for name, detail in listing.items():
        # fsencode: a name that is not UTF-8 comes back as the bytes it was on disk
        hasher.update(os.fsencode(f"{name}\0{detail}\n"))
    return hasher.hexdigest()
