"""`.stackyard/` in a CI cache kept for months does not grow without end."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.doit_runner import doit, edit, install_dodo, link_chart, snapshot, write

DAY = 86400


def age(path: Path, days: float) -> None:
    then = time.time() - days * DAY
    os.utime(path, (then, then))


def test_chart_copies_unused_for_two_weeks_are_dropped_and_a_render_renews_its_copy(
        tmp_path: Path) -> None:
    """cert-manager's `file://` dependency makes Stackyard build a copy of the chart."""
    install_dodo(tmp_path)
    link_chart(tmp_path, "cert-manager")
    write(tmp_path / "stacks/s/component.yaml", "name: s\nsubcomponents:\n"
          "  - {name: cm, type: helm, path: ../charts/cert-manager}\n")
    write(tmp_path / "stacks/s/config/common.yaml", "subcomponents:\n  cm:\n    config:\n"
          "      webhook: {enabled: true}\n")
    write(tmp_path / "environments/c1.yaml", "stack: ../stacks/s\n")
    assert doit(tmp_path).returncode == 0
    builds = tmp_path / ".stackyard/charts"
    (used,) = list(builds.iterdir())
    old, recent = builds / ("0" * 16), builds / ("1" * 16)
    (old / "cert-manager").mkdir(parents=True)
    (recent / "cert-manager").mkdir(parents=True)
    age(old, 15)
    age(recent, 13)
    age(used, 10)

    edit(tmp_path / "stacks/s/config/common.yaml", "enabled: true", "enabled: false")
    run = doit(tmp_path)

    assert run.returncode == 0, run.stderr
    assert run.renders == ["render:c1:s/cm"]
    assert sorted(p.name for p in builds.iterdir()) == sorted([used.name, recent.name])
    assert time.time() - used.stat().st_mtime < DAY, "the render loaded it: renewed"

    age(used, 15)  # nothing renders it for two weeks: dropped, and built again when needed
    edit(tmp_path / "stacks/s/config/common.yaml", "{enabled: false}",
         "{enabled: false}\n      replicaCount: 2")
    again = doit(tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.renders == ["render:c1:s/cm"]
    assert (used / "cert-manager/charts").is_dir()
    assert time.time() - used.stat().st_mtime < DAY


def cert_manager_fleet(root: Path, replicas: int) -> Path:
    """Two clusters on cert-manager, whose `file://` dependency makes Stackyard build a
    copy of the chart in `.stackyard/charts/`."""
    install_dodo(root)
    link_chart(root, "cert-manager")
    write(root / "stacks/s/component.yaml", "name: s\nsubcomponents:\n"
          "  - {name: cm, type: helm, path: ../charts/cert-manager}\n")
    write(root / "stacks/s/config/a.yaml",
          f"subcomponents:\n  cm:\n    config: {{replicaCount: {replicas}}}\n")
    for cluster in ("a", "b"):
        write(root / f"environments/{cluster}.yaml", f"stack: ../stacks/s\nlayers: [{cluster}]\n")
    return root


def test_a_damaged_chart_copy_is_built_again_not_used(tmp_path: Path) -> None:
    """A partial restore of a CI cache leaves a chart copy with a file missing: the next
    render that loads the chart must not render without it (and store that for good)."""
    root = cert_manager_fleet(tmp_path / "fleet", replicas=1)
    assert doit(root).returncode == 0
    (copy,) = (root / ".stackyard/charts").glob("*/cert-manager")
    (copy / "templates/deployment.yaml").unlink()
    write(root / "stacks/s/config/a.yaml", "subcomponents:\n  cm:\n    config: {replicaCount: 2}\n")

    run = doit(root)

    assert run.returncode == 0, run.stdout + run.stderr
    assert run.renders == ["render:a:s/cm"]
    assert (copy / "templates/deployment.yaml").is_file()
    reference = cert_manager_fleet(tmp_path / "reference", replicas=2)
    assert doit(reference).returncode == 0
    assert snapshot(root / "generated") == snapshot(reference / "generated")
    assert b"kind: Deployment" in (root / "generated/a/cm.yaml").read_bytes()
