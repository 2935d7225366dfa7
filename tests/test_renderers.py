"""Each component type's output, through the real planner and the embedded Helm."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from rules.definitions import load_environment
from rules.errors import StackyardError
from rules.model import PlanNode
from rules.plan import plan_cluster
from rules.renderers import REGISTRY
from rules.renderers.helm import HelmRenderer
from rules.workspace import Workspace
from tests.doit_runner import doit, install_dodo, link_chart, write


def nodes(root: Path, layers: str = "[]") -> dict[str, PlanNode]:
    env = write(root / "environments/c1.yaml", f"stack: ../stacks/s\nlayers: {layers}\n")
    plan = plan_cluster(load_environment(env), Workspace.at(root))
    return {node.node_path: node for node in plan.nodes}


def render(root: Path, node: PlanNode) -> bytes:
    return REGISTRY[node.definition.type].render(node, Workspace.at(root))


@pytest.mark.parametrize(("sizes", "total"), [((56, 59), 125), ((95, 304), 409), ((98,), 103),
                                              ((0,), 5), ((1367,), 1372)])
def test_static_sizes_match_fabrikate(tmp_path: Path, sizes: tuple[int, ...], total: int) -> None:
    write(tmp_path / "stacks/s/component.yaml", "name: s\ntype: static\npath: m\n")
    for index, size in enumerate(sizes):
        write(tmp_path / f"stacks/s/m/{index}.yaml", "x" * size)
    output = render(tmp_path, nodes(tmp_path)["s"])
    assert len(output) == total


def test_static_is_byte_exact_and_sorted_by_byte_order(tmp_path: Path) -> None:
    write(tmp_path / "stacks/s/component.yaml", "name: s\ntype: static\npath: m\n")
    write(tmp_path / "stacks/s/m/b.yaml", "kind: B # keep comments\n")
    write(tmp_path / "stacks/s/m/B.yaml", "kind: upper\n")
    write(tmp_path / "stacks/s/m/a.txt", "not yaml at all: [\n")
    output = render(tmp_path, nodes(tmp_path)["s"])
    assert output == (b"---\nkind: upper\n\n---\nnot yaml at all: [\n\n"
                      b"---\nkind: B # keep comments\n\n")


def test_a_static_file_that_is_not_yaml_is_written_as_it_is_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "stacks/s/component.yaml", "name: s\ntype: static\npath: m\n")
    write(tmp_path / "stacks/s/m/a.yaml", "kind: A\nmetadata: {name: [x\n")
    (tmp_path / "stacks/s/m/b.bin").write_bytes(b"\xff\xfe")
    write(tmp_path / "stacks/s/m/c.yaml", "kind: C\n")
    output = render(tmp_path, nodes(tmp_path)["s"])
    assert output == b"---\nkind: A\nmetadata: {name: [x\n\n---\n\xff\xfe\n---\nkind: C\n\n"
    warnings = capsys.readouterr().err.splitlines()
    assert [w.split(": ", 1)[1].rpartition("/m/")[2] for w in warnings] == [
        "a.yaml: not valid YAML (line 3): did not find expected ',' or ']'; written as it is",
        "b.bin: not UTF-8 text; written as it is"]


def test_static_folder_with_a_subfolder_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "stacks/s/component.yaml", "name: s\ntype: static\npath: m\n")
    write(tmp_path / "stacks/s/m/nested/a.yaml", "kind: A\n")
    with pytest.raises(StackyardError, match="sub-folder 'nested'"):
        render(tmp_path, nodes(tmp_path)["s"])


def test_static_http_reads_its_vendored_download(tmp_path: Path) -> None:
    write(tmp_path / "stacks/s/component.yaml", "name: s\nsubcomponents:\n  - name: kv\n"
          "    type: static\n    method: http\n    source: https://example.com/kv.yaml\n"
          "    path: ignored\n")
    write(tmp_path / "stacks/s/components/kv/kv.yaml", "kind: Secret\n")
    assert render(tmp_path, nodes(tmp_path)["s/kv"]) == b"---\nkind: Secret\n\n"


def test_file_dependency_is_built_into_the_chart(tmp_path: Path) -> None:
    link_chart(tmp_path, "cert-manager")
    write(tmp_path / "stacks/s/component.yaml",
          "name: s\nsubcomponents:\n  - name: cert-manager\n    type: helm\n"
          "    path: ../charts/cert-manager\n")
    write(tmp_path / "stacks/s/config/common.yaml",
          "subcomponents:\n  cert-manager:\n    config:\n      webhook: {enabled: true}\n")
    output = render(tmp_path, nodes(tmp_path)["s/cert-manager"]).decode()
    assert "# Source: cert-manager/charts/webhook/templates/apiservice.yaml" in output
    kinds = [d["kind"] for d in yaml.safe_load_all(output)]
    assert "APIService" in kinds
    assert kinds.index("ServiceAccount") < kinds.index("Deployment")  # Helm install order


def test_helm_from_vendored_helm_repos(tmp_path: Path) -> None:
    (tmp_path / "stacks/s/helm_repos/redis-git/stable").mkdir(parents=True)
    (tmp_path / "stacks/s/helm_repos/redis-git/stable/redis").symlink_to(
        link_chart(tmp_path, "redis").resolve())
    (tmp_path / "stacks/s/helm_repos").joinpath("memcached").symlink_to(
        link_chart(tmp_path, "memcached").resolve())
    write(tmp_path / "stacks/s/component.yaml", """name: s
