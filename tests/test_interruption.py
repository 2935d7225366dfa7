"""A cancelled CI job (SIGTERM) keeps the work it finished: doit saves its state."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.doit_runner import doit, install_dodo, write


@pytest.mark.parametrize("parallel", [(), ("-n", "2")], ids=["serial", "n2"])
def test_sigterm_keeps_finished_clusters(tmp_path: Path, parallel: tuple[str, ...]) -> None:
    install_dodo(tmp_path)
    write(tmp_path / "stacks/quick/component.yaml", "name: quick\ntype: static\npath: m\n")
    write(tmp_path / "stacks/quick/m/a.yaml", "kind: A\n")
    write(tmp_path / "stacks/slow/component.yaml", "name: slow\ntype: static\npath: m\n"
          "hooks:\n  before-generate:\n    - sleep 60\n")
    write(tmp_path / "stacks/slow/m/b.yaml", "kind: B\n")
    write(tmp_path / "environments/a-quick.yaml", "stack: ../stacks/quick\n")
    write(tmp_path / "environments/b-slow.yaml", "stack: ../stacks/slow\n")
    process = subprocess.Popen([sys.executable, "-m", "doit", *parallel], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    finished = tmp_path / "generated/a-quick/provenance.json"
    deadline = time.monotonic() + 60
    while not finished.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert finished.exists(), "the quick cluster should finish while the slow one waits"
    time.sleep(0.5)  # let the slow cluster's hook start
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0, output
    assert not (tmp_path / "generated/b-slow").exists()

    (tmp_path / "stacks/slow/component.yaml").write_text(
        "name: slow\ntype: static\npath: m\n")
    again = doit(tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.executed == ["render:b-slow:slow", "b-slow"], "a-quick was kept"
