"""Each component type's output, through the real planner and the embedded Helm."""

from __future__ import annotations

import functools
import shutil
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
from tests.doit_runner import (
    SHARED_CHARTS,
    doit,
    edit,
    install_dodo,
    link_chart,
    one_cluster_fleet,
    write,
)


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


def test_static_path_naming_a_file_says_it_is_a_file(tmp_path: Path) -> None:
    write(tmp_path / "stacks/s/component.yaml", "name: s\ntype: static\npath: f.yaml\n")
    write(tmp_path / "stacks/s/f.yaml", "kind: A\n")
    with pytest.raises(StackyardError, match=r"component.yaml: path: static manifest folder "
                       r"\S*stacks/s/f.yaml is a file, not a folder: `path` names a folder"):
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


def test_file_dependencies_in_folders_of_one_name_both_render_and_both_are_inputs(
        tmp_path: Path) -> None:
    """`file://../team-a/common` and `file://../team-b/common` (memcached and kured): both
    are placed (as `helm dependency build` does, by chart name and version, not by folder
    name), and an edit in either one renders the chart again."""
    install_dodo(tmp_path)
    for team, chart in (("team-a", "memcached"), ("team-b", "kured")):
        shutil.copytree(SHARED_CHARTS / chart, tmp_path / f"stacks/s/{team}/common")
    write(tmp_path / "stacks/s/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n"
          "dependencies:\n"
          "  - {name: memcached, version: 2.7.1, repository: 'file://../team-a/common'}\n"
          "  - {name: kured, version: 1.1.1, repository: 'file://../team-b/common'}\n")
    write(tmp_path / "stacks/s/component.yaml",
          "name: s\nsubcomponents:\n  - {name: app, type: helm, path: app}\n")
    write(tmp_path / "environments/c1.yaml", "stack: ../stacks/s\n")
    output = tmp_path / "generated/c1/app.yaml"

    def kinds() -> list[str]:
        return [d["kind"] for d in yaml.safe_load_all(output.read_text())]

    run = doit(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "StatefulSet" in kinds() and "DaemonSet" in kinds()  # memcached and kured
    edit(tmp_path / "stacks/s/team-a/common/values.yaml", "replicaCount: 3", "replicaCount: 4")
    run = doit(tmp_path)
    assert run.renders == ["render:c1:s/app"], run.stdout
    assert "replicas: 4" in output.read_text()
    write(tmp_path / "stacks/s/team-b/common/templates/extra.yaml",
          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n")
    run = doit(tmp_path)
    assert run.renders == ["render:c1:s/app"], run.stdout
    assert "ConfigMap" in kinds()


def test_two_dependencies_that_helm_cannot_tell_apart_are_an_error(tmp_path: Path) -> None:
    """Two different folders holding the same chart name and version: Helm matches a
    dependency by name and version only, so which one renders would be chance."""
    for team in ("team-a", "team-b"):
        shutil.copytree(SHARED_CHARTS / "memcached", tmp_path / f"stacks/s/{team}/memcached")
    edit(tmp_path / "stacks/s/team-b/memcached/values.yaml", "replicaCount: 3", "replicaCount: 4")
    write(tmp_path / "stacks/s/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n"
          "dependencies:\n" + "".join(
              f"  - {{name: memcached, alias: {team}, version: 2.7.1, "
              f"repository: 'file://../{team}/memcached'}}\n" for team in ("team-a", "team-b")))
    write(tmp_path / "stacks/s/component.yaml", "name: s\ntype: helm\npath: app\n")
    with pytest.raises(StackyardError, match=r"two different dependencies that are both chart "
                       r"memcached-2\.7\.1 \(stacks/s/team-a/memcached and "
                       r"stacks/s/team-b/memcached\)"):
        render(tmp_path, nodes(tmp_path)["s"])


@pytest.mark.parametrize("versions", [("2.7.1",), ("2.7.1", "3.0.0")])
def test_repository_dependencies_vendored_in_charts_render_as_they_are(
        tmp_path: Path, versions: tuple[str, ...]) -> None:
    """What `helm dependency build` leaves in charts/ (one archive per version, even for one
    chart at two versions) and an unpacked folder render without their repository, which
    is never asked."""
    import helm_python  # the test process is not doit's: loading Go here is fine

    charts = tmp_path / "stacks/s/app/charts"
    charts.mkdir(parents=True)
    for number in versions:
        helm_python.package(SHARED_CHARTS / "memcached", destination=charts, version=number)
    shutil.copytree(SHARED_CHARTS / "kured", charts / "kured")
    entries = "".join(f"  - {{name: memcached, alias: m{index}, version: {number}, "
                      "repository: 'https://charts.invalid'}\n"
                      for index, number in enumerate(versions))
    write(tmp_path / "stacks/s/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n"
          f"dependencies:\n{entries}"
          "  - {name: kured, version: 1.1.1, repository: 'https://charts.invalid'}\n")
    write(tmp_path / "stacks/s/component.yaml", "name: s\ntype: helm\npath: app\n")
    output = render(tmp_path, nodes(tmp_path)["s"]).decode()
    for index, number in enumerate(versions):
        assert f"chart: \"m{index}-{number}\"" in output
    assert "kind: DaemonSet" in output
    assert not (tmp_path / ".stackyard/charts").exists()  # rendered in place, no copy


def test_a_vendored_subchart_of_another_version_renders_as_helm_template_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Helm matches a dependency in charts/ by name only (CheckDependencies): one whose
    version does not satisfy the constraint renders, as `helm template` renders it; its
    repository is never asked. An archive named for the dependency that holds another
    chart leaves the dependency missing: an error, as in Helm."""
    import helm_python  # the test process is not doit's: loading Go here is fine

    charts = tmp_path / "stacks/s/app/charts"
    helm_python.package(SHARED_CHARTS / "memcached", destination=charts.parent / "packed",
                        version="2.7.1")
    charts.mkdir()
    shutil.copy(charts.parent / "packed/memcached-2.7.1.tgz", charts)
    write(charts / "sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 1.0.0\n")
    write(charts / "sub/templates/cm.yaml", CONFIGMAP)
    write(tmp_path / "stacks/s/app/Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n"
          "dependencies:\n- {name: sub, version: ~2.0.0, repository: 'https://charts.invalid'}\n"
          "- {name: memcached, version: ^3.0.0, repository: 'https://charts.invalid'}\n")
    write(tmp_path / "stacks/s/component.yaml", "name: s\ntype: helm\npath: app\n")
    output = render(tmp_path, nodes(tmp_path)["s"]).decode()
    assert "name: sub" in output and 'chart: "memcached-2.7.1"' in output
    assert capsys.readouterr().err.splitlines() == [
        "stackyard: warning: chart stacks/s/app: charts/sub is 1.0.0, which does not satisfy "
        "~2.0.0 in Chart.yaml; rendered as helm template does; run helm dependency update",
        "stackyard: warning: chart stacks/s/app: charts/memcached-2.7.1.tgz is 2.7.1, which "
        "does not satisfy ^3.0.0 in Chart.yaml; rendered as helm template does; run helm "
        "dependency update"]
    assert not (tmp_path / ".stackyard/charts").exists()  # rendered in place, no copy

    shutil.rmtree(charts / "sub")
    shutil.copy(charts.parent / "packed/memcached-2.7.1.tgz", charts / "sub-2.0.0.tgz")
    with pytest.raises(StackyardError, match=r"chart stacks/s/app declares dependency 'sub', "
                                             r"but no chart in its charts/ folder is named "
                                             r"'sub' \(helm template fails too: found in "
                                             r"Chart.yaml, but missing in charts/ directory\); "
                                             r"charts/sub-2.0.0.tgz holds another chart; run "
                                             r"helm dependency update"):
        render(tmp_path, nodes(tmp_path)["s"])


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
    assert HelmRenderer().version == f"10+helm-python-sdk-{version('helm-python-sdk')}"


def test_an_input_edited_after_planning_is_not_rendered_under_the_planned_digest(
        tmp_path: Path) -> None:
    """A render reads its folders when it runs: an edit (or a `git checkout`) since
    planning would otherwise be stored under the digest of what planning saw, and be
    served from the store for good. The render fails instead; a new plan renders it."""
    shutil.copytree(SHARED_CHARTS / "kured", tmp_path / "stacks/charts/kured")
    write(tmp_path / "stacks/s/component.yaml", "name: s\nsubcomponents:\n"
          "  - {name: m, type: static, path: m}\n"
          "  - {name: kured, type: helm, path: ../charts/kured}\n")
    write(tmp_path / "stacks/s/m/a.yaml", "kind: A\n")
    planned = nodes(tmp_path)
    write(tmp_path / "stacks/s/m/a.yaml", "kind: B\n")
    edit(tmp_path / "stacks/charts/kured/templates/daemonset.yaml", "kind: DaemonSet",
         "kind: DaemonSet\n# edited")
    helm = HelmRenderer()
    for node, renderer in ((planned["s/m"], REGISTRY["static"]), (planned["s/kured"], helm)):
        with pytest.raises(StackyardError, match="changed while this build was running, so "
                                                 "this render is not kept; run doit again"):
            renderer.render(node, Workspace.at(tmp_path))
    replanned = nodes(tmp_path)
    assert render(tmp_path, replanned["s/m"]) == b"---\nkind: B\n\n"
    assert b"# edited" in helm.render(replanned["s/kured"], Workspace.at(tmp_path))


APP_STACK = "name: s\nsubcomponents:\n- {name: app, type: helm, path: chart}\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Chart.Name }}\n"
"""A template naming its document after its chart: which subcharts rendered shows."""


def document_names(root: Path, renderer: HelmRenderer, layers: str) -> list[str]:
    """The names of the documents the node `s/app` renders with these layers."""
    output = renderer.render(nodes(root, layers)["s/app"], Workspace.at(root))
    return sorted(doc["metadata"]["name"] for doc in yaml.safe_load_all(output) if doc)


def test_a_subchart_one_cluster_switches_off_stays_on_for_the_next(tmp_path: Path) -> None:
    """Helm's render drops switched-off subcharts from the loaded chart for good: one load
    served every cluster, so the first cluster's switches held for those after it."""
    chart = tmp_path / "stacks/s/chart"
    write(chart / "Chart.yaml", "apiVersion: v2\nname: main\nversion: 1.0.0\ndependencies:\n"
          "- {name: sub, version: 0.1.0, alias: one, condition: one.enabled}\n"
          "- {name: sub, version: 0.1.0, alias: two, condition: two.enabled}\n")
    write(chart / "values.yaml", "one: {enabled: true}\ntwo: {enabled: true}\n")
    write(chart / "templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: main}\n")
    write(chart / "charts/sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 0.1.0\n")
    write(chart / "charts/sub/templates/cm.yaml",
          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Chart.Name }}\n")
    write(chart / "charts/sub/crds/crd.yaml", "apiVersion: apiextensions.k8s.io/v1\n"
          "kind: CustomResourceDefinition\nmetadata:\n  name: subs.example.com\n")
    write(tmp_path / "stacks/s/component.yaml", APP_STACK)
    write(tmp_path / "stacks/s/config/one-off.yaml",
          "subcomponents:\n  app: {config: {one: {enabled: false}}}\n")
    write(tmp_path / "stacks/s/config/both-off.yaml",
          "subcomponents:\n  app: {config: {one: {enabled: false}, two: {enabled: false}}}\n")
    write(tmp_path / "stacks/s/config/nulled.yaml",
          "subcomponents:\n  app: {config: {one: {enabled: null}}}\n")
    names = functools.partial(document_names, tmp_path, HelmRenderer())

    assert names("[one-off]") == ["main", "subs.example.com", "two"]
    assert names("[]") == ["main", "one", "subs.example.com", "subs.example.com", "two"]
    assert names("[both-off]") == ["main"]
    assert names("[nulled]") == names("[]")  # a null removes the default: no condition left
    assert names("[one-off]") == ["main", "subs.example.com", "two"]


def test_cert_manager_keeps_its_webhook_where_a_cluster_enables_it(tmp_path: Path) -> None:
    """The real chart: its `webhook` dependency has `condition: webhook.enabled`."""
    link_chart(tmp_path, "cert-manager")
    write(tmp_path / "stacks/s/component.yaml",
          "name: s\nsubcomponents:\n- {name: cm, type: helm, path: ../charts/cert-manager}\n")
    write(tmp_path / "stacks/s/config/one-off.yaml",
          "subcomponents:\n  cm: {config: {webhook: {enabled: false}}}\n")
    renderer = HelmRenderer()

    def webhook_documents(layers: str) -> int:
        output = renderer.render(nodes(tmp_path, layers)["s/cm"], Workspace.at(tmp_path))
        return output.count(b"# Source: cert-manager/charts/webhook/")

    alone = webhook_documents("[]")
    assert alone > 0
    renderer = HelmRenderer()
    assert webhook_documents("[one-off]") == 0
    assert webhook_documents("[]") == alone
def test_helm_hooks_follow_the_manifests_and_an_unknown_hook_is_left_out_with_one_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As helm template prints them: hooks after the ordinary documents; a Helm 2
    `crd-install` hook and a `Test` hook dropped; the warning said once, not per render."""
    chart = tmp_path / "stacks/charts/c"
    write(chart / "Chart.yaml", "apiVersion: v2\nname: c\nversion: 0.1.0\n")
    write(chart / "templates/a-post.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
          "  name: post\n  annotations:\n    helm.sh/hook: post-install\n")
    write(chart / "templates/b-crd.yaml", "apiVersion: apiextensions.k8s.io/v1\n"
          "kind: CustomResourceDefinition\nmetadata:\n  name: olds.example.com\n"
          "  annotations:\n    helm.sh/hook: crd-install\n")
    write(chart / "templates/c-test.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: t\n"
          "  annotations:\n    helm.sh/hook: Test\n")
    write(chart / "templates/d-svc.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n"
          "  name: {{ .Values.name }}\n")
    write(tmp_path / "stacks/s/component.yaml", "name: s\ntype: helm\npath: ../charts/c\n")
    write(tmp_path / "stacks/s/config/common.yaml", "config: {name: one}\n")
    write(tmp_path / "stacks/s/config/two.yaml", "config: {name: two}\n")
    output = render(tmp_path, nodes(tmp_path)["s"]).decode()
    assert output == ("---\n# Source: c/templates/d-svc.yaml\napiVersion: v1\nkind: Service\n"
                      "metadata:\n  name: one\n"
                      "---\n# Source: c/templates/a-post.yaml\napiVersion: v1\n"
                      "kind: ConfigMap\nmetadata:\n  name: post\n  annotations:\n"
                      "    helm.sh/hook: post-install\n")
    assert "name: two" in render(tmp_path, nodes(tmp_path, "[two]")["s"]).decode()
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 1
    assert "stacks/charts/c: c/templates/b-crd.yaml: left out a CustomResourceDefinition " \
           "with unknown Helm hook 'crd-install'" in warnings[0]


def test_helm_documents_are_trimmed_as_helm_splits_them(tmp_path: Path) -> None:
    """mysql's Deployment template ends in a line of spaces; Helm trims every document."""
    link_chart(tmp_path, "mysql")
    write(tmp_path / "stacks/s/component.yaml", "name: s\ntype: helm\npath: ../charts/mysql\n")
    output = render(tmp_path, nodes(tmp_path)["s"]).decode()
    assert "# Source: mysql/templates/deployment.yaml" in output
    documents = output.split("\n---\n")
    assert len(documents) > 3
    assert [d[-80:] for d in documents if d.rstrip("\n") != d.rstrip()] == []


def test_two_components_differing_only_by_name_each_render_their_own_release(
        tmp_path: Path) -> None:
    """The name is the Helm release name: with the same chart and config, the two must not
    share one render (the second output named the first's release)."""
    one_cluster_fleet(tmp_path, "{name: alpha, type: helm, path: ../charts/tiny}",
                      "{name: beta, type: helm, path: ../charts/tiny}")
    write(tmp_path / "stacks/charts/tiny/Chart.yaml",
          "apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    write(tmp_path / "stacks/charts/tiny/templates/cm.yaml",
          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n")
    run = doit(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    for name in ("alpha", "beta"):
        [document] = yaml.safe_load_all((tmp_path / f"generated/c1/{name}.yaml").read_text())
        assert document["metadata"]["name"] == name


@pytest.mark.parametrize("nested", [False, True])
def test_subcharts_switched_by_tags_and_below_a_subchart_stay_per_cluster(
        tmp_path: Path, nested: bool) -> None:
    """`tags` switch subcharts too, and a subchart's own dependencies are switched by
    conditions under its name (`mid.leaf.enabled`)."""
    chart = tmp_path / "stacks/s/chart"
    write(chart / "Chart.yaml", "apiVersion: v2\nname: main\nversion: 1.0.0\ndependencies:\n"
          + ("- {name: mid, version: 0.1.0}\n" if nested else "")
          + "- {name: extra, version: 0.1.0, tags: [extras]}\n")
    write(chart / "templates/cm.yaml", CONFIGMAP)
    write(chart / "charts/extra/Chart.yaml", "apiVersion: v2\nname: extra\nversion: 0.1.0\n")
    write(chart / "charts/extra/templates/cm.yaml", CONFIGMAP)
    mid = chart / "charts/mid"
    if nested:
        write(mid / "Chart.yaml", "apiVersion: v2\nname: mid\nversion: 0.1.0\ndependencies:\n"
              "- {name: leaf, version: 0.1.0, condition: leaf.enabled}\n")
        write(mid / "templates/cm.yaml", CONFIGMAP)
        write(mid / "charts/leaf/Chart.yaml", "apiVersion: v2\nname: leaf\nversion: 0.1.0\n")
        write(mid / "charts/leaf/templates/cm.yaml", CONFIGMAP)
    write(tmp_path / "stacks/s/component.yaml", APP_STACK)
    write(tmp_path / "stacks/s/config/lean.yaml", "subcomponents:\n  app: {config: "
          "{tags: {extras: false}, mid: {leaf: {enabled: false}}}}\n")
    names = functools.partial(document_names, tmp_path, HelmRenderer())

    lean, full = (["main", "mid"], ["extra", "leaf", "main", "mid"]) if nested else (
        ["main"], ["extra", "main"])
    assert names("[lean]") == lean
    assert names("[]") == full
    assert names("[lean]") == lean


def test_an_empty_dependencies_list_still_switches_subcharts_below(tmp_path: Path) -> None:
    """`dependencies: []` is not `dependencies` unset: Helm then walks `charts/`, and a
    subchart's own conditions switch its subcharts (the SDK shows no empty list)."""
    chart = tmp_path / "stacks/s/chart"
    write(chart / "Chart.yaml", "apiVersion: v2\nname: top\nversion: 0.1.0\ndependencies: []\n")
    write(chart / "templates/cm.yaml", CONFIGMAP)
    write(chart / "charts/mid/Chart.yaml", "apiVersion: v2\nname: mid\nversion: 0.1.0\n"
          "dependencies:\n- {name: leaf, version: 0.1.0, condition: leaf.enabled}\n")
    write(chart / "charts/mid/templates/cm.yaml", CONFIGMAP)
    write(chart / "charts/mid/charts/leaf/Chart.yaml",
          "apiVersion: v2\nname: leaf\nversion: 0.1.0\n")
    write(chart / "charts/mid/charts/leaf/templates/cm.yaml", CONFIGMAP)
    write(tmp_path / "stacks/s/component.yaml", APP_STACK)
    write(tmp_path / "stacks/s/config/lean.yaml",
          "subcomponents:\n  app: {config: {mid: {leaf: {enabled: false}}}}\n")
    names = functools.partial(document_names, tmp_path, HelmRenderer())

    assert names("[lean]") == ["mid", "top"]
    assert names("[]") == ["leaf", "mid", "top"]



def test_a_crlf_chart_renders_the_documents_of_the_same_chart_in_lf(tmp_path: Path) -> None:
    """Helm's SplitManifests takes `\\r` for whitespace around `---`: a template with CRLF
    line ends is several documents, classified, ordered, hook-filtered and namespaced as
    in LF; the inserted namespace line ends in CRLF like its neighbours."""
    template = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  # the app\n  name: d\n"
                "  labels:\n    a: b\nspec:\n  replicas: 1\n---\n"
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: t\n  annotations:\n"
                "    helm.sh/hook: test\n---  \n"
                "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\n  annotations:\n"
                "    helm.sh/hook: pre-install\n---\n"
                "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa}\n---\n"
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: other\n"
                "---\nkind: ClusterRole\nmetadata:\n  name: r\n---\n"
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n")
    write(tmp_path / "stacks/s/component.yaml", "name: s\nsubcomponents:\n"
          "- {name: lf, type: helm, path: lf}\n- {name: crlf, type: helm, path: crlf}\n")
    write(tmp_path / "stacks/s/config/common.yaml", "subcomponents:\n"
          "  lf: {namespace: web, injectNamespace: true}\n"
          "  crlf: {namespace: web, injectNamespace: true}\n")
    for name, text in (("lf", template), ("crlf", template.replace("\n", "\r\n"))):
        write(tmp_path / f"stacks/s/{name}/Chart.yaml", "apiVersion: v2\nname: c\n"
              "version: 0.1.0\n")
        (tmp_path / f"stacks/s/{name}/templates").mkdir()
        (tmp_path / f"stacks/s/{name}/templates/all.yaml").write_bytes(text.encode())
    found = nodes(tmp_path)
    lf, crlf = (render(tmp_path, found[path]).decode() for path in ("s/lf", "s/crlf"))
    assert [(d["kind"], d["metadata"].get("namespace")) for d in yaml.safe_load_all(lf)] == [
        ("ServiceAccount", "web"), ("Secret", "other"), ("ConfigMap", "web"),
        ("ClusterRole", None), ("Deployment", "web"), ("Job", "web")]
    assert list(yaml.safe_load_all(crlf)) == list(yaml.safe_load_all(lf))
    assert crlf.replace("\r", "") == lf
    assert "metadata:\r\n  # the app\r\n  namespace: web\r\n  name: d\r\n" in crlf


def test_a_template_rendering_a_list_is_a_render_error_naming_chart_and_template(
        tmp_path: Path) -> None:
    """`{{ toYaml .Values.extraObjects }}` without `range` renders one list document: Helm
    fails on it; the objects in it must not vanish from the output."""
    chart = tmp_path / "stacks/s/chart"
    write(chart / "Chart.yaml", "apiVersion: v2\nname: main\nversion: 1.0.0\n")
    write(chart / "templates/cm.yaml", CONFIGMAP + "---\n# an empty document\n")
    write(chart / "templates/extra.yaml", "{{ toYaml .Values.extraObjects }}\n")
    write(tmp_path / "stacks/s/component.yaml", APP_STACK)
    write(tmp_path / "stacks/s/config/more.yaml", "subcomponents:\n  app:\n    config:\n"
          "      extraObjects: [{kind: ConfigMap, metadata: {name: x}}]\n")
    assert document_names(tmp_path, HelmRenderer(), "[]") == ["main"]  # unset: `null`
    with pytest.raises(StackyardError, match=r"chart stacks/s/chart: main/templates/extra"
                                             r"\.yaml rendered a YAML list \(line 1\) where "
                                             r"a mapping, a Kubernetes object, was expected"):
        document_names(tmp_path, HelmRenderer(), "[more]")


def test_a_library_chart_is_an_error_as_a_component_and_renders_as_a_dependency(
        tmp_path: Path) -> None:
    """`helm template` refuses a library chart ('library charts are not installable'): its
    empty output would make Flux prune what the component applied before. As a
    dependency, its templates serve the application chart."""
    library = tmp_path / "stacks/s/lib"
    write(library / "Chart.yaml", "apiVersion: v2\nname: lib\nversion: 0.1.0\ntype: library\n")
    write(library / "templates/_cm.tpl", '{{- define "lib.cm" }}\n' + CONFIGMAP + "{{- end }}\n")
    write(library / "templates/cm.yaml", CONFIGMAP)
    write(tmp_path / "stacks/s/chart/Chart.yaml", "apiVersion: v2\nname: main\nversion: 1.0.0\n"
          "dependencies:\n- {name: lib, version: 0.1.0, repository: 'file://../lib'}\n")
    write(tmp_path / "stacks/s/chart/templates/cm.yaml", '{{- include "lib.cm" . }}\n')
    write(tmp_path / "stacks/s/component.yaml", "name: s\nsubcomponents:\n"
          "- {name: app, type: helm, path: chart}\n- {name: lib, type: helm, path: lib}\n")
    found = nodes(tmp_path)
    [document] = yaml.safe_load_all(render(tmp_path, found["s/app"]))
    assert document["metadata"]["name"] == "main"
    with pytest.raises(StackyardError, match=r"component 'lib': chart stacks/s/lib is a "
                                             r"library chart \(type: library in Chart\.yaml\); "
                                             r"library charts are not installable \(helm "
                                             r"template refuses them\)"):
        render(tmp_path, found["s/lib"])


def test_config_numbers_reach_the_chart_as_go_yaml_v2_read_them(tmp_path: Path) -> None:
    """L16: `0X1F`, `0o644` and `0B101` are numbers to go-yaml v2 (Go's strconv), and `1e400`
    is the text (ParseFloat's range error): what Fabrikate handed to Helm."""
    chart = tmp_path / "stacks/s/chart"
    write(chart / "Chart.yaml", "apiVersion: v2\nname: main\nversion: 1.0.0\n")
    write(chart / "templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
          "  name: x\ndata:\n{{- range $k, $v := .Values.v }}\n"
          '  {{ $k }}: {{ printf "%s %v" (typeOf $v) $v | quote }}\n{{- end }}\n')
    write(tmp_path / "stacks/s/component.yaml", APP_STACK)
    write(tmp_path / "stacks/s/config/common.yaml", "subcomponents:\n  app:\n    config:\n"
          "      v: {a: 0X1F, b: 0o644, c: 0B101, d: 1e400, e: '0x1F'}\n")
    [document] = yaml.safe_load_all(render(tmp_path, nodes(tmp_path)["s/app"]))
    assert document["data"] == {"a": "float64 31", "b": "float64 420", "c": "float64 5",
                                "d": "string 1e400", "e": "string 0x1F"}
