"""The fleet benchmark itself runs and judges its scenarios (no timing is asserted here:
speed is measured by running the bench, not by tests)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.doit_runner import REPO


@pytest.mark.parametrize(("clusters", "components"), [(2, 2), (3, 1)])
def test_bench_runs_every_scenario_with_exact_render_counts(
        tmp_path: Path, clusters: int, components: int) -> None:
    """Fewer clusters than attempts (the same cluster edited again) and one Helm slot (the
    same slot bumped again): every attempt is still a real change of known effect."""
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "fleet.py"), "--clusters", str(clusters),
         "--components", str(components), "--base", str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    scenarios = report["scenarios"]
    assert list(scenarios) == ["cold", "cold_parallel", "noop", "touch", "cluster_layer",
                               "shared_stack", "chart"]
    nodes = clusters * (components + 1)  # clusters x (slots + the stack's root)
    by_design = {"cold": nodes, "cold_parallel": nodes, "noop": 0, "touch": 0,
                 "cluster_layer": components, "shared_stack": clusters, "chart": clusters}
    for name, expected in by_design.items():
        scenario = scenarios[name]
        assert (scenario["renders"], scenario["expected"]) == (expected, expected), name
        assert scenario["ok"] and scenario["returncode"] == 0, (name, scenario["error"])
        runs = 3 if name in ("noop", "cluster_layer", "shared_stack", "chart") else 1
        assert [(a["renders"], a["expected"], a["ok"]) for a in scenario["attempts"]] == \
            [(expected, expected, True)] * runs, name
    assert report["ok"] is True
    assert len(report["floors"]["floor_engine_runs_s"]) == 2
    assert set(report["targets"]) >= {"noop_s", "touch_s", "cold_over_floor_engine",
                                      "parallel_speedup", "peak_rss_mib"}
    assert list(tmp_path.iterdir()) == []  # the temporary fleet is removed


def test_phases_times_each_phase_of_a_real_build(tmp_path: Path) -> None:
    """`bench/phases.py` on the example fleet: one plan, every render and cluster timed."""
    for folder in ("stacks", "environments"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    shutil.copy(REPO / "dodo.py", tmp_path / "dodo.py")
    result = subprocess.run([sys.executable, str(REPO / "bench" / "phases.py"), str(tmp_path)],
                            capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    renders = sum(1 for line in result.stdout.splitlines() if line.startswith(".  render:"))
    assert report["exit_status"] == 0 and renders > 0
    (phases,) = report["processes"].values()  # serial: all in the one process
    assert phases["plan"]["calls"] == 1
    assert phases["render"]["calls"] == renders
    assert phases["assemble"]["calls"] == len(list((tmp_path / "environments").iterdir()))


def test_peak_rss_is_the_sum_over_the_process_tree() -> None:
    """Three processes of ~100 MiB each at once: the tree's peak, not the largest one."""
    from bench.fleet import run_doit

    child = "b = b'x' * (100 << 20); import time; time.sleep(1.5)"
    parent = ("import subprocess, sys; "
              f"kids = [subprocess.Popen([sys.executable, '-c', {child!r}]) for _ in (1, 2)]; "
              f"exec({child!r}); [k.wait() for k in kids]")
    run = run_doit(REPO, Path(sys.executable), "-c", parent, timeout=60)
    assert run.returncode == 0, run.output_tail
    assert 100 <= run.max_process_rss_mib < 150
    assert run.peak_rss_mib >= 300


def test_a_run_is_judged_by_the_names_of_its_renders_not_their_count() -> None:
    """One render executed, one expected, but not the same one: not ok, and both named."""
    from bench.fleet import DoitRun, scenario

    run = DoitRun(0.1, 0, 1.0, 1.0, ("render:eu-west-0000:fleet/s00", "eu-west-0000"), "")
    judged = scenario("cluster_layer", run, ["eu-west-0001\tfleet/s00"], 1, "an edit", None)
    assert not judged.ok
    assert (judged.unexpected, judged.missing) == (1, 1)
    assert judged.unexpected_names == ["render:eu-west-0000:fleet/s00"]
    assert judged.missing_names == ["render:eu-west-0001:fleet/s00"]
    matched = scenario("cluster_layer", run, ["eu-west-0000\tfleet/s00"], 1, "an edit", None)
    assert matched.ok and (matched.unexpected, matched.missing) == (0, 0)


