"""Write files so that a reader never sees half of one: write a temp file, rename it.

The temp file is written beside its target, or in a scratch folder on the same disk
(`temp_dir`): then a process killed mid-write (SIGKILL, power loss) leaves its temp file
there, not in a folder that users commit, and `remove_abandoned` clears it later. One
left beside its target (the scratch folder was on another disk) is cleared by
`remove_abandoned_beside` when its folder is written again.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import itertools
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

_known_folders: set[str] = set()
_cross_device: set[str] = set()  # target folders a rename from `temp_dir` cannot reach
_devices: dict[str, int] = {}  # scratch folder -> its st_dev
_sequence = itertools.count()
# Temp names carry the process id and this token: a container often gives every CI run the
# same few process ids, so a leftover of a killed run can bear the id of the running one.
_RUN_TOKEN = os.urandom(4).hex()


def write_atomic(path: Path | str, content: bytes, temp_dir: Path | str | None = None
                 ) -> None:
    """Write `content` to a temp file (mode 0644), then rename it into place at `path`.

    Folders already seen in this process are not created again: at 10,000 files the
    failing mkdir calls alone cost a build ~0.4 s. A `temp_dir` on another file system
    than `path` (a rename cannot cross; in CI, `.stackyard/` is often a link to a cache
    volume) is given up for the folder beside `path`, found once per folder.
    """
    target = os.fspath(path)
    folder = os.path.dirname(target)
    if folder not in _known_folders:
        os.makedirs(folder, exist_ok=True)
        _known_folders.add(folder)
        if temp_dir is not None and os.stat(folder).st_dev != _device(os.fspath(temp_dir)):
            _cross_device.add(folder)
    scratch = folder if temp_dir is None or folder in _cross_device else os.fspath(temp_dir)
    temp = f"{scratch}/{temp_name(os.path.basename(target))}"
    try:
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileNotFoundError:  # a folder was removed since this process saw it
        _known_folders.discard(folder)
        _devices.pop(scratch, None)
        return write_atomic(path, content, temp_dir)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.replace(temp, target)
    except OSError as err:
        Path(temp).unlink(missing_ok=True)
        if err.errno == errno.EXDEV and scratch != folder:
            _cross_device.add(folder)
            return write_atomic(path, content)
        raise
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def temp_name(base: str) -> str:
    """`.<base>.<pid>-<token>.<n>.tmp`: what `remove_abandoned` recognises as this
    process's scratch."""
    return f".{base[:100]}.{os.getpid()}-{_RUN_TOKEN}.{next(_sequence)}.tmp"


def _device(scratch: str) -> int:
    """The file system of the scratch folder (made when first needed)."""
    if scratch not in _devices:
        os.makedirs(scratch, exist_ok=True)
        _devices[scratch] = os.stat(scratch).st_dev
    return _devices[scratch]


def remove_abandoned(temp_dir: Path) -> int:
    """Delete the temp files and folders in `temp_dir` of processes that are gone, and
    those of an earlier process that had this one's id; returns how many."""
    try:
        names = os.listdir(temp_dir)
    except FileNotFoundError:
        return 0
    removed = 0
    for name in names:
        parts = name.rsplit(".", 3)
        pid, _, token = parts[1].partition("-") if len(parts) == 4 else ("", "", "")
        if parts[-1] != "tmp" or not pid.isdigit():
            continue
        if _abandoned(int(pid), token):
            path = temp_dir / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
    return removed


def remove_abandoned_beside(folders: Iterable[str]) -> None:
    """Delete the temp files that `write_atomic` left in `folders` (beside their targets:
    the scratch folder was on another file system) when their writer is gone. These are
    folders users commit, so only a regular file named exactly as `temp_name` names them,
    whose process id is not running on this host (or is this process's, with another
    run's token), is removed."""
    for folder in folders:
        try:
            entries = os.scandir(folder)
        except OSError:  # absent, or not a folder: nothing of ours in it
            continue
        with entries:
            for entry in entries:
                found = _TEMP_FILE.fullmatch(entry.name)
                if found and _abandoned(int(found[1]), found[2]) \
                        and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)


_TEMP_FILE = re.compile(r"\..+\.([0-9]+)-([0-9a-f]{8})\.[0-9]+\.tmp", re.DOTALL)
"""A name `temp_name` makes, with its process id and token."""


def _abandoned(pid: int, token: str) -> bool:
    """A temp file's writer is gone: its process is not running, or this process has its
    id but not its token (a killed run in a container that reused the id)."""
    return not _running(pid) or (pid == os.getpid() and token != _RUN_TOKEN)


def fresh_temp_folder(folder: Path, prefix: str, abandoned_after: float = 86400) -> Path:
    """A new temp folder `<prefix>…` in `folder`, to build something in. Older ones of the
    prefix, last changed over `abandoned_after` seconds ago, are a killed process's
    (SIGKILL runs no clean-up; a live one is done long before): removed first. A caller
    that holds the lock of what it builds passes 0: no one else builds it."""
    cutoff = time.time() - abandoned_after
    for path in folder.glob(glob.escape(prefix) + "*"):
        with contextlib.suppress(OSError):
            if path.lstat().st_mtime <= cutoff:
                shutil.rmtree(path, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=folder, prefix=prefix))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
