"""Generate hooks, whose effects no digest can know: they never change the shared store, a
render with hooks is its cluster's own, and a hook render made again reaches the output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.doit_runner import doit, one_cluster_fleet, write
from tests.helpers import make_repo


def provenance(root: Path, cluster: str) -> dict[str, dict[str, object]]:
    return json.loads((root / f"generated/{cluster}/provenance.json").read_text())["files"]


@pytest.mark.parametrize("parallel", [(), ("-n", "2")], ids=["serial", "n2"])
def test_a_git_components_hook_runs_in_a_private_copy_and_its_output_stays_current(
        tmp_path: Path, cache: Path, parallel: tuple[str, ...]) -> None:
    """With `-n 2` a render and its cluster's output may run in different processes."""
    counter = tmp_path / "counter"
    url = make_repo(tmp_path / "remote" / "defs", {
        "z/component.yaml": "name: z\ntype: static\npath: m\nhooks:\n  before-generate:\n"
                            f"  - sh gen.sh {counter}\n",
        "z/gen.sh": 'echo "n: $(cat "$1")" > m/gen.yaml\n',
        "z/m/a.yaml": "a: 1\n"})
    root = tmp_path / "fleet"
    one_cluster_fleet(root, f"{{name: rz, method: git, source: '{url}', path: z}}")
    write(root / "environments/c2.yaml", "stack: ../stacks/s\n")

    def outputs() -> tuple[str, str]:
        return tuple((root / f"generated/{c}/rz/z.yaml").read_text() for c in ("c1", "c2"))

    counter.write_text("1")
    run = doit(root, *parallel)
    assert run.returncode == 0, run.stdout + run.stderr
    assert outputs() == ("---\na: 1\n\n---\nn: 1\n\n",) * 2
    assert not list((cache / "trees").rglob("gen.yaml"))  # the store is as git made it
    assert not list((root / ".stackyard/tmp").iterdir())  # the private copies are gone
    assert provenance(root, "c1")["rz/z.yaml"]["digest"] != \
        provenance(root, "c2")["rz/z.yaml"]["digest"]  # not shared between clusters

    counter.write_text("2")
    assert doit(root).renders == []  # its inputs did not change: it is not run again
    run = doit(root, "-a", *parallel)
    assert run.returncode == 0, run.stdout + run.stderr
    assert outputs() == ("---\na: 1\n\n---\nn: 2\n\n",) * 2

    counter.write_text("3")
    assert doit(root, "forget", "render:c1:s/rz").returncode == 0
    run = doit(root, *parallel)
    assert run.renders == ["render:c1:s/rz"], run.stdout + run.stderr
    assert outputs() == ("---\na: 1\n\n---\nn: 3\n\n", "---\na: 1\n\n---\nn: 2\n\n")


def test_a_hooked_git_chart_renders_for_clusters_that_switch_its_subchart_differently(
        tmp_path: Path, cache: Path) -> None:
    """The second cluster needs the chart loaded again (its values keep the subchart the
    first one switched off), and the first cluster's working copy is gone by then."""
    configmap = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Chart.Name }}\n"
    url = make_repo(tmp_path / "remote", {
        "app/component.yaml": "name: app\ntype: helm\npath: chart\nhooks:\n"
                              "  before-generate:\n  - \"true\"\n",
        "app/chart/Chart.yaml": "apiVersion: v2\nname: top\nversion: 0.1.0\ndependencies:\n"
                                "- {name: sub, version: 0.1.0, condition: sub.enabled}\n",
        "app/chart/templates/cm.yaml": configmap,
        "app/chart/charts/sub/Chart.yaml": "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
        "app/chart/charts/sub/templates/cm.yaml": configmap})
    root = tmp_path / "fleet"
    one_cluster_fleet(root, f"{{name: app, method: git, source: '{url}', path: app}}")
    write(root / "environments/c1.yaml", "stack: ../stacks/s\nconfig:\n  subcomponents:\n"
          "    app: {config: {sub: {enabled: false}}}\n")
    write(root / "environments/c2.yaml", "stack: ../stacks/s\n")
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    for cluster, names in (("c1", ["top"]), ("c2", ["sub", "top"])):
        text = (root / f"generated/{cluster}/app/app.yaml").read_text()
        assert sorted(re.findall(r"name: (\w+)", text)) == names, text


def test_a_hook_that_edits_its_chart_is_rendered_from_the_chart_as_the_hook_left_it(
        tmp_path: Path, cache: Path) -> None:
    """Two clusters in one process: the second must not get the chart the first loaded."""
    root = tmp_path / "fleet"
    one_cluster_fleet(root, "{name: app, source: ../app}")
    write(root / "environments/c2.yaml", "stack: ../stacks/s\n")
    write(root / "stacks/app/component.yaml",
          "name: app\ntype: helm\npath: chart\nhooks:\n  before-generate:\n  - sh count.sh\n")
    write(root / "stacks/app/count.sh",  # each run writes the next number into the chart
          "n=$(( $(cat count 2>/dev/null || echo 0) + 1 )); echo $n > count\n"
          "printf 'kind: ConfigMap\\nmetadata: {name: run%s}\\n' $n > chart/templates/cm.yaml\n")
    write(root / "stacks/app/chart/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n")
    write(root / "stacks/app/chart/templates/cm.yaml", "kind: ConfigMap\n")
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    names = sorted(re.findall(r"run\d", (root / f"generated/{c}/app/app.yaml").read_text())
                   for c in ("c1", "c2"))
    assert names == [["run1"], ["run2"]]
