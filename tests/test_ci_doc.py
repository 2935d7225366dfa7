"""The CI scripts in docs/ci.md, run exactly as written on a git repository of the example
fleet: they must do what the page says."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doit_runner import REPO, copy_example_fleet, edit

GIT_IDENTITY = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com",
                "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.com"}


def script(section: str) -> str:
    """The first `sh` block under the heading `section` of docs/ci.md."""
    page = (REPO / "docs/ci.md").read_text()
    body = page.split(f"## {section}\n", 1)[1]
    match = re.search(r"```sh\n(.*?)```", body, re.S)
    assert match, f"no sh block under {section!r}"
    return match.group(1)


def run(root: Path, command: str) -> subprocess.CompletedProcess[str]:
    """`sh -c command` in `root`, with this Python's `doit` first on PATH."""
    env = {**os.environ, **GIT_IDENTITY,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["sh", "-c", command], cwd=root, env=env, capture_output=True,
                          text=True, check=False, timeout=600)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The example fleet in a git repository, rendered and committed."""
    root = copy_example_fleet(tmp_path / "fleet")
    (root / ".gitignore").write_text("/.stackyard/\n__pycache__/\n")
    setup = run(root, "git init -q -b main && doit && git add -A && git commit -qm fleet")
    assert setup.returncode == 0, setup.stdout + setup.stderr
    return root


def test_the_check_job_passes_when_generated_matches_its_inputs(repo: Path) -> None:
    check = run(repo, script("The check job"))
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout == "", "nothing to render, nothing differs"
    shutil.rmtree(repo / ".stackyard")  # no CI cache: everything renders, still the same
    uncached = run(repo, script("The check job"))
    assert uncached.returncode == 0, uncached.stdout + uncached.stderr
    assert uncached.stdout.count(".  render:") == 15


def test_the_check_job_fails_on_a_commit_that_did_not_render(repo: Path) -> None:
    edit(repo / "stacks/platform/config/west.yaml", "web.west.example.com",
         "www.west.example.com")
    assert run(repo, "git commit -qam 'edit a layer, forget to render'").returncode == 0

    check = run(repo, script("The check job"))

    assert check.returncode == 1
    assert check.stdout.splitlines() == [
        ".  render:prod-west:platform/web", ".  prod-west",  # doit's report
        " M generated/prod-west/provenance.json", " M generated/prod-west/web/web.yaml"]
    assert "generated/ does not match stacks/ and environments/" in check.stderr


@pytest.mark.parametrize("cached", [True, False], ids=["cache", "no-cache"])
def test_the_check_job_fails_on_a_hand_edit_of_generated(repo: Path, cached: bool) -> None:
    """Same size, same provenance.json: the file's content still tells."""
    edit(repo / "generated/prod-west/web/web.yaml", "replicas: 3", "replicas: 9")
    assert run(repo, "git commit -qam 'a hand edit of the output'").returncode == 0
    if not cached:
        shutil.rmtree(repo / ".stackyard")

    check = run(repo, script("The check job"))

    assert check.returncode == 1, check.stdout + check.stderr
    assert check.stdout.splitlines()[-1] == " M generated/prod-west/web/web.yaml"
    assert "generated/ does not match stacks/ and environments/" in check.stderr


def test_the_check_job_fails_when_gitignore_hides_generated(repo: Path) -> None:
    """Fabrikate's .gitignore lists `generated`: git status then reports nothing, so the
    check must refuse it instead of passing whatever is committed."""
    (repo / ".gitignore").write_text("generated\n/.stackyard/\n")
    assert run(repo, "git rm -rq --cached generated && git commit -qam 'fab gitignore'"
               ).returncode == 0
    edit(repo / "stacks/platform/config/west.yaml", "web.west.example.com",
         "www.west.example.com")
    assert run(repo, "git commit -qam 'edit a layer, forget to render'").returncode == 0

    check = run(repo, script("The check job"))

    assert check.returncode == 1, check.stdout + check.stderr
    assert check.stdout == "", "it stops before building"
    assert check.stderr.splitlines() == [
        ".gitignore:1:generated\tgenerated/",
        "generated/ is git-ignored, so git cannot compare it: remove that line from "
        ".gitignore and commit generated/"]


def test_the_check_job_fails_when_gitignore_hides_files_below_generated(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.json\n/.stackyard/\n")
    assert run(repo, "git rm -rq --cached '*.json' && git commit -qam 'ignore json'"
               ).returncode == 0

    check = run(repo, script("The check job"))

    assert check.returncode == 1, check.stdout + check.stderr
    assert [line for line in check.stdout.splitlines() if line.startswith("!!")] == [
        f"!! generated/{cluster}/provenance.json" for cluster in ("dev", "prod-east",
                                                                  "prod-west")]
    assert "!! marks files .gitignore hides" in check.stderr


def test_the_render_job_commits_what_changed(repo: Path) -> None:
    (repo / "environments/staging.yaml").write_text("stack: ../stacks/platform\n"
                                                    "layers: [dev]\n")
    assert run(repo, "git add -A && git commit -qm 'a new cluster'").returncode == 0

    render = run(repo, script("The render job"))

    assert render.returncode == 0, render.stdout + render.stderr
    assert run(repo, "git status --porcelain").stdout == ""
    last = run(repo, "git show --stat --format=%s HEAD").stdout
    assert last.startswith("Render generated/") and "generated/staging/" in last
    again = run(repo, script("The render job"))
    assert again.returncode == 0 and run(repo, "git log --format=%s -1").stdout.strip() \
        == "Render generated/", "nothing changed: no second commit"
    assert run(repo, "git rev-list --count HEAD").stdout.strip() == "3"


@pytest.mark.parametrize("breakage", ["a bad layer", "generated/ ignored"])
def test_the_render_job_fails_when_the_build_or_the_add_fails(repo: Path,
                                                              breakage: str) -> None:
    """A sh script's status is its last command's: without `set -e` both passed."""
    if breakage == "a bad layer":
        (repo / "stacks/platform/config/west.yaml").write_text("config: [not, a, mapping]\n")
    else:
        (repo / ".gitignore").write_text("generated\n")
        (repo / "environments/staging.yaml").write_text("stack: ../stacks/platform\n")
    assert run(repo, "git add -A && git commit -qm 'break it'").returncode == 0
    head = run(repo, "git rev-parse HEAD").stdout

    render = run(repo, script("The render job"))

    assert render.returncode != 0, render.stdout + render.stderr
    assert run(repo, "git rev-parse HEAD").stdout == head, "nothing committed"
