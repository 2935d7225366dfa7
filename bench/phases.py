"""Where one `doit` build's time goes, by phase, for each process that did work.

    .venv/bin/python bench/phases.py FLEET [doit arguments, e.g. -n 2] | tail -1

Runs doit in this process on FLEET (a fleet folder with stackyard's dodo.py, e.g. one kept
by `fleet.py --keep`) with timers around planning (`load_fleet`), each render
(`render_node`) and each cluster's output (`assemble_cluster`), and prints one JSON object:
for each process, the wall seconds spent in each phase and how many calls, and for the main
process of a `-n` build the CPU seconds its dispatch loop used, as the last line of
stdout, after doit's own report. Make the change to measure first (e.g. edit the shared stack's
`config/common.yaml`): this command only builds.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from doit.cmd_base import DodoTaskLoader
from doit.doit_cmd import DoitMain

import rules.fleet
import rules.runner
import rules.tasks


def timed(log: Path, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, appending `pid phase seconds` to `log` after each call (forked workers
    append to the same file)."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            with log.open("a") as handle:
                handle.write(f"{os.getpid()} {phase} {time.perf_counter() - began}\n")
    return wrapper


def install_timers(log: Path) -> None:
    rules.fleet.load_fleet = timed(log, "plan", rules.fleet.load_fleet)
    rules.tasks.render_node = timed(log, "render", rules.tasks.render_node)
    rules.tasks.assemble_cluster = timed(log, "assemble", rules.tasks.assemble_cluster)
    run_tasks = rules.runner.QueueAheadRunner.run_tasks

    def dispatch_cpu(runner: rules.runner.QueueAheadRunner, dispatcher: Any) -> None:
        began = time.process_time()
        try:
            run_tasks(runner, dispatcher)
        finally:
            with log.open("a") as handle:
                handle.write(f"{os.getpid()} dispatch_cpu {time.process_time() - began}\n")
    rules.runner.QueueAheadRunner.run_tasks = dispatch_cpu  # type: ignore[method-assign]


def summary(log: Path) -> dict[int, dict[str, dict[str, float]]]:
    phases: dict[int, dict[str, dict[str, float]]] = defaultdict(dict)
    for line in log.read_text().splitlines():
        pid, phase, seconds = line.split()
        entry = phases[int(pid)].setdefault(phase, {"seconds": 0.0, "calls": 0})
        entry["seconds"] = round(entry["seconds"] + float(seconds), 4)
        entry["calls"] += 1
    return phases


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        raise SystemExit(__doc__)
    fleet, arguments = Path(sys.argv[1]).resolve(), sys.argv[2:]
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "phases.log"
        log.touch()
        install_timers(log)
        os.chdir(fleet)
        began = time.perf_counter()
        status = DoitMain(DodoTaskLoader()).run(arguments)
        wall = time.perf_counter() - began
        print(json.dumps({"exit_status": status, "wall_s": round(wall, 3),
                          "processes": summary(log)}))


if __name__ == "__main__":
    main()
