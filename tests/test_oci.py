"""Charts from an OCI registry, end to end: a real registry on 127.0.0.1, the real doit."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.doit_runner import SHARED_CHARTS, doit, install_dodo, snapshot, write
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
