"""doit's runners, with tasks queued ahead of the workers and no traceback on Ctrl-C.

doit's `MRunner` hands a worker its next task only after the main process has handled the
worker's previous result: with renders of a few milliseconds each, a worker waits for that
round trip after every task (measured: workers at 65-75 % CPU, `-n 2` barely faster than
serial). This runner keeps up to two tasks per worker waiting in the shared job queue, so
a worker that finishes takes the next task at once while the main process records the
previous result. Which tasks are ready, failures, `--continue` and the report are doit's
own; only the dispatch loop differs. Both runners end an interrupted run (Ctrl-C, or a
cancelled CI job's SIGTERM) with one line instead of doit's traceback.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import sqlite3
from typing import Any

import doit.cmd_run
from doit.exceptions import InvalidTask
from doit.runner import ERROR, JobHold, MRunner, Runner

STORED = "render already in the store"
"""A task's `meta` key: its render is in the store already, so running it only records
it (QueueAheadRunner runs it in the main process)."""
_QUEUED_PER_WORKER = 2
_PR_SET_PDEATHSIG = 1
_CHECK_WORKERS_EVERY_S = 1.0
_INTERRUPTED = ("interrupted: the tasks that finished are saved, and the next run "
                "continues from them")


def _stop_like_ctrl_c(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """A cancelled CI job sends SIGTERM: from here on, stop as for Ctrl-C, so that doit
    saves the finished tasks (set while planning too, so one line says what happened)."""
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)


class _SaysWhenStateIsNotSaved(Runner):
    """doit's `finish`, where saving the state may fail (a full disk): then one line says
    so, instead of a traceback that hides the run's own report."""

    def finish(self) -> int:
        try:
            self.dep_manager.close()
        except sqlite3.Error as err:
            self.reporter.runtime_error(f"cannot save doit's state ({err}); the next run "
                                        "checks this run's tasks again")
            self.final_result = ERROR
        self.teardown()
        self.reporter.complete_run()
        return int(self.final_result)


class InterruptibleRunner(_SaysWhenStateIsNotSaved):
    """doit's serial runner; Ctrl-C or SIGTERM ends the run as an error with one line, not
    a traceback. doit saves finished tasks either way."""

    def run_tasks(self, task_dispatcher: Any) -> None:
        stop_on_sigterm()
        try:
            super().run_tasks(task_dispatcher)
        except KeyboardInterrupt:
            raise InvalidTask(_INTERRUPTED) from None


class QueueAheadRunner(_SaysWhenStateIsNotSaved, MRunner):
    """`doit -n N` (process workers) with up to 2·N ready tasks queued at any time."""

    def run_tasks(self, task_dispatcher: Any) -> None:
        if self.num_process < 1:
            raise InvalidTask(f"-n {self.num_process}: the number of processes must be at "
                              "least 1")
        stop_on_sigterm()
        result_q = self.Queue()
        job_q = self.Queue()
        self._run_tasks_init(task_dispatcher)
        depth = _QUEUED_PER_WORKER * self.num_process
        dispatched = 0
        exhausted = False

        def dispatch(completed: Any) -> None:
            """Tell doit a task completed, then queue ready tasks up to `depth`. A render
            already in the store is recorded here: that costs less than a worker's round
            trip (pickling the task and its result, ~0.4 ms of this process's time)."""
            nonlocal dispatched, exhausted
            while not exhausted and (completed is not None or dispatched < depth):
                job = self.get_next_job(completed)
                completed = None
                if job is None:
                    exhausted = True
                elif job.type is JobHold.type:  # nothing ready until a result arrives
                    return
                elif (self.tasks[job.name].meta or {}).get(STORED):
                    completed = task_dispatcher.nodes[job.name]
                    self.process_task_result(completed, self.execute_task(completed.task))
                else:
                    job_q.put(job)
                    dispatched += 1

        workers: list[Any] = []
        try:
            dispatch(None)
            # As many workers as asked for, unless the whole run has fewer tasks: tasks
            # that wait for the first ones (downloads) still need every worker later.
            count = min(self.num_process, dispatched) if exhausted else self.num_process
            workers = [self.Child(target=self._worker,
                                  args=(os.getpid(), job_q, result_q, self.reporter.__class__))
                       for _ in range(count)]
            for worker in workers:
                worker.start()
            while dispatched:
                try:
                    result = result_q.get(timeout=_CHECK_WORKERS_EVERY_S)
                except queue.Empty:
                    _check_alive(workers)
                    continue
                if "exit" in result:
                    raise result["exit"](result["exception"])
                node = task_dispatcher.nodes[result["name"]]
                if "reporter" in result:
                    getattr(self.reporter, result["reporter"])(node.task)
                    continue
                dispatched -= 1
                self._process_result(node, node.task, result)
                dispatch(node)
            if not exhausted:
                raise RuntimeError("doit has tasks left but none is ready (a cycle?)")
        except (SystemExit, KeyboardInterrupt, Exception) as err:
            for worker in workers:
                worker.terminate()
            if isinstance(err, KeyboardInterrupt):
                raise InvalidTask(_INTERRUPTED) from None
            raise
        for _ in workers:
            job_q.put(None)
        for worker in workers:
            worker.join()
        while not result_q.empty():  # teardown reports, safe once the workers are gone
            result = result_q.get()
            getattr(self.reporter, result["reporter"])(task_dispatcher.tasks[result["name"]])

    def _worker(self, parent: int, job_q: Any, result_q: Any, reporter_class: Any) -> None:
        """doit's worker loop, ended with the main process. The main process handles
        Ctrl-C and SIGTERM, and ends the workers with SIGTERM: a worker dies of it quietly
        (the handler it inherited raised KeyboardInterrupt wherever it was, in
        multiprocessing's own exit code too, which printed a traceback), and ignores
        Ctrl-C (its hooks' processes still get it: a handler, unlike SIG_IGN, is not
        inherited across exec)."""
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, _left_to_the_main_process)
        _end_with(parent)
        self.execute_task_subprocess(job_q, result_q, reporter_class)


def _left_to_the_main_process(signum: int, frame: object) -> None:
    """A worker's Ctrl-C: the main process stops the run."""


def _end_with(parent: int) -> None:
    """Linux: SIGTERM this worker when the main process dies, even by SIGKILL; otherwise
    it would wait on its job queue for ever, holding its memory and the databases."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: no such guard
        return
    if os.getppid() != parent:  # it died before the guard was set
        os.kill(os.getpid(), signal.SIGTERM)


def _check_alive(workers: list[Any]) -> None:
    """A worker that ended while tasks were queued (the out-of-memory killer, a crash of
    the Helm library) never sends their results: say so, instead of waiting for ever."""
    for worker in workers:
        code = worker.exitcode
        if code is not None:
            how = ("was killed by signal 9 (out of memory?)" if code == -signal.SIGKILL
                   else f"ended by signal {-code}" if code < 0 else f"exited with status {code}")
            raise InvalidTask(f"a worker process {how} while running tasks; the tasks that "
                              "finished are saved, and the next run continues from them")


def use_stackyard_runners() -> None:
    """Make doit run tasks with `InterruptibleRunner`, and `doit -n N` (process mode) with
    `QueueAheadRunner`. doit 0.37 picks its runner class from `doit.cmd_run`'s globals
    after loading tasks and offers no setting for it."""
    if doit.cmd_run.MRunner is MRunner:
        doit.cmd_run.MRunner = QueueAheadRunner
    if doit.cmd_run.Runner is Runner:
        doit.cmd_run.Runner = InterruptibleRunner
