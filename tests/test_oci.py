"""Charts from an OCI registry, end to end: a real registry on 127.0.0.1, the real doit."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.doit_runner import SHARED_CHARTS, doit, install_dodo, snapshot, write
from tests.helpers import files_containing
from tests.oci_registry import OciRegistry


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[OciRegistry]:
    registry = OciRegistry(tmp_path / "registry")
    yield registry
    registry.stop()


def package(chart: Path, folder: Path, version: str | None = None) -> Path:
    import helm_python

    return Path(helm_python.package(chart, destination=folder, version=version))


def fleet(root: Path, url: str, version: str = "") -> None:
    install_dodo(root)
    write(root / "stacks/s/component.yaml", "name: s\nsubcomponents:\n"
          f"  - {{name: kured, type: helm, method: helm, source: '{url}', path: kured,"
          f" version: '{version}'}}\n")
    write(root / "environments/c1.yaml", "stack: ../stacks/s\n")
    write(root / "environments/c2.yaml", "stack: ../stacks/s\n")


def test_a_chart_from_an_oci_registry_is_pinned_fetched_and_rendered(
        tmp_path: Path, registry: OciRegistry, cache: Path) -> None:
    archives = {v: package(SHARED_CHARTS / "kured", tmp_path / "pkg", v)
                for v in ("1.0.0", "1.1.0", "2.0.0")}
    for archive in archives.values():
        registry.push(archive)
    root = tmp_path / "fleet"
    fleet(root, registry.url, "^1.0.0")
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    [pin] = yaml.safe_load((root / "stacks.lock").read_text())["charts"]
    digest = "sha256:" + hashlib.sha256(archives["1.1.0"].read_bytes()).hexdigest()
    assert pin == {"repository": registry.url, "chart": "kured", "version": "^1.0.0",
                   "resolved": "1.1.0", "digest": digest}
    assert "chart: kured-1.1.0" in (root / "generated/c1/kured.yaml").read_text()
    assert (root / "generated/c1/kured.yaml").read_bytes() == (
        root / "generated/c2/kured.yaml").read_bytes()
    assert not [p for p in cache.rglob("*") if p.parent.name == "tmp"]  # no scratch left

    # offline: the registry is gone, a fresh workspace still builds from the store
    before = snapshot(root / "generated")
    registry.stop()
    for folder in ("generated", ".stackyard"):
        for path in sorted((root / folder).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    again = doit(root)
    assert again.returncode == 0, again.stdout + again.stderr
    assert snapshot(root / "generated") == before


@pytest.mark.parametrize(("version", "chart", "message"), [
    ("9.9.9", "kured", "{ref}/kured has no version '9.9.9' (it has: 1.1.1)"),
    ("", "nope", "cannot list the versions of {ref}/nope"),
])
def test_bad_oci_references_fail_clearly(tmp_path: Path, registry: OciRegistry, version: str,
                                         chart: str, message: str) -> None:
    registry.push(package(SHARED_CHARTS / "kured", tmp_path / "pkg"))
    root = tmp_path / "fleet"
    fleet(root, registry.url, version)
    if chart != "kured":
        text = (root / "stacks/s/component.yaml").read_text().replace("path: kured",
                                                                      f"path: {chart}")
        write(root / "stacks/s/component.yaml", text)
    run = doit(root)
    assert run.returncode != 0
    assert message.format(ref=registry.url) in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and not (root / "generated").exists()


PASSWORD = "pw-51e0c4b9a7d2"


@pytest.fixture
def private_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                     ) -> Iterator[OciRegistry]:
    """A registry that wants alice's login, holding kured 1.0.0; HOME without logins."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    registry = OciRegistry(tmp_path / "registry", users={"alice": PASSWORD})
    registry.push(package(SHARED_CHARTS / "kured", tmp_path / "pkg", "1.0.0"))
    yield registry
    registry.stop()


def test_a_private_registry_gets_the_login_from_access_yaml_and_nothing_else_does(
        tmp_path: Path, private_registry: OciRegistry, cache: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "fleet"
    fleet(root, private_registry.url)
    write(root / "stacks/s/access.yaml", f"'{private_registry.url}': REGISTRY_LOGIN\n")
    monkeypatch.delenv("REGISTRY_LOGIN", raising=False)
    refused = doit(root)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "environment variable REGISTRY_LOGIN is not set" in refused.stderr
    assert (f"cannot list the versions of {private_registry.url}/kured" in refused.stderr
            and "basic credential not found" in refused.stderr), refused.stderr

    outputs = refused.stdout + refused.stderr
    for wrong, message in [
        ("alice:not-it-3f9a", "401: unauthorized"),
        (PASSWORD, "the token in REGISTRY_LOGIN is not `<user>:<password>`"),
    ]:
        monkeypatch.setenv("REGISTRY_LOGIN", wrong)
        run = doit(root)
        assert run.returncode != 0 and message in run.stderr, run.stderr
        assert "Traceback" not in run.stderr and not (root / "generated").exists()
        outputs += run.stdout + run.stderr
    assert "not-it-3f9a" not in outputs and PASSWORD not in outputs

    monkeypatch.setenv("REGISTRY_LOGIN", f"alice:{PASSWORD}")
    built = doit(root)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "chart: kured-1.0.0" in (root / "generated/c1/kured.yaml").read_text()
    # a fresh machine: the pinned archive is pulled again by its fetch task, logged in too
    for folder in (cache, root / ".stackyard", root / "generated"):
        shutil.rmtree(folder)
    again = doit(root)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"fetch:{private_registry.url}/kured@1.0.0" in again.stdout
    assert PASSWORD not in built.stdout + built.stderr + again.stdout + again.stderr
    assert files_containing(root, PASSWORD) == [] and files_containing(cache, PASSWORD) == []


def test_the_users_own_docker_login_reaches_a_private_registry(
        tmp_path: Path, private_registry: OciRegistry, cache: Path) -> None:
    root = tmp_path / "fleet"
    fleet(root, private_registry.url)
    refused = doit(root)  # HOME holds no login yet
    assert refused.returncode != 0
    assert refused.stderr.splitlines() == [
        f"ERROR: stacks/s/component.yaml: subcomponents[0]: 'kured': cannot list the versions"
        f" of {private_registry.url}/kured: GET \"http://{private_registry.host}/v2/charts/"
        "kured/tags/list\": basic credential not found"], refused.stderr
    login = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    write(tmp_path / "home/.docker/config.json",
          json.dumps({"auths": {private_registry.host: {"auth": login}}}))
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "chart: kured-1.0.0" in (root / "generated/c2/kured.yaml").read_text()


def test_a_login_written_into_the_registry_url_is_used_and_never_recorded(
        tmp_path: Path, private_registry: OciRegistry, cache: Path) -> None:
    root = tmp_path / "fleet"
    with_login = private_registry.url.replace("oci://", f"oci://alice:{PASSWORD}@")
    fleet(root, with_login)
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    [pin] = yaml.safe_load((root / "stacks.lock").read_text())["charts"]
    assert pin["repository"] == private_registry.url.replace("oci://", "oci://***@")
    assert doit(root).returncode == 0  # the lock's redacted entry serves the next build
    assert PASSWORD not in run.stdout + run.stderr
    assert [p.name for p in files_containing(root, PASSWORD)] == ["component.yaml"]
    assert files_containing(cache, PASSWORD) == []
