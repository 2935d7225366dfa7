"""`doit lock [TEXT ...]`: move every pin in `stacks.lock` (or only those the texts name:
a chart, a source URL, a `*` pattern) to the newest commit, chart version or file
content. It runs only when named, and plans nothing first: planning would resolve (and
could fail on) exactly what is being re-locked."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed
from doit.task import Task

from .errors import StackyardError
from .plan_cache import access_files_read
from .sources.resolver import Sources, frozen
from .workspace import Workspace

LOCK_TASK = "lock"


def relock_and_report(root: Path, only: tuple[str, ...] = ()) -> None:
    """Re-resolve; print each pin that moved (stdout), then how many did (stderr)."""
    if frozen():
        raise StackyardError("STACKYARD_FROZEN is set, so stacks.lock must not change; "
                             "re-lock without it")
    sources = Sources(root)
    sources.read_every_access_file(root)
    for file in access_files_read(Workspace.at(root)):  # of git-sourced stacks too
        sources.access.register(file)
    lock = sources.lock
    pins = len(lock.pins) + len(lock.charts) + len(lock.files)  # before any is dropped
    moved = sources.relock(only)
    for line in moved:
        print(line)
    print(f"{len(moved)} of {pins} pin(s) in {lock.path.name} moved", file=sys.stderr)


def relock(workspace: Workspace, pins: list[str] | None) -> TaskFailed | None:
    """`pins`: doit's positional arguments after `lock`."""
    try:
        relock_and_report(workspace.root, tuple(pins or ()))
    except StackyardError as err:
        return TaskFailed(str(err))
    return None


class AsksAnew:
    """Never up to date: the newest commit or version is only known by asking."""

    def __call__(self, task: object, values: dict[str, Any]) -> bool:
        return False

    def __str__(self) -> str:  # what `doit info lock` says
        return "`doit lock` asks every pinned source for its newest commit or version"


def lock_task(workspace: Workspace) -> Task:
    return Task(LOCK_TASK, [(relock, (workspace,))], uptodate=[AsksAnew()], verbosity=2,
                pos_arg="pins",
                doc="re-resolve every branch, tag, chart version and download in "
                    "stacks.lock to its newest commit / version / content; `doit lock TEXT` "
                    "only the pins TEXT names: a chart, a source URL, a * pattern (run only "
                    "when named)")
