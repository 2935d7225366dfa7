"""The EFK stack of Fabrikate's README, from the 20 real shared charts, for three clusters."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.doit_runner import doit, install_dodo, link_chart, write

EFK_CHARTS = ("elasticsearch", "elasticsearch-curator", "fluentd-elasticsearch", "kibana")


def make_efk_fleet(root: Path) -> Path:
    install_dodo(root)
    for chart in EFK_CHARTS:
        link_chart(root, chart)
    write(root / "stacks/efk/component.yaml", "name: efk\nsubcomponents:\n" + "".join(
        f"  - name: {chart}\n    type: helm\n    method: local\n    path: ../charts/{chart}\n"
        for chart in EFK_CHARTS))
    write(root / "stacks/efk/config/common.yaml", """
subcomponents:
  elasticsearch:
    namespace: elasticsearch
    injectNamespace: true
    config:
      client: {replicas: 1}
  elasticsearch-curator:
    namespace: elasticsearch
    injectNamespace: true
  fluentd-elasticsearch:
    namespace: fluentd
    injectNamespace: true
    config:
      elasticsearch:
        host: elasticsearch-client.elasticsearch.svc.cluster.local
  kibana:
    namespace: kibana
    injectNamespace: true
    config:
      files:
        kibana.yml:
          elasticsearch.hosts: http://elasticsearch-client.elasticsearch:9200
""")
    write(root / "stacks/efk/config/prod.yaml", """
subcomponents:
  elasticsearch:
    config:
      data:
        replicas: 5
        resources:
          limits: {memory: 8Gi}
""")
    write(root / "stacks/efk/config/east.yaml", """
subcomponents:
  fluentd-elasticsearch:
    config:
      elasticsearch:
        host: es.east.example.com
""")
    write(root / "environments/dev.yaml", "stack: ../stacks/efk\n")
    write(root / "environments/prod-east.yaml", "stack: ../stacks/efk\nlayers: [east, prod]\n")
    write(root / "environments/prod-west.yaml", "stack: ../stacks/efk\nlayers: [prod]\n")
    return root


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def find(docs: list[dict], kind: str, name_part: str) -> dict:
    matches = [d for d in docs if d["kind"] == kind and name_part in d["metadata"]["name"]]
    assert len(matches) == 1, f"{kind} *{name_part}*: {[d['metadata']['name'] for d in docs]}"
    return matches[0]


def env_value(container: dict, name: str) -> str:
    return next(e["value"] for e in container["env"] if e["name"] == name)


@pytest.fixture(scope="module")
def efk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_efk_fleet(tmp_path_factory.mktemp("efk"))
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(run.renders) == 3 * 5
    return root


def test_every_cluster_gets_every_component(efk: Path) -> None:
    for cluster in ("dev", "prod-east", "prod-west"):
        folder = efk / "generated" / cluster
        produced = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.yaml"))
        assert produced == ["efk.yaml", "elasticsearch-curator.yaml", "elasticsearch.yaml",
                            "fluentd-elasticsearch.yaml", "kibana.yaml", "kustomization.yaml"]
        assert (folder / "efk.yaml").read_bytes() == b""  # a container renders nothing
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        assert kustomization["resources"] == [
            "elasticsearch-curator.yaml", "elasticsearch.yaml", "fluentd-elasticsearch.yaml",
            "kibana.yaml"]


def test_prod_memory_limit_reaches_the_elasticsearch_statefulset(efk: Path) -> None:
    for cluster, limit, replicas in (("prod-east", "8Gi", 5), ("prod-west", "8Gi", 5),
                                     ("dev", None, 2)):
        docs = documents(efk / "generated" / cluster / "elasticsearch.yaml")
        data = find(docs, "StatefulSet", "data")
        container = data["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"].get("memory") == limit, cluster
        assert data["spec"]["replicas"] == replicas, cluster


def test_east_fluentd_host_overrides_common(efk: Path) -> None:
    hosts = {}
    for cluster in ("dev", "prod-east", "prod-west"):
        docs = documents(efk / "generated" / cluster / "fluentd-elasticsearch.yaml")
        daemonset = find(docs, "DaemonSet", "fluentd")
        container = daemonset["spec"]["template"]["spec"]["containers"][0]
        hosts[cluster] = env_value(container, "OUTPUT_HOST")
    assert hosts == {
        "dev": "elasticsearch-client.elasticsearch.svc.cluster.local",
        "prod-east": "es.east.example.com",
        "prod-west": "elasticsearch-client.elasticsearch.svc.cluster.local",
    }


def test_namespaces_are_injected_per_component(efk: Path) -> None:
    folder = efk / "generated" / "prod-east"
    expected = {"elasticsearch.yaml": "elasticsearch", "fluentd-elasticsearch.yaml": "fluentd",
                "kibana.yaml": "kibana", "elasticsearch-curator.yaml": "elasticsearch"}
    for file, namespace in expected.items():
        for doc in documents(folder / file):
            if doc["kind"] in ("ClusterRole", "ClusterRoleBinding", "Namespace"):
                assert "namespace" not in doc["metadata"], (file, doc["kind"])
            else:
                assert doc["metadata"]["namespace"] == namespace, (file, doc["kind"])


def test_kibana_config_file_values_reach_its_configmap(efk: Path) -> None:
    docs = documents(efk / "generated" / "dev" / "kibana.yaml")
    [configmap] = [d for d in docs
                   if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "kibana"]
    kibana_yml = yaml.safe_load(configmap["data"]["kibana.yml"])
    assert kibana_yml["elasticsearch.hosts"] == "http://elasticsearch-client.elasticsearch:9200"


def test_no_notes_and_no_test_hooks_in_output(efk: Path) -> None:
    for path in (efk / "generated").rglob("*.yaml"):
        text = path.read_text()
        assert "NOTES.txt" not in text
        for doc in yaml.safe_load_all(text):
            hook = ((doc or {}).get("metadata", {}).get("annotations") or {}).get("helm.sh/hook")
            assert hook not in ("test", "test-success"), path


def test_second_run_renders_nothing(efk: Path) -> None:
    run = doit(efk)
    assert run.returncode == 0
    assert run.executed == []


def test_output_is_byte_identical_across_rebuilds(efk: Path, tmp_path: Path) -> None:
    again = make_efk_fleet(tmp_path / "again")
    assert doit(again).returncode == 0
    for cluster in ("dev", "prod-east", "prod-west"):
        for path in sorted((efk / "generated" / cluster).rglob("*")):
            if path.is_file():
                relative = path.relative_to(efk)
                assert path.read_bytes() == (again / relative).read_bytes(), relative