subcomponents:
  - name: redis-git
    type: helm
    method: git
    source: https://github.com/helm/charts
    path: stable/redis
  - name: memcached
    type: helm
    method: helm
    source: https://kubernetes-charts.storage.googleapis.com
    path: memcached
""")
    found = nodes(tmp_path)
    assert b"kind: StatefulSet" in render(tmp_path, found["s/redis-git"])
    assert b"memcached" in render(tmp_path, found["s/memcached"])


def test_namespace_without_injection_only_sets_release_namespace(tmp_path: Path) -> None:
    link_chart(tmp_path, "kured")
    write(tmp_path / "stacks/s/component.yaml", "name: s\ntype: helm\npath: ../charts/kured\n")
    write(tmp_path / "stacks/s/config/common.yaml", "namespace: reboots\n")
    output = render(tmp_path, nodes(tmp_path)["s"]).decode()
    [daemonset] = [d for d in yaml.safe_load_all(output) if d["kind"] == "DaemonSet"]
    assert daemonset["metadata"]["namespace"] == "reboots"  # via .Release.Namespace
    assert "metadata:\n  name: s-kured\n" in output, "not re-serialised without injection"


def test_remote_component_read_from_vendored_components(tmp_path: Path) -> None:
    write(tmp_path / "stacks/s/component.yaml", "name: s\nsubcomponents:\n  - name: remote\n"
          "    method: git\n    source: https://example.com/defs.git\n    path: defs/x\n")
    write(tmp_path / "stacks/s/components/remote/defs/x/component.yaml",
          "name: x\ntype: static\npath: m\n")
    write(tmp_path / "stacks/s/components/remote/defs/x/m/a.yaml", "kind: A\n")
    found = nodes(tmp_path)
    assert found["s/remote"].output == "remote/x.yaml"
    assert render(tmp_path, found["s/remote"]) == b"---\nkind: A\n\n"


def test_remote_component_not_vendored_is_fetched_and_unreachable_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKYARD_CACHE", str(tmp_path / "cache"))
    write(tmp_path / "stacks/s/component.yaml", "name: s\nsubcomponents:\n  - name: remote\n"
          f"    method: git\n    source: file://{tmp_path}/absent.git\n")
    with pytest.raises(StackyardError, match=r"subcomponents\[0\]: git source of 'remote' "
                       r"\(file://.*/absent.git at HEAD\): cannot fetch"):
        nodes(tmp_path)
    assert not (tmp_path / "stacks.lock").exists()


def test_generate_hooks_run_in_the_component_folder(tmp_path: Path) -> None:
    install_dodo(tmp_path)
    write(tmp_path / "stacks/s/component.yaml", """name: s
type: static
path: m
hooks:
  before-generate:
    - 'mkdir -p m && echo "kind: Made" > m/made.yaml'
  after-generate:
    - touch after-ran
""")
    write(tmp_path / "environments/c1.yaml", "stack: ../stacks/s\n")
    run = doit(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "stacks/s/after-ran").exists()
    assert (tmp_path / "generated/c1/s.yaml").read_bytes() == b"---\nkind: Made\n\n"


def test_a_root_pointer_reads_its_path_inside_the_vendored_copy(tmp_path: Path) -> None:
    # spec §2.5: the node is re-loaded from ./components/<root name>/<path>
    write(tmp_path / "stacks/s/component.yaml", "name: s\nmethod: git\n"
          "source: https://example.com/defs.git\npath: definitions/infra\n")
    write(tmp_path / "stacks/s/components/s/definitions/infra/component.yaml",
          "name: infra\ntype: static\npath: m\n")
    write(tmp_path / "stacks/s/components/s/definitions/infra/m/a.yaml", "kind: A\n")
    found = nodes(tmp_path)
    assert list(found) == ["infra"]
    assert render(tmp_path, found["infra"]) == b"---\nkind: A\n\n"


def test_helm_renderer_version_names_the_installed_sdk() -> None:
    """Read from the dist-info folder's name (cheap); must agree with importlib.metadata."""
    assert HelmRenderer().version == f"1+helm-python-sdk-{version('helm-python-sdk')}"
