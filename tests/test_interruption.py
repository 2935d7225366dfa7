"""A cancelled CI job (SIGTERM) keeps the work it finished: doit saves its state. A killed
one (SIGKILL) loses doit's record of that run, not the output or the renders."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rules.build_lock import hold_build_lock
from rules.workspace import Workspace
from tests.doit_runner import (
    DoitRun,
    copy_example_fleet,
    doit,
    install_dodo,
    one_cluster_fleet,
    snapshot,
    write,
    write_tree,
)


def quick_and_slow_fleet(root: Path) -> None:
    """Cluster a-quick renders at once; b-slow's hook sleeps a minute."""
    install_dodo(root)
    write_tree(root, {
        "stacks/quick/component.yaml": "name: quick\ntype: static\npath: m\n",
        "stacks/quick/m/a.yaml": "kind: A\n",
        "stacks/slow/component.yaml": "name: slow\ntype: static\npath: m\n"
                                      "hooks:\n  before-generate:\n    - sleep 60\n",
        "stacks/slow/m/b.yaml": "kind: B\n",
        "environments/a-quick.yaml": "stack: ../stacks/quick\n",
        "environments/b-slow.yaml": "stack: ../stacks/slow\n",
    })


def interrupt_once_the_quick_cluster_is_written(root: Path, how: signal.Signals,
                                                *arguments: str) -> None:
    process = subprocess.Popen([sys.executable, "-m", "doit", *arguments], cwd=root,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    finished = root / "generated/a-quick/provenance.json"
    deadline = time.monotonic() + 60
    while not finished.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert finished.exists(), "the quick cluster should finish while the slow one waits"
    time.sleep(0.5)  # let the slow cluster's hook start
    process.send_signal(how)
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0, output
    assert not (root / "generated/b-slow").exists()
    if how == signal.SIGTERM:
        assert "Traceback" not in output, output
        assert ("interrupted: the tasks that finished are saved, and the next run continues "
                "from them") in output
    # the slow hook is fixed; its `sleep` may still run, orphaned, in the old process group
    (root / "stacks/slow/component.yaml").write_text("name: slow\ntype: static\npath: m\n")


@pytest.mark.parametrize("parallel", [(), ("-n", "2")], ids=["serial", "n2"])
def test_sigterm_keeps_finished_clusters(tmp_path: Path, parallel: tuple[str, ...]) -> None:
    quick_and_slow_fleet(tmp_path)
    interrupt_once_the_quick_cluster_is_written(tmp_path, signal.SIGTERM, *parallel)

    again = doit(tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.executed == ["render:b-slow:slow", "b-slow"], "a-quick was kept"


def test_sigkill_keeps_the_output_and_the_renders(tmp_path: Path) -> None:
    quick_and_slow_fleet(tmp_path)
    interrupt_once_the_quick_cluster_is_written(tmp_path, signal.SIGKILL)
    written = snapshot(tmp_path / "generated/a-quick")
    mtime = (tmp_path / "generated/a-quick/quick.yaml").stat().st_mtime_ns

    again = doit(tmp_path)

    assert again.returncode == 0, again.stdout + again.stderr
    # doit has no record of the killed run, so a-quick's tasks are checked once more...
    assert again.executed == ["render:a-quick:quick", "a-quick", "render:b-slow:slow",
                              "b-slow"]
    # ...and find its render stored and its folder current: nothing is written again
    assert snapshot(tmp_path / "generated/a-quick") == written
    assert (tmp_path / "generated/a-quick/quick.yaml").stat().st_mtime_ns == mtime
    assert doit(tmp_path).executed == []


def test_two_builds_at_once_on_one_repo_both_finish_with_whole_output(
        tmp_path: Path) -> None:
    """Two CI jobs, or a developer's second terminal: the second waits for the first."""
    reference = copy_example_fleet(tmp_path / "reference")
    assert doit(reference).returncode == 0
    root = copy_example_fleet(tmp_path / "fleet")
    runs = [subprocess.Popen([sys.executable, "-m", "doit", *arguments], cwd=root,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for arguments in ((), ("-n", "2"))]
    for run in runs:
        output, _ = run.communicate(timeout=300)
        assert run.returncode == 0, output
    assert snapshot(root / "generated") == snapshot(reference / "generated")
    assert list((root / ".stackyard/tmp").iterdir()) == []
    assert doit(root).executed == []


def slow_fleet_telling_its_worker(root: Path) -> Path:
    """quick_and_slow_fleet, whose slow hook writes the pid of the process running it."""
    quick_and_slow_fleet(root)
    pid_file = root / "worker.pid"
    write(root / "stacks/slow/component.yaml", "name: slow\ntype: static\npath: m\n"
          f"hooks:\n  before-generate:\n    - echo $PPID > {pid_file}; sleep 60\n")
    return pid_file


def wait_for(path: Path) -> int:
    deadline = time.monotonic() + 60
    while not (path.exists() and path.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(path.read_text())


def gone(pid: int) -> bool:
    """Ended: no such process, or a zombie nobody has reaped yet."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_a_worker_that_dies_ends_the_run_with_an_error_instead_of_a_hang(
        tmp_path: Path) -> None:
    pid_file = slow_fleet_telling_its_worker(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "doit", "-n", "2"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        worker = wait_for(pid_file)
        subprocess.run(["kill", "-KILL", str(worker)], check=True)  # as the OOM killer does
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()  # the run itself must have ended by now; this only tidies a failure

    assert process.returncode != 0
    assert ("a worker process was killed by signal 9 (out of memory?) while running tasks; "
            "the tasks that finished are saved") in output, output
    assert "Traceback" not in output, output


def test_workers_end_when_the_main_process_is_killed(tmp_path: Path) -> None:
    pid_file = slow_fleet_telling_its_worker(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "doit", "-n", "2"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = wait_for(pid_file)
    process.kill()
    process.wait()
    deadline = time.monotonic() + 20  # the main process is gone: its worker must follow
    while not gone(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(worker), "a worker outlived the main process"


KILLER = """\
import os, signal
import rules.output as output
_write = output.write_atomic
def _killing_write(path, *args):
    if os.fspath(path).endswith(os.environ["KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return _write(path, *args)
output.write_atomic = _killing_write
from dodo import *
"""


@pytest.mark.parametrize("kill_at", ["dev/extra.yaml", "dev/kustomization.yaml",
                                     "dev/provenance.json"])
def test_a_cluster_write_killed_half_way_leaves_no_file_later_builds_cannot_remove(
        tmp_path: Path, kill_at: str) -> None:
    """provenance.json is the only record of what Stackyard wrote: a name is in it before
    its file is written. Killed at each write of a cluster gaining a component, then the
    component removed again: the next build removes its file."""
    root = copy_example_fleet(tmp_path / "fleet")
    assert doit(root).returncode == 0
    before = snapshot(root / "generated")
    definition = root / "stacks/platform/component.yaml"
    original = definition.read_text()
    write(root / "stacks/platform/extra/cm.yaml", "kind: ConfigMap\n")
    definition.write_text(original + "  - name: extra\n    type: static\n    path: extra\n")
    write(root / "killer.py", KILLER)
    killed = subprocess.run([sys.executable, "-m", "doit", "-f", "killer.py", "dev"], cwd=root,
                            env={**os.environ, "KILL_AT": kill_at}, capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    definition.write_text(original)
    assert doit(root).returncode == 0
    assert snapshot(root / "generated") == before


def test_a_new_cluster_killed_half_way_is_retired_when_its_environment_goes(
        tmp_path: Path) -> None:
    root = copy_example_fleet(tmp_path / "fleet")
    assert doit(root).returncode == 0
    before = snapshot(root / "generated")
    environment = root / "environments/pw.yaml"
    environment.write_text((root / "environments/prod-west.yaml").read_text())
    write(root / "killer.py", KILLER)
    killed = subprocess.run([sys.executable, "-m", "doit", "-f", "killer.py", "pw"], cwd=root,
                            env={**os.environ, "KILL_AT": "pw/web/web.yaml"},
                            capture_output=True)
    assert killed.returncode == -signal.SIGKILL and (root / "generated/pw").is_dir()
    environment.unlink()
    assert doit(root).returncode == 0
    assert snapshot(root / "generated") == before and not (root / "generated/pw").exists()


def test_a_second_build_of_one_repo_waits_for_the_first(tmp_path: Path) -> None:
    """Two builds at once could each write some clusters last (a mixed output), and one's
    housekeeping could drop the renders the other has just stored. The first build's hook
    holds it until the second has said that it waits (or a minute has passed)."""
    root = tmp_path / "fleet"
    quick_and_slow_fleet(root)
    write(root / "stacks/slow/component.yaml", "name: slow\ntype: static\npath: m\n"
          "hooks:\n  before-generate:\n    - touch ../../started; i=0; while [ ! -e ../../go ]"
          " && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n")
    first = subprocess.Popen([sys.executable, "-m", "doit"], cwd=root, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not (root / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    looking = doit(root, "list")  # commands that only look do not wait
    assert looking.returncode == 0 and "waiting" not in looking.stderr, looking.stderr
    second = subprocess.Popen([sys.executable, "-m", "doit", "-n", "2"], cwd=root, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert second.stderr is not None
    said = second.stderr.readline()  # its first line, or "" when it ends without one
    (root / "go").touch()
    second_output, second_rest = second.communicate(timeout=60)
    first_output, _ = first.communicate(timeout=60)
    assert first.returncode == 0, first_output
    assert second.returncode == 0, said + second_rest
    assert said == (f"stackyard: another build of this repository is running (pid "
                    f"{first.pid}); waiting for it to finish\n"), said + second_rest
    assert DoitRun(0, second_output, "").executed == []  # the first built everything


def test_a_build_stopped_while_planning_says_so_in_one_line(tmp_path: Path) -> None:
    """Planning fetches git sources; a cancelled job (SIGTERM) stops there with one line,
    not doit's traceback or a silent exit 143. The signal is sent once the fetch has
    connected to a server that never answers: the build is then planning."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.settimeout(60)
        root = tmp_path / "fleet"
        one_cluster_fleet(root, "{name: d, method: git, source: "
                                f"'http://127.0.0.1:{silent.getsockname()[1]}/x.git'}}")
        process = subprocess.Popen([sys.executable, "-m", "doit"], cwd=root, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        connection, _ = silent.accept()
        with connection:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert output.strip() == "ERROR: interrupted while planning; nothing was built"


@pytest.mark.parametrize("command", [("doit", "clean", "a-quick"), ("doit", "forget", "a-quick"),
                                     ("rules.sources", "lock")])
def test_clean_forget_and_lock_wait_for_a_build(tmp_path: Path, command: tuple[str, ...]
                                                ) -> None:
    """They change generated/, doit's records or stacks.lock under a running build (which
    would save its own pins over a re-lock)."""
    root = tmp_path / "fleet"
    quick_and_slow_fleet(root)
    (root / ".stackyard").mkdir()
    with open(root / ".stackyard/build.lock", "a+") as held:  # as a running build holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        waiting = subprocess.Popen([sys.executable, "-m", *command], cwd=root,
                                   text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.5)
        assert waiting.poll() is None, waiting.communicate()
    _, stderr = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, stderr
    assert ("stackyard: another build of this repository is running (pid 4242); waiting for "
            "it to finish") in stderr


def test_a_file_system_without_locks_builds_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    """NFS without lockd, some FUSE mounts: flock fails with ENOLCK."""
    def no_locks(handle: object, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    hold_build_lock(Workspace.at(tmp_path))
    assert ("build.lock (No locks available): two builds of this repository started at once "
            "would not wait for each other") in capsys.readouterr().err
