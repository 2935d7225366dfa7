"""`QueueAheadRunner`: a worker takes its next task while the main process is still busy
with the previous result, and doit's semantics (dependencies, failures) are unchanged.

Each test writes a small dodo.py and runs the real `doit -n` on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.doit_runner import doit, write

# The main process reports t0's success slowly: until t1 has started, for at most
# {report_wait} s (doit's own runner starts no task meanwhile, so its wait is short);
# every task records whether the report of the first task had finished when it started.
DODO = """
import time
from pathlib import Path
from doit.reporter import ConsoleReporter
from rules.runner import use_stackyard_runners

if {queue_ahead}:
    use_stackyard_runners()
HERE = Path(__file__).parent


class SlowReporter(ConsoleReporter):
    def add_success(self, task):
        super().add_success(task)
        if task.name == "t0":
            deadline = time.monotonic() + {report_wait}
            while not (HERE / "t1.started").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            (HERE / "t0-reported").touch()


DOIT_CONFIG = {{"reporter": SlowReporter, "backend": "json", "dep_file": str(HERE / "db.json")}}


def started(name):
    reported = (HERE / "t0-reported").exists()
    (HERE / f"{{name}}.started").write_text("after" if reported else "before")
    if name == "{failing}":
        return False


def task_t():
    for n in range(4):
        yield {{"basename": f"t{{n}}", "actions": [(started, (f"t{{n}}",))],
               "verbosity": 2}}
    yield {{"basename": "last", "actions": [(started, ("last",))],
           "task_dep": [f"t{{n}}" for n in range(4)], "verbosity": 2}}
"""


def _fleet(tmp_path: Path, *, queue_ahead: bool, failing: str = "") -> Path:
    write(tmp_path / "dodo.py", DODO.format(queue_ahead=queue_ahead, failing=failing,
                                            report_wait=60 if queue_ahead else 0.5))
    return tmp_path


def _started(root: Path, name: str) -> str:
    return (root / f"{name}.started").read_text()


def test_next_task_starts_while_main_process_reports(tmp_path: Path) -> None:
    root = _fleet(tmp_path, queue_ahead=True)
    run = doit(root, "-n", "1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert _started(root, "t1") == "before"  # queued ahead: did not wait for t0's report
    assert _started(root, "last") == "after"  # waits for its dependencies, as in doit


def test_doit_runner_waits_for_each_report(tmp_path: Path) -> None:
    """The same dodo with doit's own runner: the difference the test above detects."""
    root = _fleet(tmp_path, queue_ahead=False)
    run = doit(root, "-n", "1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert _started(root, "t1") == "after"


def _outcome(tmp_path: Path, *, queue_ahead: bool, continue_: bool) -> tuple[int, set[str]]:
    root = _fleet(tmp_path / str(queue_ahead), queue_ahead=queue_ahead, failing="t1")
    run = doit(root, "-n", "2", *(["--continue"] if continue_ else []))
    assert "TaskFailed - taskid:t1" in run.stdout, run.stdout + run.stderr
    return run.returncode, {p.stem for p in root.glob("*.started")}


@pytest.mark.parametrize("continue_", [False, True])
def test_failure_handled_as_by_doit(tmp_path: Path, continue_: bool) -> None:
    """Exit status and which tasks ran match doit's own runner. Tasks already queued when
    a task fails still run: doit's runner, too, finishes tasks that were under way."""
    ours = _outcome(tmp_path, queue_ahead=True, continue_=continue_)
    assert ours[0] != 0
    assert "last" not in ours[1]  # depends on the failed task
    if continue_:
        assert ours == _outcome(tmp_path, queue_ahead=False, continue_=continue_)
        assert ours[1] == {"t0", "t1", "t2", "t3"}
    else:
        assert ours[0] == _outcome(tmp_path, queue_ahead=False, continue_=continue_)[0]


PID_DODO = """
import os, time
from pathlib import Path
from rules.runner import STORED, use_stackyard_runners

use_stackyard_runners()
HERE = Path(__file__).parent
DOIT_CONFIG = {"backend": "json", "dep_file": str(HERE / "db.json")}


def record_pid(name):
    (HERE / f"{name}.pid").write_text(str(os.getpid()))
"""
"""The head of a dodo whose tasks record the process that ran them (`<name>.pid`)."""

DEPENDENT_DODO = PID_DODO + """

def work(name):
    # a `then` task waits (a minute at most) until another has started: on the other worker
    record_pid(name)
    deadline = time.monotonic() + 60
    while name != "first" and len(list(HERE.glob("then*.pid"))) < 2:
        if time.monotonic() > deadline:
            return
        time.sleep(0.01)


def task_first():
    return {"actions": [(work, ("first",))]}


def task_then():
    for n in range(4):
        yield {"name": str(n), "actions": [(work, (f"then{n}",))], "task_dep": ["first"]}
"""


def test_every_worker_starts_when_first_tasks_hold_the_rest(tmp_path: Path) -> None:
    """Only one task is ready at the start (a download all renders wait for): the other
    worker must still be there for the tasks it unblocks."""
    write(tmp_path / "dodo.py", DEPENDENT_DODO)
    run = doit(tmp_path, "-n", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    pids = {(tmp_path / f"then{n}.pid").read_text() for n in range(4)}
    assert len(pids) == 2


STORED_DODO = PID_DODO + """

def task_t():
    for n in range(4):
        yield {"name": str(n), "actions": [(record_pid, (f"t{n}",))], "verbosity": 2,
               "meta": {STORED: True} if n % 2 else None}
    yield {"name": "last", "actions": [(record_pid, ("last",))], "verbosity": 2,
           "task_dep": [f"t:{n}" for n in range(4)], "meta": {STORED: True}}
"""


def test_a_task_whose_render_is_stored_runs_in_the_main_process(tmp_path: Path) -> None:
    """It only records what is there: a round trip to a worker would cost more."""
    write(tmp_path / "dodo.py", STORED_DODO)
    run = doit(tmp_path, "-n", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    pid = {name: (tmp_path / f"{name}.pid").read_text() for name in
           ("t0", "t1", "t2", "t3", "last")}
    assert pid["t1"] == pid["t3"] == pid["last"] != pid["t0"]
    assert pid["t2"] != pid["last"]
    assert run.stdout.count(".  t:") == 5
