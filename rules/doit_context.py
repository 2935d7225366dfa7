"""Which doit command is loading the tasks, and which task names it was given.

doit hands the command to its task loader but not to task creators, so the command is read
from the loader's call frame. Only `run`-like commands (those that execute tasks) get a
pruned task list; `list`, `info`, `forget` and the rest always see every task.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

from doit.cmd_base import DoitCmdBase


@dataclass(frozen=True)
class Invocation:
    executes_tasks: bool
    selected: tuple[str, ...]
    """The task names before the first option: what follows an option is doit's to judge
    (`doit c1 -v 2` is an option after a task name, which doit refuses as such)."""
    state: tuple[str, str] = ("", "")
    """doit's state backend and file, as this command uses them (`--backend`, `--db-file`
    override the dodo's settings)."""
    always: bool = False
    """`doit -a`: run every selected task, up to date or not."""
    command: str = ""

    def reads_state(self, database: Path) -> bool:
        """doit keeps its records in `database` (where pruning reads them)."""
        backend, file = self.state
        return backend == "sqlite3" and bool(file) and Path(file).resolve() == database.resolve()


def current_invocation() -> Invocation:
    """The running doit command; when it cannot be found, behave like `list` (prune nothing)."""
    frame = sys._getframe(1)
    while frame is not None:
        command = frame.f_locals.get("self")
        if isinstance(command, DoitCmdBase) and frame.f_code.co_name == "execute":
            args = frame.f_locals.get("args") or ()
            params = frame.f_locals.get("params") or {}
            return Invocation(bool(command.execute_tasks),
                              tuple(takewhile(lambda arg: not arg.startswith("-"), args)),
                              (str(params.get("backend", "")), str(params.get("dep_file", ""))),
                              bool(params.get("always")), command.name)
        frame = frame.f_back
    return Invocation(executes_tasks=False, selected=())
