"""Progress lines on stderr for long runs, nothing extra for short ones."""

from __future__ import annotations

import io

import pytest
from doit.exceptions import TaskFailed
from doit.task import Task

from rules.progress import ProgressReporter


def nothing() -> None:
    """The action of each task; the reporter never runs it."""


def run_report(count: int, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    tasks = {f"t{i}": Task(f"t{i}", [(nothing, ())]) for i in range(count)}
    tasks["group"] = Task("group", None, task_dep=list(tasks), has_subtask=True)
    out = io.StringIO()
    reporter = ProgressReporter(out, {})
    reporter.initialize(tasks, ["group"])
    for task in tasks.values():
        if task.actions:
            reporter.execute_task(task)
            reporter.add_success(task)
    return out.getvalue(), capsys.readouterr().err


def test_long_run_reports_every_twentieth(capsys: pytest.CaptureFixture[str]) -> None:
    out, err = run_report(2000, capsys)
    lines = err.splitlines()
    assert len(lines) == 20
    assert lines[0].startswith("stackyard: 100/2000 tasks done")
    assert lines[-1].startswith("stackyard: 2000/2000 tasks done")
    assert out.count(".  t") == 2000, "doit's own lines are unchanged"


def test_short_run_prints_only_what_doit_prints(capsys: pytest.CaptureFixture[str]) -> None:
    out, err = run_report(499, capsys)
    assert err == ""
    assert out.splitlines()[0] == ".  t0"


def test_a_run_ends_with_one_line_saying_what_it_did(
        capsys: pytest.CaptureFixture[str]) -> None:
    names = ["render:c1:s", "render:c1:s/web", "render:c2:s", "render:c2:s/web", "c1", "c2",
             "fetch:http://charts/kured@1.0.0", "retire:old"]
    tasks = {name: Task(name, [(nothing, ())]) for name in names}
    tasks["render"] = Task("render", None, task_dep=names[:4], has_subtask=True)
    reporter = ProgressReporter(io.StringIO(), {})
    reporter.initialize(tasks, list(tasks))
    tasks["render:c2:s"].values = {"digest": "d", "reused": True}  # as render_node says
    for name, task in tasks.items():
        if name in ("render:c2:s/web", "c2"):
            reporter.add_failure(task, TaskFailed("broken template"))
        else:
            reporter.add_success(task)
    reporter.complete_run()
    summary = capsys.readouterr().err.splitlines()[-1]
    assert summary.startswith("stackyard: 3 renders (1 found in the store), 1 cluster "
                              "written, 1 download, 1 cluster retired, 1 render failed, "
                              "1 cluster not written (")


def test_a_run_that_ran_nothing_says_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = ProgressReporter(io.StringIO(), {})
    reporter.initialize({}, [])
    reporter.complete_run()
    assert capsys.readouterr().err == ""
