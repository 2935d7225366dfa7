"""Helm's `repositories.yaml` as read for dependency aliases: what a hand-written or
damaged file gives (the whole build with aliases is in test_chartrepo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.sources import helm_repos
from rules.sources.store import SourceError


@pytest.mark.parametrize(("content", "problem"), [
    (b"repositories: 5\n", "{file} has no repository named 'stable' (it has: none)"),
    (b"- stable\n", "{file} has no repository named 'stable' (it has: none)"),
    (b"repositories:\n- {name: other, url: 'https://o'}\n- 7\n",
     "{file} has no repository named 'stable' (it has: other)"),
    (b"repositories:\n- name: stable\n", "its entry in {file} has no `url`"),
    (b"repositories: [\n", "cannot read {file}: while parsing"),
    (b"\xff\xfe", "cannot read {file}: 'utf-8' codec can't decode"),
])
def test_a_file_that_does_not_name_the_alias_says_what_is_wrong(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, problem: str) -> None:
    file = tmp_path / "repositories.yaml"
    file.write_bytes(content)
    monkeypatch.setenv("HELM_REPOSITORY_CONFIG", str(file))
    with pytest.raises(SourceError) as raised:
        helm_repos.lookup("@stable")
    assert str(raised.value).startswith("chart repository '@stable': "
                                        + problem.format(file=file)), raised.value


def test_the_file_is_found_where_helm_keeps_it(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("HELM_REPOSITORY_CONFIG", "HELM_CONFIG_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert helm_repos.config_file() == tmp_path / ".config/helm/repositories.yaml"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert helm_repos.config_file() == tmp_path / "xdg/helm/repositories.yaml"
    monkeypatch.setenv("HELM_CONFIG_HOME", str(tmp_path / "hch"))
    assert helm_repos.config_file() == tmp_path / "hch/repositories.yaml"
    (tmp_path / "hch").mkdir()
    (tmp_path / "hch/repositories.yaml").write_text(
        "repositories:\n- {name: stable, url: 'https://charts.example.com', username: u}\n")
    assert helm_repos.lookup("alias:stable") == helm_repos.HelmRepository(
        "https://charts.example.com", "u:")