def test_touch_sets_a_past_mtime_outside_the_racy_window(tmp_path: Path) -> None:
    """A future mtime would keep every touched file racy (hashed again by every run) for
    seconds after the touch scenario."""
    from bench.fleet import touch_inputs
    from rules.filestate import RACY_NS

    for top in ("stacks/fleet/config", "environments"):
        (tmp_path / top).mkdir(parents=True)
        (tmp_path / top / "a.yaml").write_text("a: 1\n")
    paths = [p for top in ("stacks", "environments") for p in (tmp_path / top).rglob("*")]
    for _ in range(2):  # touched again: still a new mtime
        before = {p: p.stat().st_mtime_ns for p in paths}
        assert touch_inputs(tmp_path) == len(paths) == 4
        now = time.time_ns()
        for path in paths:
            mtime = path.stat().st_mtime_ns
            assert mtime < now - RACY_NS and mtime != before[path], path


def test_incremental_targets_are_noop_plus_a_quarter_over_the_engine_time() -> None:
    """Issue 4's formula, with the quoted 500x20 run's cluster_layer figures: missed."""
    from bench.fleet import EngineFloor, Scenario, judge

    def run(name: str, wall_s: float, engine_s: float) -> Scenario:
        return Scenario(name, wall_s, 0, 0, 0, 0, 0, 100.0, 100.0, True, "", engine_s)

    results = {r.name: r for r in (
        run("cold", 33.344, 27.3883), run("cold_parallel", 28.699, 27.3883),
        run("noop", 0.502, 0), run("touch", 0.449, 0), run("cluster_layer", 0.526, 0.0089),
        run("shared_stack", 4.071, 1.0348), run("chart", 3.674, 1.5804))}
    engine = EngineFloor(seconds=29.23, start_seconds=0.0416)
    _, targets = judge(results, engine, 0.0451, 500)
    assert targets["cluster_layer_s"] == {"target": "<= 0.513", "actual": 0.526,
                                          "met": False}
    assert targets["shared_stack_s"]["target"] == "<= 1.795"
    assert targets["chart_s"]["target"] == "<= 2.478"


def gone(pid: int) -> bool:
    """The process has ended (a zombie waiting for init counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_run_killed_by_the_timeout_says_so_and_takes_its_workers(tmp_path: Path) -> None:
    from bench.fleet import run_doit

    worker = "import time; time.sleep(60)"
    doit = ("import subprocess, sys; "
            f"w = subprocess.Popen([sys.executable, '-c', {worker!r}]); "
            "print('worker', w.pid, flush=True); w.wait()")
    run = run_doit(tmp_path, Path(sys.executable), "-c", doit, timeout=1)
    assert run.returncode == -9 and run.seconds < 10
    assert run.output_tail.startswith("killed after 1 s (--timeout), with its workers: "
                                      "return code -9")
    worker_pid = int(run.output_tail.split("worker ")[1].split()[0])
    deadline = time.monotonic() + 5
    while not gone(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(worker_pid)


def test_sigterm_stops_doit_and_removes_the_temporary_fleet(tmp_path: Path) -> None:
    """SIGTERM while `doit -n 2` runs: no doit process is left in the fleet, no fleet left."""
    bench = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "fleet.py"), "--clusters", "4",
         "--components", "3", "--base", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert bench.stderr is not None
    for line in bench.stderr:
        if line.startswith("[bench] cold_parallel:"):
            break
    in_fleet: list[int] = []
    deadline = time.monotonic() + 10
    while len(in_fleet) < 3 and time.monotonic() < deadline:  # doit and its two workers
        in_fleet = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                    if cwd_of(pid).startswith(str(tmp_path))]
    assert in_fleet  # doit is running in the fleet
    bench.terminate()
    _, rest = bench.communicate(timeout=60)
    assert bench.returncode == 128 + 15, rest
    assert "terminated by signal 15" in rest
    deadline = time.monotonic() + 5
    while not all(gone(pid) for pid in in_fleet) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(gone(pid) for pid in in_fleet)
    assert list(tmp_path.iterdir()) == []


def cwd_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def test_help_describes_scenarios_output_and_exit_status() -> None:
    import bench.fleet

    result = subprocess.run([sys.executable, str(REPO / "bench" / "fleet.py"), "--help"],
                            capture_output=True, text=True, check=True)
    for word in ("cold_parallel", "cluster_layer", "shared_stack", "JSON object on stdout",
                 "exit status", "1 when", "--timeout SECONDS", "--base DIR"):
        assert word in result.stdout, word
    usage = bench.fleet.__doc__.split("\n\n")[1]
    assert "--base" in usage and "--timeout" in usage
