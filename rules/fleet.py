"""The few lines a `dodo.py` needs: doit settings and the task creator for one repo root."""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from doit.exceptions import InvalidDodoFile
from doit.task import Task

from .build_lock import hold_build_lock
from .doit_context import current_invocation
from .errors import StackyardError, access_problem, display_path, show_paths_from, warn
from .housekeeping import tidy
from .lock_task import LOCK_TASK, lock_task
from .plan_cache import load_fleet, save_file_memo
from .progress import ProgressReporter
from .runner import stop_on_sigterm, use_stackyard_runners
from .tasks import check_patterns, every_task_name, fleet_tasks
from .workspace import Workspace

CHANGES_STATE = frozenset({"clean", "forget", "ignore", "reset-dep"})
"""doit commands that run no task but change `generated/` or doit's records: they wait
for a build, as a second build does."""


def doit_config(root: Path) -> dict[str, Any]:
    """State in `.stackyard/doit.sqlite3` (transactional, unlike doit's dbm/json defaults),
    and doit's console report with progress lines for long runs."""
    workspace = Workspace.at(root)
    try:
        workspace.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # read by doit when it imports dodo.py: no place for a traceback
        raise SystemExit(f"ERROR: {workspace.display(workspace.state_dir)}: cannot make "
                         f"Stackyard's state folder: {err.strerror}") from None
    _drop_if_unreadable(workspace.doit_db)
    return {"backend": "sqlite3", "dep_file": str(workspace.doit_db), "verbosity": 1,
            "reporter": ProgressReporter,
            # doit 0.37 crashes on a bare `doit forget` when no default tasks are set
            "forget_disable_default": True}


def _drop_if_unreadable(database: Path) -> None:
    """doit stops with a traceback on a damaged state file. It only records what ran: the
    renders stay in the render store, so starting again costs a re-check, not a rebuild."""
    if database.is_dir():
        raise SystemExit(f"ERROR: {database}: a folder where doit keeps its state file; "
                         "move it away")
    if not database.is_file():
        return
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            connection.execute("select count(*) from sqlite_master").fetchone()
        finally:
            connection.close()
    except sqlite3.OperationalError as err:  # busy (another build) is not damage
        problem = access_problem(database)
        if problem:
            raise SystemExit(f"ERROR: {display_path(database)}: cannot open doit's state "
                             f"file: {err}{problem}") from None
        return
    except sqlite3.DatabaseError:
        warn(f"ignoring unreadable doit state {database} (every task is checked again)")
        database.unlink()


_NAMING_TASKS = frozenset({"run", "info", "list", "forget", "ignore", "clean", "reset-dep"})
"""doit commands whose arguments are task names (`help` takes topics, `lock` pins)."""
_EXACT_NAMES = frozenset({"info", "list", "forget", "ignore", "reset-dep"})
"""Those of them that take no patterns (only `run` and `clean` do)."""


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Planning builds ~100 objects per node and creates none in cycles; Python's cyclic
    collector would re-scan them all again and again (a third of planning 10,000 nodes).
    Afterwards they are frozen out of later collections, which stay on for the renders."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def tasks_for(root: Path) -> Callable[[], Iterator[Task]]:
    workspace = Workspace.at(root)
    show_paths_from(root)

    def task_stackyard() -> Iterator[Task]:
        """Stackyard: plan the fleet, hand doit the tasks that are not up to date."""
        invocation = current_invocation()
        if invocation.executes_tasks:
            stop_on_sigterm()
        if invocation.executes_tasks or invocation.command in CHANGES_STATE:
            hold_build_lock(workspace)
        if invocation.executes_tasks and invocation.selected[:1] == (LOCK_TASK,):
            yield lock_task(workspace)
            return
        if invocation.executes_tasks and LOCK_TASK in invocation.selected:
            others = " ".join(name for name in invocation.selected if name != LOCK_TASK)
            raise InvalidDodoFile(f"`{LOCK_TASK}` runs on its own, first on the command line "
                                  f"(what follows it names pins): run `doit {LOCK_TASK}`, "
                                  f"then `doit {others}`")
        with _no_cycle_collection():
            try:
                fleet = load_fleet(workspace, records_pins=invocation.executes_tasks)
                if invocation.executes_tasks:
                    use_stackyard_runners()
                    tidy(fleet, workspace)
                # pruning reads doit's records: only where Stackyard reads them; and
                # `doit -a` means every task
                prune = (invocation.executes_tasks and not invocation.always
                         and invocation.reads_state(workspace.doit_db))
                names = []
                for task in fleet_tasks(fleet, workspace, prune=prune,
                                        selected=invocation.selected):
                    names.append(task.name)
                    yield task
                save_file_memo(workspace, fleet.files, fleet.summaries)
                if not invocation.executes_tasks:
                    names.append(LOCK_TASK)
                    yield lock_task(workspace)  # listed and explained; runs only when named
                check_patterns(tuple(name for name in invocation.selected if "=" not in name),
                               names, exact=invocation.command
                               if invocation.command in _EXACT_NAMES else "",
                               known=partial(every_task_name, fleet)
                               if invocation.command in _NAMING_TASKS else None)
            except StackyardError as err:
                raise InvalidDodoFile(str(err)) from None
            except KeyboardInterrupt:  # Ctrl-C, or SIGTERM, while planning
                raise InvalidDodoFile("interrupted while planning; nothing was built") from None

    return task_stackyard
