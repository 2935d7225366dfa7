"""Charts from an HTTP chart repository and manifests over http, end to end: a real server
on 127.0.0.1, charts packaged by the Helm SDK, the real doit."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import xxhash
import yaml

from rules.sources import artifacts
from rules.sources import http as sources_http
from rules.sources.store import SourceError
from tests.chart_server import ChartServer, publish, serving
from tests.doit_runner import (
    SHARED_CHARTS,
    doit,
    install_dodo,
    link_chart,
    one_cluster_fleet,
    snapshot,
    write,
)

EFK = {"elasticsearch": "1.26.0", "elasticsearch-curator": "1.4.0",
       "fluentd-elasticsearch": "2.0.7", "kibana": "2.3.0"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ChartServer]:
    server = ChartServer(tmp_path / "served")
    yield server
    server.stop()


def downloads(server: ChartServer, name: str) -> int:
    return sum(1 for path in server.requests if path.rsplit("/", 1)[-1] == name)


def temp_entries(cache: Path) -> list[Path]:
    """Temp files or folders left in the store (entries are written as `.<name>.*` beside
    their place, then renamed)."""
    return [*cache.glob("charts/*/.*"), *cache.glob("files/.*"), *cache.glob("tmp/*")]


def efk_fleet(root: Path, repository: str, clusters: tuple[str, ...] = ("c1", "c2")) -> None:
    """The EFK stack with its four charts from `repository` (`method: helm`)."""
    install_dodo(root)
    entries = "".join(f"  - name: {chart}\n    type: helm\n    method: helm\n"
                      f"    source: {repository}\n    path: {chart}\n" for chart in EFK)
    write(root / "stacks/efk/component.yaml", f"name: efk\nsubcomponents:\n{entries}")
    write(root / "stacks/efk/config/common.yaml",
          "subcomponents:\n  elasticsearch:\n    namespace: logging\n"
          "    injectNamespace: true\n")
    for cluster in clusters:
        write(root / f"environments/{cluster}.yaml", "stack: ../stacks/efk\n")


def built_efk_fleet(tmp_path: Path, server: ChartServer,
                    clusters: tuple[str, ...] = ("c1", "c2")) -> Path:
    """The EFK charts published, `efk_fleet` written and built once."""
    for chart in EFK:
        publish(server, SHARED_CHARTS / chart)
    root = tmp_path / "fleet"
    efk_fleet(root, server.url, clusters)
    assert doit(root).returncode == 0
    return root


def lock(root: Path) -> dict[str, list[dict[str, str]]]:
    return yaml.safe_load((root / "stacks.lock").read_text())


def test_efk_charts_from_a_repository_are_fetched_once_and_render_as_local_charts(
        tmp_path: Path, server: ChartServer, cache: Path) -> None:
    archives = {chart: publish(server, SHARED_CHARTS / chart) for chart in EFK}
    root = tmp_path / "fleet"
    efk_fleet(root, server.url)
    run = doit(root)
    assert run.returncode == 0, run.stderr
    # one fetch task per chart for the whole fleet, each archive downloaded once
    assert sorted(n for n in run.executed if n.startswith("fetch:")) == sorted(
        f"fetch:{server.url}/{chart}@{version}" for chart, version in EFK.items())
    assert all(downloads(server, archive.name) == 1 for archive in archives.values())
    assert downloads(server, "index.yaml") == 1
    assert lock(root)["charts"] == [
        {"repository": server.url, "chart": chart, "version": "", "resolved": EFK[chart],
         "digest": "sha256:" + hashlib.sha256(archives[chart].read_bytes()).hexdigest()}
        for chart in sorted(EFK)]

    # the same charts as local folders render the same bytes
    local = tmp_path / "local"
    install_dodo(local)
    entries = "".join(f"  - name: {chart}\n    type: helm\n    path: ../charts/{chart}\n"
                      for chart in EFK)
    for chart in EFK:
        link_chart(local, chart)
    write(local / "stacks/efk/component.yaml", f"name: efk\nsubcomponents:\n{entries}")
    shutil.copytree(root / "stacks/efk/config", local / "stacks/efk/config")
    write(local / "environments/c1.yaml", "stack: ../stacks/efk\n")
    assert doit(local).returncode == 0
    for chart in EFK:
        produced = (root / f"generated/c1/{chart}.yaml").read_bytes()
        assert produced == (local / f"generated/c1/{chart}.yaml").read_bytes()
    assert b"namespace: logging" in (root / "generated/c1/elasticsearch.yaml").read_bytes()

    # nothing changed: no network, nothing executed
    server.requests.clear()
    again = doit(root)
    assert again.returncode == 0 and again.executed == [] and server.requests == []
    listed = doit(root, "list", "--all").stdout
    assert all(f"fetch:{server.url}/{chart}@{version} " in listed for chart, version in EFK.items())

    # a fetch task can be named: it downloads again only when the store lost the entry
    kibana = f"fetch:{server.url}/kibana@2.3.0"
    assert doit(root, kibana).executed == []
    shutil.rmtree(cache / "charts")
    assert doit(root, kibana).executed == [kibana] and downloads(server, "kibana-2.3.0.tgz") == 1
    # `doit fetch` fills the store for the whole fleet (a CI cache warm-up)
    assert sorted(doit(root, "fetch").executed) == sorted(
        f"fetch:{server.url}/{chart}@{version}" for chart, version in EFK.items()
        if chart != "kibana")
    assert doit(root, "fetch").returncode == 0 and doit(root, "fetch").executed == []
    shutil.rmtree(cache / "charts")  # or by pattern
    assert sorted(doit(root, "fetch:*/kibana@*", "fetch:*/kibana@*").executed) == [kibana]


def test_offline_once_fetched(tmp_path: Path, server: ChartServer) -> None:
    root = built_efk_fleet(tmp_path, server)
    before = snapshot(root / "generated")
    server.stop()
    shutil.rmtree(root / "generated")
    shutil.rmtree(root / ".stackyard")  # a fresh CI workspace with the store cached
    run = doit(root)
    assert run.returncode == 0, run.stderr
    assert snapshot(root / "generated") == before
    assert not [n for n in run.executed if n.startswith("fetch:")]


def test_a_new_version_is_used_only_after_relocking_and_rerenders_only_its_users(
        tmp_path: Path, server: ChartServer) -> None:
    root = built_efk_fleet(tmp_path, server)
    publish(server, SHARED_CHARTS / "kibana", version="2.4.0")  # the repository moves on
    run = doit(root)
    assert run.returncode == 0 and run.executed == []
    relock = doit(root, "lock")
    assert relock.returncode == 0, relock.stdout + relock.stderr
    assert f"{server.url} kibana: 2.3.0 -> 2.4.0" in relock.stdout
    pinned = {entry["chart"]: entry["resolved"] for entry in lock(root)["charts"]}
    assert pinned == {**EFK, "kibana": "2.4.0"}
    info = doit(root, "info", "render:c1:efk/kibana").stdout
    assert f"{server.url}/kibana moved from 2.3.0 to 2.4.0 (stacks.lock)" in info
    run = doit(root)
    assert run.returncode == 0, run.stderr
    assert sorted(run.renders) == ["render:c1:efk/kibana", "render:c2:efk/kibana"]
    assert "chart: kibana-2.4.0" in (root / "generated/c1/kibana.yaml").read_text()


def test_lock_moves_only_the_pins_it_is_given(tmp_path: Path, server: ChartServer) -> None:
    """`doit lock kibana` upgrades one chart, as a one-dependency pull request wants."""
    root = built_efk_fleet(tmp_path, server)
    publish(server, SHARED_CHARTS / "kibana", version="2.4.0")
    publish(server, SHARED_CHARTS / "elasticsearch", version="1.27.0")
    before = (root / "stacks.lock").read_bytes()
    typo = doit(root, "lock", "kibana", "kibanna")
    assert typo.returncode != 0
    assert (f"stacks.lock: no pin matches 'kibanna'; the pins are: {server.url} elasticsearch; "
            f"{server.url} elasticsearch-curator; ") in typo.stdout + typo.stderr
    assert (root / "stacks.lock").read_bytes() == before
    one = doit(root, "lock", "kibana")
    assert one.returncode == 0, one.stdout + one.stderr
    assert one.stdout.strip().splitlines()[-1] == f"{server.url} kibana: 2.3.0 -> 2.4.0"
    assert "1 of 4 pin(s) in stacks.lock moved" in one.stderr
    assert {e["chart"]: e["resolved"] for e in lock(root)["charts"]} == {**EFK, "kibana": "2.4.0"}
    module = subprocess.run([sys.executable, "-m", "rules.sources", "lock", str(root),
                             "--only", f"{server.url}/elasticsearch"],
                            capture_output=True, text=True)
    assert module.returncode == 0, module.stderr
    assert module.stdout == f"{server.url} elasticsearch: 1.26.0 -> 1.27.0\n"
    assert {e["chart"]: e["resolved"] for e in lock(root)["charts"]} == {
        **EFK, "kibana": "2.4.0", "elasticsearch": "1.27.0"}
    # a pin as the error lists it, and a repository URL with a trailing slash, name pins too
    for text in (f"{server.url} fluentd-elasticsearch", f"{server.url}/"):
        named = doit(root, "lock", text)
        assert named.returncode == 0, named.stdout + named.stderr


def test_an_exact_version_and_a_constraint(tmp_path: Path, server: ChartServer) -> None:
    for version in ("1.0.0", "1.2.0", "2.0.0", "2.1.0-rc.1"):
        publish(server, SHARED_CHARTS / "kured", version=version)
    root = tmp_path / "fleet"
    one_cluster_fleet(
        root,
        f"{{name: exact, type: helm, method: helm, source: {server.url}, path: kured,"
        " version: 1.0.0}",
        f"{{name: caret, type: helm, method: helm, source: {server.url}/, path: kured,"
        " version: ^1.0.0}",
        f"{{name: newest, type: helm, method: helm, source: {server.url}, path: kured}}")
    run = doit(root)
    assert run.returncode == 0, run.stderr
    chosen = {entry["version"]: entry["resolved"] for entry in lock(root)["charts"]}
    assert chosen == {"1.0.0": "1.0.0", "^1.0.0": "1.2.0", "": "2.0.0"}
    assert "chart: kured-1.2.0" in (root / "generated/c1/caret.yaml").read_text()


def test_a_local_chart_gets_its_repository_dependency_from_the_store(
        tmp_path: Path, server: ChartServer) -> None:
    publish(server, SHARED_CHARTS / "memcached")
    root = tmp_path / "fleet"
    one_cluster_fleet(root, "{name: cache, type: helm, path: cache}")
    write(root / "stacks/s/cache/Chart.yaml",
          "apiVersion: v2\nname: cache\nversion: 0.1.0\ndependencies:\n"
          f"  - name: memcached\n    version: ~2.7.0\n    repository: {server.url}\n"
          f"  - name: memcached\n    alias: sessions\n    version: 2.7.1\n"
          f"    repository: {server.url}\n")
    write(root / "stacks/s/cache/templates/cm.yaml",
          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: wrapper\n")
    write(root / "stacks/s/config/common.yaml",
          "subcomponents:\n  cache:\n    config:\n      memcached:\n        replicaCount: 5\n"
          "      sessions:\n        replicaCount: 7\n")
    run = doit(root)
    assert run.returncode == 0, run.stderr
    assert f"fetch:{server.url}/memcached@2.7.1" in run.executed
    output = (root / "generated/c1/cache.yaml").read_text()
    assert "name: wrapper" in output and "kind: StatefulSet" in output
    assert "replicas: 5" in output and "replicas: 7" in output  # the alias is a second copy
    assert not (root / "stacks/s/cache/charts").exists()  # the user's chart is untouched


def test_one_chart_at_two_versions_under_two_aliases_renders_both(
        tmp_path: Path, server: ChartServer) -> None:
    """Helm tells dependencies apart by name and version: memcached 2.7.1 as `old` and
    3.0.0 as `new` are two charts in the built copy, not one written over the other."""
    publish(server, SHARED_CHARTS / "memcached")
    publish(server, SHARED_CHARTS / "memcached", "3.0.0")
    root = tmp_path / "fleet"
    one_cluster_fleet(root, "{name: cache, type: helm, path: cache}")
    write(root / "stacks/s/cache/Chart.yaml",
          "apiVersion: v2\nname: cache\nversion: 0.1.0\ndependencies:\n"
          f"  - {{name: memcached, alias: old, version: 2.7.1, repository: '{server.url}'}}\n"
          f"  - {{name: memcached, alias: new, version: 3.0.0, repository: '{server.url}'}}\n")
    write(root / "stacks/s/config/common.yaml", "subcomponents:\n  cache:\n    config:\n"
          "      old: {replicaCount: 5}\n      new: {replicaCount: 7}\n")
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    sets = [d for d in yaml.safe_load_all((root / "generated/c1/cache.yaml").read_text())
            if d["kind"] == "StatefulSet"]
    assert sorted((s["metadata"]["labels"]["chart"], s["spec"]["replicas"]) for s in sets) == [
        ("new-3.0.0", 7), ("old-2.7.1", 5)]


def test_dependencies_named_by_alias_come_from_helms_repositories_yaml(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ChartServer(tmp_path / "served", credentials="ci:pw-0b5e") as server:
        publish(server, SHARED_CHARTS / "memcached")
        repositories = tmp_path / "helm/repositories.yaml"
        monkeypatch.setenv("HELM_REPOSITORY_CONFIG", str(repositories))
        root = tmp_path / "fleet"
        one_cluster_fleet(root, "{name: cache, type: helm, path: cache}")
        write(root / "stacks/s/cache/Chart.yaml",
              "apiVersion: v2\nname: cache\nversion: 0.1.0\ndependencies:\n"
              "  - {name: memcached, version: ~2.7.0, repository: '@stable'}\n"
              "  - {name: memcached, alias: sessions, version: 2.7.1, "
              "repository: 'alias:stable'}\n")
        missing = doit(root)
        write(repositories, f"repositories:\n- {{name: other, url: {server.url}}}\n")
        unnamed = doit(root)
        write(repositories, "apiVersion: ''\nrepositories:\n"
              f"- {{name: stable, url: {server.url}, username: ci, password: pw-0b5e}}\n")
        run = doit(root)
    for failed, problem in [(missing, f"there is no {repositories} naming it"),
                            (unnamed, f"{repositories} has no repository named 'stable' "
                                      "(it has: other)")]:
        assert failed.returncode != 0 and "Traceback" not in failed.stderr
        assert (f"stacks/s/component.yaml: subcomponents[0]: 'cache': chart repository "
                f"'@stable': {problem}; add it (as `helm repo add stable <url>` does)"
                ) in failed.stderr, failed.stderr
    assert run.returncode == 0, run.stdout + run.stderr
    assert "fetch:@stable/memcached@2.7.1" in run.executed
    assert {(pin["repository"], pin["version"]) for pin in lock(root)["charts"]} == {
        ("@stable", "~2.7.0"), ("alias:stable", "2.7.1")}
    assert (root / "generated/c1/cache.yaml").read_text().count("kind: StatefulSet") == 2
    # pinned and stored: the alias needs neither Helm's file nor the server any more
    repositories.unlink()
    shutil.rmtree(root / "generated")
    shutil.rmtree(root / ".stackyard")
    again = doit(root)
    assert again.returncode == 0, again.stderr
    assert (root / "generated/c1/cache.yaml").read_text().count("kind: StatefulSet") == 2


def test_static_manifest_over_http(tmp_path: Path, server: ChartServer) -> None:
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: downloaded\n"
    write(server.folder / "manifests/cm.yaml", body)
    root = tmp_path / "fleet"
    one_cluster_fleet(root, "{name: remote, type: static, method: http, "
                            f"source: {server.url}/manifests/cm.yaml}}")
    run = doit(root)
    assert run.returncode == 0, run.stderr
    assert (root / "generated/c1/remote.yaml").read_text() == f"---\n{body}\n"
    digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    assert lock(root)["files"] == [{"url": f"{server.url}/manifests/cm.yaml", "digest": digest}]
    assert downloads(server, "cm.yaml") == 1
    # the file changes upstream: the lock keeps the build on the pinned content
    changed = body.replace("downloaded", "changed")
    write(server.folder / "manifests/cm.yaml", changed)
    assert doit(root).executed == []
    # until `doit lock` pins the new content, which the next build renders
    relock = doit(root, "lock")
    assert relock.returncode == 0, relock.stdout + relock.stderr
    new_digest = "sha256:" + hashlib.sha256(changed.encode()).hexdigest()
    assert f"{server.url}/manifests/cm.yaml: {digest[:19]} -> {new_digest[:19]}" \
        in relock.stdout
    assert lock(root)["files"] == [{"url": f"{server.url}/manifests/cm.yaml",
                                    "digest": new_digest}]
    run = doit(root)
    assert run.renders == ["render:c1:s/remote"], run.stderr
    assert (root / "generated/c1/remote.yaml").read_text() == f"---\n{changed}\n"
    assert downloads(server, "cm.yaml") == 2  # by the lock; the build found it stored


def test_a_pinned_manifest_is_fetched_again_on_a_fresh_machine_and_checked(
        tmp_path: Path, server: ChartServer, cache: Path) -> None:
    """CI: the lock and generated/ come from git, the store and .stackyard/ are empty."""
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: downloaded\n"
    write(server.folder / "manifests/cm.yaml", body)
    root = tmp_path / "fleet"
    url = f"{server.url}/manifests/cm.yaml"
    one_cluster_fleet(root, f"{{name: remote, type: static, method: http, source: {url}}}")
    assert doit(root).returncode == 0
    before = snapshot(root / "generated")

    def fresh_machine() -> None:
        shutil.rmtree(cache)
        shutil.rmtree(root / ".stackyard")

    fresh_machine()
    run = doit(root)
    assert run.returncode == 0, run.stderr
    assert f"fetch:{url}" in run.executed
    assert downloads(server, "cm.yaml") == 2
    assert snapshot(root / "generated") == before

    write(server.folder / "manifests/cm.yaml", body.replace("downloaded", "changed"))
    fresh_machine()
    run = doit(root)
    assert run.returncode != 0
    report = run.stdout + run.stderr
    assert f"fetch {url}: {url} has digest sha256:" in report, report
    assert ("but stacks.lock pins sha256:cc8b06" in report and "(it changed since it was "
            "locked; `doit lock` pins the new content)" in report)
    assert "Traceback" not in report
    assert snapshot(root / "generated") == before
    assert [p for p in (cache / "files").iterdir() if p.suffix != ".lock"] == [], \
        "no entry with the wrong content"


@pytest.mark.parametrize(("entry", "message"), [
    ("{name: a, type: helm, method: helm, source: URL/missing, path: kured}",
     "stacks/s/component.yaml: subcomponents[0]: 'a': HTTP 404 File not found from "
     "URL/missing/index.yaml"),
    ("{name: a, type: helm, method: helm, source: URL, path: nope}",
     "stacks/s/component.yaml: subcomponents[0]: 'a': no chart 'nope' in URL/index.yaml"),
    ("{name: a, type: helm, method: helm, source: URL, path: kured, version: 9.9.9}",
     "stacks/s/component.yaml: subcomponents[0]: 'a': chart 'kured' has no version '9.9.9' "
     "in URL/index.yaml (it has: 1.1.1)"),
    ("{name: a, type: helm, method: helm, source: URL/broken, path: kured}",
     "URL/broken/index.yaml is not a Helm repository index"),
    ("{name: a, type: helm, method: helm, source: 'http://127.0.0.1:9', path: kured}",
     "'a': cannot reach http://127.0.0.1:9/index.yaml"),
    ("{name: a, type: helm, method: helm, source: URL/evil, path: kured, version: ../../x}",
     "'a': '../../x' is not a valid version (from URL/evil)"),
    ("{name: a, type: helm, method: helm, source: URL}",
     "subcomponents[0].path: helm 'a' with method helm needs `path` (the chart name)"),
    ("{name: a, type: helm, method: helm, path: kured}",
     "subcomponents[0].source: helm 'a' with method helm needs `source` (the chart "
     "repository URL)"),
    ("{name: a, type: helm, method: helm, source: 'oci://127.0.0.1:9/charts', path: kured}",
     "'a': cannot list the versions of oci://127.0.0.1:9/charts/kured"),
    ("{name: a, type: static, method: http, source: URL/m/none.yaml}",
     "'a': HTTP 404 File not found from URL/m/none.yaml"),
    ("{name: a, type: static, method: http, source: URL/m/file.txt}",
     "subcomponents[0].source: static 'a' with method http needs the URL of a .yaml or .yml "
     "file, not 'URL/m/file.txt'"),
])
def test_bad_remote_input_fails_clearly_and_keeps_the_output(
        tmp_path: Path, server: ChartServer, cache: Path, entry: str, message: str) -> None:
    publish(server, SHARED_CHARTS / "kured")
    write(server.folder / "broken/index.yaml", "apiVersion: v1\nentries: [1, 2]\n")
    write(server.folder / "evil/index.yaml", "apiVersion: v1\nentries:\n  kured:\n"
          "  - {version: ../../x, digest: '00', urls: [x.tgz]}\n")
    root = tmp_path / "fleet"
    one_cluster_fleet(root, "{name: ok, type: static, path: m}")
    write(root / "stacks/s/m/cm.yaml", "kind: ConfigMap\n")
    assert doit(root).returncode == 0
    before = snapshot(root / "generated")
    write(root / "stacks/s/component.yaml",
          f"name: s\nsubcomponents:\n  - {entry.replace('URL', server.url)}\n")
    run = doit(root)
    assert run.returncode != 0
    assert message.replace("URL/", f"{server.url}/") in run.stdout + run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert snapshot(root / "generated") == before
    assert temp_entries(cache) == []


def kured_fleet(tmp_path: Path, server: ChartServer) -> Path:
    """One cluster with the kured chart from `server`, built once."""
    publish(server, SHARED_CHARTS / "kured")
    root = tmp_path / "fleet"
    one_cluster_fleet(root,
                      f"{{name: k, type: helm, method: helm, source: {server.url}, path: kured}}")
    assert doit(root).returncode == 0
    return root


def test_a_changed_archive_is_a_digest_mismatch(tmp_path: Path, server: ChartServer,
                                               cache: Path) -> None:
    root = kured_fleet(tmp_path, server)
    before = snapshot(root / "generated")
    # the same version is published again with other content, and the store is gone
    changed = tmp_path / "kured"
    shutil.copytree(SHARED_CHARTS / "kured", changed)
    write(changed / "templates/extra.yaml", "kind: Extra\n")
    publish(server, changed)
    shutil.rmtree(cache)
    write(root / "stacks/s/config/common.yaml", "subcomponents:\n  k:\n    namespace: x\n")
    run = doit(root)
    assert run.returncode != 0
    report = run.stdout + run.stderr
    assert "has digest sha256:" in report and "but stacks.lock pins sha256:" in report, report
    assert snapshot(root / "generated") == before
    assert [p for p in (cache / "charts").rglob("kured-*") if p.suffix != ".lock"] == []


def test_lock_shows_the_digest_of_a_chart_republished_under_its_version(
        tmp_path: Path, server: ChartServer) -> None:
    root = kured_fleet(tmp_path, server)
    [old] = lock(root)["charts"]
    changed = tmp_path / "kured"
    shutil.copytree(SHARED_CHARTS / "kured", changed)
    write(changed / "templates/extra.yaml", "kind: Extra\n")
    publish(server, changed)
    run = doit(root, "lock")
    assert run.returncode == 0, run.stdout + run.stderr
    [new] = lock(root)["charts"]
    assert new["resolved"] == old["resolved"] and new["digest"] != old["digest"]
    version = old["resolved"]
    assert (f"{server.url} kured: {version} ({old['digest'][:19]}) -> {version} "
            f"({new['digest'][:19]})") in run.stdout, run.stdout


def test_credentials_in_the_repository_url_are_sent_and_never_written(
        tmp_path: Path) -> None:
    with ChartServer(tmp_path / "served", credentials="user:s3cret") as server:
        publish(server, SHARED_CHARTS / "kured")
        url = server.url.replace("http://", "http://user:s3cret@")
        root = tmp_path / "fleet"
        one_cluster_fleet(root,
                          f"{{name: k, type: helm, method: helm, source: '{url}', path: kured}}")
        run = doit(root)
        assert run.returncode == 0, run.stderr
        assert "http://***@127.0.0.1" in (root / "stacks.lock").read_text()
        assert "s3cret" not in run.stdout + run.stderr
        written = [p for folder in ("generated", ".stackyard") for p in
                   (root / folder).rglob("*") if p.is_file()]
        assert written and not [p for p in written if b"s3cret" in p.read_bytes()]
        assert "s3cret" not in (root / "stacks.lock").read_text()


def test_a_password_holding_an_at_sign_is_hidden_whole(tmp_path: Path) -> None:
    """urllib takes the user name and password up to the last `@` of the authority (and
    sends them); redact took them up to the first, leaving the rest of the password in
    stacks.lock and task names."""
    with ChartServer(tmp_path / "served", credentials="deploy:s3cr@tPASSWORD") as server:
        write(server.folder / "m/cm.yaml", "kind: ConfigMap\n")
        url = server.url.replace("http://", "http://deploy:s3cr@tPASSWORD@") + "/m/cm.yaml"
        shown = server.url.replace("http://", "http://***@") + "/m/cm.yaml"
        root = tmp_path / "fleet"
        one_cluster_fleet(root, f"{{name: m, type: static, method: http, source: '{url}'}}")
        run = doit(root)
        listed = doit(root, "list", "--all")
    assert run.returncode == 0, run.stdout + run.stderr
    assert lock(root)["files"][0]["url"] == shown
    assert f"fetch:{shown} " in listed.stdout, listed.stdout
    for text in (run.stdout + run.stderr, listed.stdout + listed.stderr,
                 (root / "stacks.lock").read_text()):
        assert "tPASSWORD" not in text and "s3cr" not in text, text


def test_frozen_refuses_an_unpinned_chart_and_fetches_nothing(
        tmp_path: Path, server: ChartServer, monkeypatch: pytest.MonkeyPatch) -> None:
    root = kured_fleet(tmp_path, server)
    # the definition now asks for a version the lock has not seen
    write(root / "stacks/s/component.yaml", "name: s\nsubcomponents:\n"
          f"  - {{name: k, type: helm, method: helm, source: {server.url}, path: kured,"
          " version: 1.1.1}\n")
    server.requests.clear()
    monkeypatch.setenv("STACKYARD_FROZEN", "1")
    run = doit(root)
    assert run.returncode != 0
    assert ("stacks/s/component.yaml: subcomponents[0]: 'k': chart 'kured' version '1.1.1' "
            "is not pinned in stacks.lock and STACKYARD_FROZEN is set") in run.stderr, run.stderr
    assert server.requests == []


def test_frozen_refuses_an_unpinned_manifest_and_downloads_nothing(
        tmp_path: Path, server: ChartServer, monkeypatch: pytest.MonkeyPatch) -> None:
    write(server.folder / "manifests/cm.yaml", "apiVersion: v1\nkind: ConfigMap\n")
    root = tmp_path / "fleet"
    url = f"{server.url}/manifests/cm.yaml"
    one_cluster_fleet(root, f"{{name: remote, type: static, method: http, source: {url}}}")
    monkeypatch.setenv("STACKYARD_FROZEN", "1")
    run = doit(root)
    assert run.returncode != 0
    assert run.stderr.strip() == (
        f"ERROR: stacks/s/component.yaml: subcomponents[0]: 'remote': '{url}' is not "
        "pinned in stacks.lock and STACKYARD_FROZEN is set; run a build without it to pin "
        "it"), run.stderr
    assert server.requests == []
    assert not (root / "stacks.lock").exists()


def test_two_builds_sharing_the_store_download_each_archive_once(
        tmp_path: Path, server: ChartServer, cache: Path) -> None:
    archives = [publish(server, SHARED_CHARTS / chart) for chart in EFK]
    roots = [tmp_path / "fleet-a", tmp_path / "fleet-b"]
    for root in roots:
        efk_fleet(root, server.url)
    builds = [subprocess.Popen([sys.executable, "-m", "doit", "-n", "2"], cwd=root,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for root in roots]
    for build in builds:
        out, err = build.communicate(timeout=600)
        assert build.returncode == 0, out + err
    assert [downloads(server, archive.name) for archive in archives] == [1, 1, 1, 1]
    assert (roots[0] / "generated/c1/kibana.yaml").read_bytes() == (
        roots[1] / "generated/c2/kibana.yaml").read_bytes()
    assert temp_entries(cache) == []


def test_a_vendored_repository_chart_added_after_a_build_wins_from_the_next_build(
        tmp_path: Path, server: ChartServer) -> None:
    root = built_efk_fleet(tmp_path, server, clusters=("c1",))
    shutil.copytree(SHARED_CHARTS / "kibana", root / "stacks/efk/helm_repos/kibana")
    chart = root / "stacks/efk/helm_repos/kibana/Chart.yaml"
    chart.write_text(chart.read_text().replace("version: 2.3.0", "version: 2.3.0-vendored"))
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "chart: kibana-2.3.0-vendored" in (root / "generated/c1/kibana.yaml").read_text()


DRIBBLES = 3000  # one byte every 0.02 s: a minute, far past the 3 s deadline


class _DribblingServer(http.server.ThreadingHTTPServer):
    finished: threading.Event  # set by the test: handlers stop dribbling


class _Dribbling(http.server.BaseHTTPRequestHandler):
    """Promises DRIBBLES bytes and sends one every 0.02 s: no read ever waits long."""

    server: _DribblingServer

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(DRIBBLES))
        self.end_headers()
        for _ in range(DRIBBLES):
            if self.server.finished.wait(0.02):
                return
            self.wfile.write(b"x")
            self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _DribblingHeaders(http.server.BaseHTTPRequestHandler):
    """Sends its status line, then one byte of a header every 0.02 s: urllib reads headers
    with no deadline of its own."""

    server: _DribblingServer

    def do_GET(self) -> None:
        self.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
        for _ in range(DRIBBLES):
            if self.server.finished.wait(0.02):
                return
            self.wfile.write(b"a")
            self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.mark.parametrize("handler", [_Dribbling, _DribblingHeaders])
def test_a_slow_or_stalled_download_times_out(
        monkeypatch: pytest.MonkeyPatch, handler: type[http.server.BaseHTTPRequestHandler]
        ) -> None:
    """A read waits at most STACKYARD_NETWORK_TIMEOUT seconds, a whole download ten times
    that; the error names the URL (credentials hidden) and says it timed out. The server
    dribbles for a minute, 15 times faster than the stall timeout: only the whole-download
    deadline can end the GET first, and the message says which limit ended it."""
    monkeypatch.setenv("STACKYARD_NETWORK_TIMEOUT", "0.3")
    dribbling = _DribblingServer(("127.0.0.1", 0), handler)
    dribbling.daemon_threads = True
    dribbling.finished = threading.Event()
    with serving(dribbling), pytest.raises(SourceError) as slow:
        try:
            sources_http.get(f"http://u:s3cret@127.0.0.1:{dribbling.server_address[1]}/x.tgz")
        finally:
            dribbling.finished.set()
    assert str(slow.value).startswith(
        f"http://***@127.0.0.1:{dribbling.server_address[1]}/x.tgz timed out: not downloaded "
        "in 3 s"), slow.value
    with socket.create_server(("127.0.0.1", 0)) as stalled_server, \
            pytest.raises(SourceError) as stalled:  # it accepts and never answers
        url = f"http://127.0.0.1:{stalled_server.getsockname()[1]}/index.yaml"
        sources_http.get(url)
    assert str(stalled.value).startswith(f"{url} timed out: nothing received for 0.3 s"), (
        stalled.value)


def test_a_packaged_charts_file_dependency_stays_in_the_chart(
        tmp_path: Path, server: ChartServer, cache: Path) -> None:
    """A chart from a repository may not read a folder of the build machine through a
    `file://` dependency (D41); Helm would not either: it needs them in charts/."""
    secret = tmp_path / "secret"
    write(secret / "Chart.yaml", "apiVersion: v2\nname: secret\nversion: 0.1.0\n")
    write(secret / "templates/cm.yaml", "kind: ConfigMap\nmetadata: {name: topsecret}\n")
    up = "/".join([".."] * (len(cache.parts) + 8)) + str(secret)
    chart = tmp_path / "tricky"
    write(chart / "Chart.yaml", "apiVersion: v2\nname: tricky\nversion: 1.0.0\ndependencies:\n"
          f"- {{name: secret, version: 0.1.0, repository: 'file://{up}'}}\n")
    write(chart / "templates/cm.yaml", "kind: ConfigMap\nmetadata: {name: tricky}\n")
    with tarfile.open(server.folder / "tricky-1.0.0.tgz", "w:gz") as archive:
        archive.add(chart, "tricky")  # `helm package` would refuse it: not in charts/
    publish(server, SHARED_CHARTS / "kured")  # and index the folder
    root = tmp_path / "fleet"
    one_cluster_fleet(root, f"{{name: t, type: helm, method: helm, source: {server.url}, "
                            "path: tricky}")

    run = doit(root)

    assert run.returncode != 0
    assert f"dependency 'secret' (file://{up}) is outside the fetched chart's source" \
        in run.stdout + run.stderr, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert not (root / "generated/c1").exists()


def _member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = ""
            ) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data)
    info.mode = 0o777 if kind == tarfile.DIRTYPE else 0o644
    return info, data


def serve_archive(server: ChartServer, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    """`evil-1.0.0.tgz`: a chart folder `evil/` and then `members`, listed in the server's
    index with its true digest (what a hostile or broken repository can always give)."""
    archive = server.folder / "evil-1.0.0.tgz"
    chart = _member("evil/Chart.yaml", data=b"apiVersion: v2\nname: evil\nversion: 1.0.0\n")
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for info, data in [chart, *members]:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    write(server.folder / "index.yaml", "apiVersion: v1\nentries:\n  evil:\n  - version: 1.0.0\n"
          f"    digest: {digest}\n    urls: [evil-1.0.0.tgz]\n")


def _escape_members(staging: str, levels_up: int) -> list[tuple[tarfile.TarInfo, bytes]]:
    """CVE-2025-4517: folders and links nested until the path passes PATH_MAX, where
    `os.path.realpath` (and so `filter="data"`) stops resolving links; then a file written
    through them lands `levels_up` folders above `staging`."""
    steps = "abcdefghijklmnop"
    folder = "d" * ((4096 - len(staging) - 1) // (len(steps) + 1))
    members, path = [], ""
    for step in steps:
        members += [_member(os.path.join(path, folder), tarfile.DIRTYPE),
                    _member(os.path.join(path, step), tarfile.SYMTYPE, link=folder)]
        path = os.path.join(path, folder)
    deep = os.path.join(*steps, "l" * 254)
    return [*members,
            _member(deep, tarfile.SYMTYPE, link=os.path.join(*[".."] * len(steps))),
            _member("escape", tarfile.SYMTYPE, link=os.path.join(deep, *[".."] * levels_up)),
            _member("escape/PWNED", data=b"written outside the store\n")]


def test_a_chart_archive_escaping_the_store_through_links_is_refused(
        tmp_path: Path, server: ChartServer, cache: Path) -> None:
    """The archive that wrote outside the store with `filter="data"` alone (Python 3.11.7):
    its staging folder is `.<chart>-<version>-<16 of its digest>.<8 of mkdtemp>`, four
    levels below tmp_path."""
    repository = cache / "charts" / xxhash.xxh3_64_hexdigest(server.url.encode())
    serve_archive(server, _escape_members(f"{repository}/.evil-1.0.0-{'0' * 16}.{'x' * 8}", 4))
    root = tmp_path / "fleet"
    one_cluster_fleet(root, f"{{name: k, type: helm, method: helm, source: {server.url}, "
                            "path: evil}")
    run = doit(root)
    report = run.stdout + run.stderr
    assert run.returncode != 0
    assert not (tmp_path / "PWNED").exists()
    assert (f"fetch {server.url}/evil@1.0.0: {server.url}/evil@1.0.0: refusing its chart "
            "archive (sha256:") in report, report
    assert "member 'a' is a symbolic link to 'ddd" in report, report
    assert [p.suffix for p in repository.iterdir()] == [".lock"]


@pytest.mark.parametrize(("members", "message"), [
    ([_member("evil/templates/cm.yaml", tarfile.SYMTYPE, link="../values.yaml")],
     "member 'evil/templates/cm.yaml' is a symbolic link to '../values.yaml'"),
    ([_member("evil/values.yaml", data=b"a: 1\n"),
      _member("evil/templates/cm.yaml", tarfile.LNKTYPE, link="evil/values.yaml")],
     "member 'evil/templates/cm.yaml' is a hard link to 'evil/values.yaml'"),
    ([_member("evil/templates/fifo", tarfile.FIFOTYPE)],
     "member 'evil/templates/fifo' is not a regular file (a device, a fifo or a sparse file)"),
    ([_member("evil/templates/holes.yaml", tarfile.GNUTYPE_SPARSE)],
     "member 'evil/templates/holes.yaml' is not a regular file (a device, a fifo or a sparse "
     "file)"),
    ([_member("/evil/values.yaml", data=b"a: 1\n")],
     "member '/evil/values.yaml' leaves the chart folder (an absolute name or a '..' part)"),
    ([_member("evil/../../outside.yaml", data=b"a: 1\n")],
     "member 'evil/../../outside.yaml' leaves the chart folder"),
    ([_member("evil/values.yaml", data=bytes(5 * 1024 * 1024 + 1))],
     "member 'evil/values.yaml' has 5242881 bytes; Helm refuses a chart file over 5242880 "
     "bytes (5 MiB)"),
    ([_member(f"evil/files/{n}", data=bytes(5 * 1024 * 1024)) for n in range(20)],
     "its files pass 104857600 bytes at member 'evil/files/19'; Helm refuses a chart over "
     "100 MiB"),
])
def test_a_chart_archive_with_links_or_over_helms_limits_is_refused(
        server: ChartServer, cache: Path, members: list[tuple[tarfile.TarInfo, bytes]],
        message: str) -> None:
    serve_archive(server, members)
    pin = artifacts.resolve_chart(server.url, "evil", "", "")
    fetch = artifacts.chart_fetch(server.url, "evil", pin, "")
    with pytest.raises(SourceError) as refused:
        artifacts.ensure(fetch)
    assert str(refused.value).startswith(
        f"{server.url}/evil@1.0.0: refusing its chart archive ({pin.digest}): "), refused.value
    assert message in str(refused.value), refused.value
    assert [p.suffix for p in fetch.path.parent.iterdir()] == [".lock"]


@pytest.mark.parametrize("where", ["source", "index"])
def test_a_file_url_is_not_downloaded(tmp_path: Path, server: ChartServer, cache: Path,
                                      where: str) -> None:
    """urllib reads `file:` URLs too: a manifest source or an index's `urls:` entry could
    copy any file of the machine into generated/."""
    secret = write(tmp_path / "secret.yaml", "kind: Secret\ndata: {key: hunter2}\n")
    archive = publish(server, SHARED_CHARTS / "kured")
    local = archive.rename(tmp_path / archive.name)  # served, digest and all, from file://
    index = server.folder / "index.yaml"
    index.write_text(index.read_text().replace(f"- {archive.name}", f"- file://{local}"))
    root = tmp_path / "fleet"
    if where == "source":
        one_cluster_fleet(root, f"{{name: a, type: static, method: http, source: "
                                f"'file://{secret}'}}")
        message = (f"'a': file://{secret}: only http:// and https:// URLs are downloaded (a "
                   "local manifest or chart is a component without `method`)")
    else:
        one_cluster_fleet(root, f"{{name: a, type: helm, method: helm, source: {server.url}, "
                                "path: kured}")
        message = (f"file://{local} (chart 'kured' 1.1.1 in {server.url}/index.yaml): only "
                   "http:// and https:// URLs are downloaded")
    run = doit(root)
    assert run.returncode != 0, run.stdout
    assert message in run.stdout + run.stderr, run.stdout + run.stderr
    assert not (root / "generated").exists()
    assert temp_entries(cache) == []


class _ToFTP(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", "ftp://127.0.0.1:9/cm.yaml")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def test_a_redirect_to_another_scheme_is_not_followed() -> None:
    redirecting = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ToFTP)
    url = f"http://127.0.0.1:{redirecting.server_address[1]}/cm.yaml"
    with serving(redirecting), pytest.raises(SourceError) as refused:
        sources_http.get(url)
    assert str(refused.value) == (f"ftp://127.0.0.1:9/cm.yaml (a redirect from {url}): only "
                                  "http:// and https:// URLs are downloaded (a local manifest "
                                  "or chart is a component without `method`)")


LINK_LOCAL = "169.254.77.1"


@pytest.fixture
def link_local_server(tmp_path: Path) -> Iterator[str]:
    """An HTTP server on a link-local address of the loopback interface (added when the
    machine allows it, and removed afterwards), where a cloud's metadata service would be.
    Needs CAP_NET_ADMIN: skipped elsewhere, failed there when STACKYARD_REQUIRE_NET_ADMIN
    is set (.ci/run sets it when its own `ip addr add` works)."""
    added = False
    probe = socket.socket()
    try:
        probe.bind((LINK_LOCAL, 0))
    except OSError:
        try:
            adding = subprocess.run(["ip", "addr", "add", f"{LINK_LOCAL}/32", "dev", "lo"],
                                    capture_output=True, text=True, check=False)
            added, why = adding.returncode == 0, adding.stderr.strip()
        except FileNotFoundError:
            why = "no `ip` command (iproute2)"
        if not added:
            message = f"cannot add {LINK_LOCAL} to the loopback interface here: {why}"
            if os.environ.get("STACKYARD_REQUIRE_NET_ADMIN"):
                pytest.fail(message)
            pytest.skip(message)
    finally:
        probe.close()
    try:
        write(tmp_path / "served/meta.yaml", "kind: Secret\ndata: {token: METADATA}\n")
        handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                    directory=str(tmp_path / "served"))
        with serving(http.server.ThreadingHTTPServer((LINK_LOCAL, 0), handler)) as server:
            yield f"http://{LINK_LOCAL}:{server.server_address[1]}"
    finally:
        if added:  # the machine keeps no address a test made
            subprocess.run(["ip", "addr", "del", f"{LINK_LOCAL}/32", "dev", "lo"], check=True)


def test_nothing_is_downloaded_from_a_link_local_address(link_local_server: str) -> None:
    """Where clouds serve instance metadata and credentials (169.254.169.254): a stack
    from another team must not have that written into generated/."""
    with pytest.raises(SourceError) as refused:
        sources_http.get(f"{link_local_server}/meta.yaml")
    assert str(refused.value) == (
        f"{LINK_LOCAL} is at the link-local address {LINK_LOCAL}, where clouds serve "
        "instance metadata and credentials: not downloaded")


def test_a_packaged_chart_carrying_its_file_dependency_in_charts_renders(
        tmp_path: Path, server: ChartServer, cache: Path) -> None:
    """What `helm dependency update && helm package` makes of a `file://../common`
    library: the dependency is in `charts/`, where Helm reads it (audit 11: D41 refused
    it for the `file://` path that nothing reads)."""
    common = tmp_path / "src/common"
    write(common / "Chart.yaml", "apiVersion: v2\nname: common\nversion: 0.1.0\n")
    write(common / "templates/cm.yaml", "kind: ConfigMap\nmetadata: {name: common}\n")
    app = tmp_path / "src/app"
    write(app / "Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n"
          "- {name: common, version: 0.1.0, repository: 'file://../common'}\n")
    write(app / "templates/cm.yaml", "kind: ConfigMap\nmetadata: {name: app}\n")
    shutil.copytree(common, app / "charts/common")
    publish(server, app)
    root = tmp_path / "fleet"
    one_cluster_fleet(root, f"{{name: a, type: helm, method: helm, source: {server.url}, "
                            "path: app, version: 0.1.0}")

    run = doit(root)

    assert run.returncode == 0, run.stdout + run.stderr
    output = (root / "generated/c1/a.yaml").read_text()
    assert "name: common" in output and "name: app" in output
