"""doit's console report, plus a progress line on stderr during long runs.

A cold build of a large fleet runs for minutes; CI logs then show how far it got and
about how long is left. Short runs print exactly what doit prints.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from doit.reporter import ConsoleReporter

LONG_RUN = 500
"""Runs with at least this many tasks report progress, about every 5 %."""


class ProgressReporter(ConsoleReporter):
    desc = "console output, with progress on stderr for runs of 500 tasks or more"

    def initialize(self, tasks: dict[str, Any], selected_tasks: list[str]) -> None:
        super().initialize(tasks, selected_tasks)
        self.total = sum(1 for task in tasks.values() if task.actions)
        self.finished = 0
        self.every = max(100, self.total // 20)
        self.started = time.monotonic()

    def add_success(self, task: Any) -> None:
        super().add_success(task)
        self._finished_one()

    def add_failure(self, task: Any, fail: Any) -> None:
        super().add_failure(task, fail)
        self._finished_one()

    def _finished_one(self) -> None:
        self.finished += 1
        if self.total < LONG_RUN or self.finished % self.every:
            return
        elapsed = time.monotonic() - self.started
        left = elapsed / self.finished * (self.total - self.finished)
        sys.stderr.write(f"stackyard: {self.finished}/{self.total} tasks done, "
                         f"{elapsed:.0f} s so far, about {left:.0f} s left\n")
        sys.stderr.flush()
