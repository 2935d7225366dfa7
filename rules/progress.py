"""doit's console report, plus a progress line on stderr during long runs and one summary
line at the end of a run that ran tasks; failures on stderr too (stdout lists the tasks).

A cold build of a large fleet runs for minutes; CI logs then show how far it got, about
how long is left, and at the end what the run did.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from doit.reporter import ConsoleReporter

from .lock_task import LOCK_TASK

LONG_RUN = 500
"""Runs with at least this many tasks report progress, about every 5 %."""

_DONE = {"render": ("render", "renders"), "fetch": ("download", "downloads"),
         "retire": ("cluster retired", "clusters retired"),
         "": ("cluster written", "clusters written")}
_FAILED = {"render": ("render failed", "renders failed"),
           "fetch": ("download failed", "downloads failed"),
           "retire": ("cluster not retired", "clusters not retired"),
           "": ("cluster not written", "clusters not written")}

_ORDER = ("render", "", "fetch", "retire")


def _kind(task: Any) -> str:
    """`render`, `fetch`, `retire`, or "" for a cluster's output task."""
    prefix, colon, _ = task.name.partition(":")
    return prefix if colon and prefix in _DONE else ""


class ProgressReporter(ConsoleReporter):
    desc = "console output, with progress on stderr for runs of 500 tasks or more"

    def initialize(self, tasks: dict[str, Any], selected_tasks: list[str]) -> None:
        super().initialize(tasks, selected_tasks)
        self.total = sum(1 for task in tasks.values() if task.actions)
        self.finished = 0
        self.every = max(100, self.total // 20)
        self.started = time.monotonic()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.reused = 0  # renders found in the store: the same inputs rendered before

    def skip_uptodate(self, task: Any) -> None:
        """Not said of a group task (`render`, `fetch`): it has nothing of its own."""
        if task.actions:
            super().skip_uptodate(task)

    def add_success(self, task: Any) -> None:
        super().add_success(task)
        if task.actions and task.name != LOCK_TASK:
            self.counts[_DONE[_kind(task)]] += 1
            self.reused += bool(task.values.get("reused"))
        self._finished_one(task)

    def add_failure(self, task: Any, fail: Any) -> None:
        super().add_failure(task, fail)
        if task.actions and task.name != LOCK_TASK:
            self.counts[_FAILED[_kind(task)]] += 1
        self._finished_one(task)

    def _write_failure(self, result: dict[str, Any], write_exception: bool = True) -> None:
        with self._on_stderr():
            super()._write_failure(result, write_exception)

    @contextmanager
    def _on_stderr(self) -> Iterator[None]:
        """Failures and errors go where the progress and summary go: a CI job that sends
        the one-line-per-task list to a file still shows why it failed."""
        stdout, self.outstream = self.outstream, sys.stderr
        try:
            yield
        finally:
            self.outstream = stdout

    def complete_run(self) -> None:
        """After doit's own report, e.g. `stackyard: 14 renders, 2 clusters written, 1 render
        failed, 1 cluster not written (0.4 s)`."""
        with self._on_stderr():  # doit writes only failures and errors here
            super().complete_run()
        if not self.counts:
            return
        order = [_DONE[kind] for kind in _ORDER] + [_FAILED[kind] for kind in _ORDER]
        parts = [f"{count} {single if count == 1 else plural}"
                 for (single, plural) in order if (count := self.counts[single, plural])]
        if self.reused:
            parts[0] += f" ({self.reused} found in the store)"
        sys.stderr.write(f"stackyard: {', '.join(parts)} "
                         f"({time.monotonic() - self.started:.1f} s)\n")

    def _finished_one(self, task: Any) -> None:
        if not task.actions:  # a group task (`render`, `fetch`): nothing ran
            return
        self.finished += 1
        if self.total < LONG_RUN or self.finished % self.every:
            return
        elapsed = time.monotonic() - self.started
        left = elapsed / self.finished * (self.total - self.finished)
        sys.stderr.write(f"stackyard: {self.finished}/{self.total} tasks done, "
                         f"{elapsed:.0f} s so far, about {left:.0f} s left\n")
        sys.stderr.flush()
