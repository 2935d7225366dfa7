"""Git sources end to end: real repositories in tmp_path (file:// URLs), the real doit."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rules.definitions import load_environment
from rules.errors import StackyardError
from rules.plan import plan_fleet
from rules.plan_cache import load_fleet
from rules.sources.cache import cache_root
from rules.sources.redact import redact
from rules.sources.store import Store, tree_ids_file
from rules.workspace import Workspace
from tests.doit_runner import (
    SHARED_CHARTS,
    doit,
    edit,
    git_stack_fleet,
    install_dodo,
    one_cluster_fleet,
    snapshot,
    write,
)
from tests.git_server import GitServer
from tests.helpers import commit, git, make_repo

EFK_CHARTS = ("elasticsearch", "elasticsearch-curator", "fluentd-elasticsearch", "kibana")


def mirrors(cache: Path) -> list[Path]:
    return sorted((cache / "git").glob("*.git"))


def trees(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "trees").glob("*/*") if p.is_dir())


def sidecars(cache: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in (cache / "trees").glob("*/*.treeids")}


def no_partial_entries(cache: Path) -> bool:
    return not [p for p in cache.rglob(".*") if p.is_dir()]


def lock_pins(root: Path) -> dict[tuple[str, str], str]:
    data = yaml.safe_load((root / "stacks.lock").read_text())
    return {(e["source"], e["ref"]): e["commit"] for e in data["sources"]}


def outputs(root: Path, cluster: str) -> dict[str, bytes]:
    return snapshot(root / "generated" / cluster)


def test_redact_hides_credentials() -> None:
    assert redact("https://user:token@host/x") == "https://***@host/x"
    assert redact("https://host/x") == "https://host/x"
    assert redact("file:///tmp/r") == "file:///tmp/r"
    # as urllib splits it: up to the last `@` before the first `/`, `?` or `#`
    assert redact("https://u:p@ss@host/a@b") == "https://***@host/a@b"
    assert redact("https://host/x?a=b@c") == "https://host/x?a=b@c"
    assert redact("https://host?x=1#u@v") == "https://host?x=1#u@v"


@pytest.fixture
def remote_stack(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A fleet whose stack pulls `app` from one repository, which pulls `nested` from another.

    Returns (fleet root, defs repository, nested repository).
    """
    nested = tmp_path / "remote" / "nested"
    nested_url = make_repo(nested, {
        "component.yaml": "name: nested\ntype: static\npath: m\n",
        "m/n.yaml": "kind: Nested\n",
        "config/common.yaml": "config: {own: 1}\n",
    })
    defs = tmp_path / "remote" / "defs"
    defs_url = make_repo(defs, {
        "app/component.yaml": f"""name: app
subcomponents:
  - name: web
    type: static
    path: manifests
  - name: sib
    source: ../sibling
  - name: deeper
    method: git
    source: {nested_url}
    branch: main
""",
        "app/manifests/web.yaml": "kind: Web\n",
        "app/config/prod.yaml": "subcomponents:\n  web: {config: {replicas: 3}}\n"
                                "  deeper: {config: {from: app}}\n",
        "sibling/component.yaml": "name: sib\ntype: static\npath: m\n",
        "sibling/m/a.yaml": "kind: Sib\n",
        "README.md": "defs\n",
    })
    root = tmp_path / "fleet"
    install_dodo(root)
    write(root / "stacks/s/component.yaml",
          f"name: s\nsubcomponents:\n  - name: app\n    method: git\n    source: {defs_url}\n"
          "    path: app\n")
    write(root / "stacks/s/config/prod.yaml", "subcomponents:\n  app:\n    subcomponents:\n"
          "      web: {config: {replicas: 5}}\n")
    write(root / "environments/c1.yaml", "stack: ../stacks/s\nlayers: [prod]\n")
    write(root / "environments/c2.yaml",
          f"stack: {{source: '{defs_url}', method: git, path: app}}\nlayers: [prod]\n")
    return root, defs, nested


def test_remote_stacks_with_their_own_layers_nested_and_as_an_environment_stack(
        remote_stack: tuple[Path, Path, Path], cache: Path) -> None:
    root, defs, nested = remote_stack
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    c1_files = outputs(root, "c1")
    assert {name: c1_files[name] for name in ("app/web.yaml", "app/sib/sib.yaml",
                                              "app/deeper/nested.yaml")} == {
        "app/web.yaml": b"---\nkind: Web\n\n",
        "app/sib/sib.yaml": b"---\nkind: Sib\n\n",
        "app/deeper/nested.yaml": b"---\nkind: Nested\n\n",
    }
    assert {"web.yaml", "sib/sib.yaml", "deeper/nested.yaml"} <= set(outputs(root, "c2"))
    provenance = json.loads(outputs(root, "c2")["provenance.json"])
    assert provenance["stack"] == f"file://{defs} app at HEAD"
    plans = plan_fleet(Workspace.at(root))
    c1 = {n.node_path: n.config.values for n in plans["c1"].nodes}
    assert c1["s/app/web"] == {"replicas": 5}  # the fleet's layer over the remote one
    assert c1["s/app/deeper"] == {"from": "app", "own": 1}  # remote layers, both levels
    assert {n.node_path: n.config.values for n in plans["c2"].nodes}["app/web"] == {
        "replicas": 3}
    pins = lock_pins(root)
    assert pins == {(f"file://{defs}", "HEAD"): git(defs, "rev-parse", "HEAD"),
                    (f"file://{nested}", "main"): git(nested, "rev-parse", "HEAD")}
    assert len(mirrors(cache)) == 2 and len(trees(cache)) == 2
    assert no_partial_entries(cache)


def test_rebuild_offline_after_the_remotes_are_gone(
        remote_stack: tuple[Path, Path, Path], cache: Path) -> None:
    root, defs, nested = remote_stack
    assert doit(root).returncode == 0
    shutil.rmtree(defs)
    shutil.rmtree(nested)
    shutil.rmtree(cache / "git")  # not even the mirrors are needed for pinned, stored trees
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.renders == []
    write(root / "stacks/s/config/prod.yaml", "subcomponents:\n  app:\n    subcomponents:\n"
          "      sib: {disabled: true}\n")  # re-plans c1 from the store, offline
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    files = outputs(root, "c1")
    assert "app/sib/sib.yaml" not in files
    assert files["app/deeper/nested.yaml"] == b"---\nkind: Nested\n\n"


def test_a_killed_fetch_leaves_nothing_the_next_fetch_does_not_clear(
        remote_stack: tuple[Path, Path, Path], cache: Path) -> None:
    """SIGKILL runs no clean-up: the temp folder a clone or checkout was being built in
    stays in the shared store. The next writer of that entry, holding its lock, clears
    it."""
    root, defs, _ = remote_stack
    store = Store(cache)
    url, commit = f"file://{defs}", git(defs, "rev-parse", "HEAD")
    leftovers = [store.mirror_path(url).parent / f".{store.mirror_path(url).name}.killed1",
                 store.tree_path(url, commit).parent / f".{commit}.killed2"]
    for leftover in leftovers:
        (leftover / "m").mkdir(parents=True)
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert [leftover.exists() for leftover in leftovers] == [False, False]
    assert no_partial_entries(cache)


def fleet_that_stops_using_a_pin(tmp_path: Path, name: str
                                 ) -> tuple[Path, Path, Path, bytes]:
    """A one-cluster fleet built with two git components pinned in stacks.lock, whose
    second component (from repository `name`) is then removed; and the lock as built."""
    component = {"component.yaml": "name: d\ntype: static\npath: m\n", "m/a.yaml": "kind: A\n"}
    kept, other = (make_repo(tmp_path / repo, component) for repo in ("kept", name))
    root = tmp_path / "fleet"
    one_cluster_fleet(root, f"{{name: a, method: git, source: {kept}, branch: main}}",
                      f"{{name: b, method: git, source: {other}, branch: main}}")
    assert doit(root).returncode == 0
    assert set(lock_pins(root)) == {(kept, "main"), (other, "main")}
    lock = (root / "stacks.lock").read_bytes()
    one_cluster_fleet(root, f"{{name: a, method: git, source: {kept}, branch: main}}")
    return root, kept, other, lock


def test_a_pin_no_cluster_uses_is_dropped_so_lock_never_asks_for_it(
        tmp_path: Path, cache: Path) -> None:
    """A removed component's branch may be deleted upstream: `doit lock` failed on it."""
    root, kept, _, _ = fleet_that_stops_using_a_pin(tmp_path, "dropped")
    doit(root, "info", "c1")  # plans the change first, and writes no lock
    assert doit(root).returncode == 0
    assert set(lock_pins(root)) == {(kept, "main")}
    shutil.rmtree(tmp_path / "dropped")
    relock = doit(root, "lock")
    assert relock.returncode == 0, relock.stdout + relock.stderr


def test_a_frozen_build_keeps_a_pin_no_cluster_uses(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under STACKYARD_FROZEN the lock must not change, not even to drop a pin."""
    root, _, _, before = fleet_that_stops_using_a_pin(tmp_path, "unused")
    monkeypatch.setenv("STACKYARD_FROZEN", "1")
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.executed == ["c1"]
    assert (root / "stacks.lock").read_bytes() == before


def test_lock_leaves_a_plan_cache_of_other_code_as_it_is(
        remote_stack: tuple[Path, Path, Path], cache: Path) -> None:
    """`doit lock` reads the plans' access files; a cache made by another version of
    Stackyard is the next build's to reset, not the lock's (it ran without the build's
    view of the fleet)."""
    root, _, _ = remote_stack
    assert doit(root).returncode == 0
    plans = root / ".stackyard/plans.sqlite3"
    with sqlite3.connect(plans) as connection:
        connection.execute("update entries set data = ? where name = ?",
                           (b"other code", "\0fingerprint"))
    before = plans.read_bytes()
    assert doit(root, "lock").returncode == 0
    assert plans.read_bytes() == before


def test_a_pinned_commit_gone_from_the_remote_is_a_clear_error(tmp_path: Path,
                                                               cache: Path) -> None:
    """A force-push drops the commit stacks.lock pins; a fresh machine cannot fetch it."""
    repo = tmp_path / "remote"
    url = make_repo(repo, {"component.yaml": "name: d\ntype: static\npath: m\n",
                           "m/a.yaml": "kind: A\n"})
    root = single_git_stack(tmp_path / "fleet", url)
    assert doit(root).returncode == 0
    before = snapshot(root / "generated")
    pinned = git(repo, "rev-parse", "HEAD")
    git(repo, "commit", "-q", "--amend", "-m", "rewritten")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    shutil.rmtree(cache)
    shutil.rmtree(root / ".stackyard")
    run = doit(root)
    assert run.returncode != 0
    assert (f"stacks/s/component.yaml: subcomponents[0]: git source of 'd' ({url} at main): "
            f"commit {pinned}, pinned in stacks.lock, is no longer in {url} (its history was "
            "rewritten?); `doit lock` pins the current one") in run.stderr, run.stderr
    assert snapshot(root / "generated") == before
    assert doit(root, "lock").returncode == 0
    again = doit(root)
    assert again.returncode == 0, again.stderr
    assert lock_pins(root) == {(url, "main"): git(repo, "rev-parse", "HEAD")}


def test_frozen_build_refuses_a_source_missing_from_the_lock(
        remote_stack: tuple[Path, Path, Path], cache: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root, _, _ = remote_stack
    monkeypatch.setenv("STACKYARD_FROZEN", "1")
    run = doit(root)
    assert run.returncode != 0
    assert "stacks/s/component.yaml: subcomponents[0]: git source of 'app'" in run.stderr
    assert "'HEAD' is not pinned in stacks.lock and STACKYARD_FROZEN is set" in run.stderr
    assert mirrors(cache) == [] and not (root / "stacks.lock").exists()


def test_commands_that_only_look_do_not_write_the_lock(
        remote_stack: tuple[Path, Path, Path], cache: Path) -> None:
    """`doit list` resolves an unpinned branch to plan, but a pin is recorded by a build."""
    root, defs, nested = remote_stack
    looks = {("list", "--all"): 0, ("info", "c1"): 1, ("forget", "c1"): 0, ("clean", "c1"): 0}
    for command, status in looks.items():  # doit info exits 1 for a task that would run
        run = doit(root, *command)
        assert run.returncode == status, run.stdout + run.stderr
        assert not (root / "stacks.lock").exists(), command
    assert "render:c1:s/app/deeper" in doit(root, "list", "--all").stdout
    git(nested, "commit", "-q", "--allow-empty", "-m", "moved after the look")
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert lock_pins(root) == {(f"file://{defs}", "HEAD"): git(defs, "rev-parse", "HEAD"),
                               (f"file://{nested}", "main"): git(nested, "rev-parse", "HEAD")}


def test_lock_moves_the_git_pins_named_by_url_or_pattern(
        remote_stack: tuple[Path, Path, Path], cache: Path) -> None:
    root, defs, nested = remote_stack
    assert doit(root).returncode == 0
    first = lock_pins(root)
    for repo in (defs, nested):
        git(repo, "commit", "-q", "--allow-empty", "-m", "moved")
    nested_only = doit(root, "lock", f"file://{nested}")
    assert nested_only.returncode == 0, nested_only.stdout + nested_only.stderr
    assert lock_pins(root) == {**first,
                               (f"file://{nested}", "main"): git(nested, "rev-parse", "HEAD")}
    by_pattern = doit(root, "lock", "*/remote/de*")
    assert by_pattern.returncode == 0, by_pattern.stdout + by_pattern.stderr
    assert lock_pins(root)[(f"file://{defs}", "HEAD")] == git(defs, "rev-parse", "HEAD")


def copy_charts(repo: Path) -> dict[str, str]:
    files = {}
    for chart in EFK_CHARTS:
        for path in (SHARED_CHARTS / chart).rglob("*"):
            if path.is_file():
                files[f"charts/{chart}/{path.relative_to(SHARED_CHARTS / chart)}"] = \
                    path.read_text()
    return files


def efk_stack(source: str) -> str:
    return "name: efk\nsubcomponents:\n" + "".join(
        f"  - name: {chart}\n    type: helm\n    {source}/{chart}\n" for chart in EFK_CHARTS)


def test_git_helm_charts_fetched_once_pinned_and_moved_by_lock(tmp_path: Path,
                                                               cache: Path) -> None:
    repo = tmp_path / "remote" / "charts"
    url = make_repo(repo, copy_charts(repo))
    root = tmp_path / "fleet"
    install_dodo(root)
    for chart in EFK_CHARTS:
        shutil.copytree(SHARED_CHARTS / chart, root / "stacks" / "charts" / chart)
    write(root / "stacks/local/component.yaml",
          efk_stack("method: local\n    path: ../charts"))
    write(root / "stacks/git/component.yaml",
          efk_stack(f"method: git\n    source: {url}\n    branch: main\n    path: charts"))
    write(root / "environments/local.yaml", "stack: ../stacks/local\n")
    write(root / "environments/git.yaml", "stack: ../stacks/git\n")
    write(root / "environments/git2.yaml", "stack: ../stacks/git\n")
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    manifests = {name: data for name, data in outputs(root, "git").items()
                 if name != "provenance.json"}
    assert len(manifests) == 6  # efk.yaml, four charts, kustomization.yaml
    assert manifests == {name: data for name, data in outputs(root, "local").items()
                         if name != "provenance.json"}  # the same charts, the same bytes
    assert len(mirrors(cache)) == 1 and len(trees(cache)) == 1
    first = lock_pins(root)[(url, "main")]

    # the branch moves: the build keeps the locked commit
    kibana = "charts/kibana/values.yaml"
    commit(repo, {kibana: (repo / kibana).read_text().replace("replicaCount: 1",
                                                               "replicaCount: 4")})
    run = doit(root)
    assert run.returncode == 0 and run.renders == []
    assert lock_pins(root)[(url, "main")] == first

    # `doit lock` is listed but a plain build never runs it
    assert "lock " in doit(root, "list").stdout and "lock" not in doit(root).executed
    frozen = subprocess.run([sys.executable, "-m", "doit", "lock"], cwd=root, text=True,
                            capture_output=True, env={**os.environ, "STACKYARD_FROZEN": "1"})
    assert frozen.returncode != 0 and "STACKYARD_FROZEN is set" in frozen.stderr
    assert lock_pins(root)[(url, "main")] == first
    relock = doit(root, "lock")
    assert relock.returncode == 0, relock.stdout + relock.stderr
    moved = f"{url} main: {first[:12]} -> {git(repo, 'rev-parse', 'HEAD')[:12]}"
    assert relock.executed == ["lock"] and moved in relock.stdout
    assert "1 of 1 pin(s) in stacks.lock moved" in relock.stderr
    info = doit(root, "info", "render:git:efk/kibana").stdout  # in the terms of the source
    now = git(repo, "rev-parse", "HEAD")[:12]
    assert f"{url}:charts/kibana moved from {first[:12]} to {now} (stacks.lock)" in info, info
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(run.renders) == ["render:git2:efk/kibana", "render:git:efk/kibana"]
    assert b"replicas: 4" in outputs(root, "git")["kibana.yaml"]

    # a commit touching an unrelated path moves the pin and re-renders nothing
    # (`python -m rules.sources lock` is the same without doit)
    commit(repo, {"README.md": "charts\n"})
    relock = subprocess.run([sys.executable, "-m", "rules.sources", "lock"], cwd=root,
                            capture_output=True, text=True, check=False)
    assert relock.returncode == 0 and relock.stdout.startswith(f"{url} main: ")
    run = doit(root)
    assert run.returncode == 0 and run.renders == []
    assert len(mirrors(cache)) == 1 and len(trees(cache)) == 3
    assert no_partial_entries(cache)


@pytest.mark.parametrize(("entry", "message"), [
    ("version: v9", "git source of 'app' ({url} at v9): no tag, branch or commit 'v9' in {url}"),
    ("path: ../..", "subcomponents[0].path: path '../..' of 'app' ({url} at HEAD) leaves the "
                    "repository"),
    ("path: nowhere", "subcomponents[0].path: path 'nowhere' does not exist in 'app'"),
    ("source: file:///nonexistent/repo.git", "git source of 'app' "
                                             "(file:///nonexistent/repo.git at HEAD): cannot "
                                             "fetch file:///nonexistent/repo.git"),
])
def test_bad_sources_fail_clearly_and_keep_the_previous_output(
        remote_stack: tuple[Path, Path, Path], cache: Path, entry: str, message: str) -> None:
    root, defs, _ = remote_stack
    assert doit(root).returncode == 0
    before = snapshot(root / "generated")
    component = root / "stacks/s/component.yaml"
    key = entry.split(":")[0]
    lines = [line for line in component.read_text().splitlines()
             if not line.strip().startswith(f"{key}:")]
    component.write_text("\n".join(lines) + f"\n    {entry}\n")
    run = doit(root)
    assert run.returncode != 0
    assert "stacks/s/component.yaml: subcomponents[0]" in run.stderr
    assert message.format(url=f"file://{defs}") in run.stderr, run.stderr
    assert snapshot(root / "generated") == before
    assert no_partial_entries(cache)


def test_version_as_tag_or_commit_and_branch_pins(tmp_path: Path, cache: Path) -> None:
    repo = tmp_path / "remote" / "defs"
    url = make_repo(repo, {"component.yaml": "name: d\ntype: static\npath: m\n",
                           "m/a.yaml": "kind: One\n"})
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1")
    second = commit(repo, {"m/a.yaml": "kind: Two\n"})
    root = tmp_path / "fleet"
    entries = {"tag": "version: v1", "sha": f"version: {first}",
               "short": f"version: '{first[:7]}'", "branch": "branch: main"}
    one_cluster_fleet(root, *(f"{{name: {name}, method: git, source: {url}, {ref}}}"
                              for name, ref in entries.items()))
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    files = outputs(root, "c1")
    assert files["tag/d.yaml"] == files["sha/d.yaml"] == b"---\nkind: One\n\n"
    assert files["short/d.yaml"] == b"---\nkind: One\n\n"
    assert files["branch/d.yaml"] == b"---\nkind: Two\n\n"
    assert lock_pins(root) == {(url, "v1"): first, (url, first): first,
                               (url, first[:7]): first, (url, "main"): second}
    assert len(mirrors(cache)) == 1 and len(trees(cache)) == 2


def test_a_name_that_is_both_a_tag_and_a_branch_is_said(tmp_path: Path, cache: Path) -> None:
    """D40: the tag is used, and the build says so."""
    repo = tmp_path / "remote" / "defs"
    url = make_repo(repo, {"component.yaml": "name: d\ntype: static\npath: m\n",
                           "m/a.yaml": "kind: Tagged\n"})
    git(repo, "tag", "same")
    commit(repo, {"m/a.yaml": "kind: Later\n"})
    git(repo, "branch", "same")  # the branch is at the later commit
    root = tmp_path / "fleet"
    one_cluster_fleet(root, f"{{name: d, method: git, source: {url}, branch: same}}")
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (f"stackyard: warning: {url} has a tag and a branch named 'same': the tag is used "
            "(D40 in docs/fabrikate-compat.md)") in run.stderr
    assert outputs(root, "c1")["d/d.yaml"] == b"---\nkind: Tagged\n\n"


def test_an_abbreviated_commit_naming_two_commits_says_so(tmp_path: Path, cache: Path
                                                          ) -> None:
    repo = tmp_path / "remote" / "defs"
    url = make_repo(repo, {"component.yaml": "name: d\ntype: static\npath: m\n",
                           "m/a.yaml": "kind: One\n"})
    # 2,000 commits: some two of them share their first four hex digits
    stream = "".join(f"commit refs/heads/many\ncommitter t <t@example.com> {n} +0000\n"
                     f"data 2\n{n % 10}\n\n" for n in range(2000))
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], input=stream,
                   text=True, check=True)
    commits = git(repo, "rev-list", "many").split()
    prefixes = [c[:4] for c in commits]
    shared = next(p for p in prefixes if prefixes.count(p) > 1)
    root = tmp_path / "fleet"
    one_cluster_fleet(root, f"{{name: d, method: git, source: {url}, version: '{shared}'}}")
    run = doit(root)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert (f"no tag, branch or commit '{shared}' in {url} (more than one object starts with "
            "it: give more of the commit id)") in run.stderr, run.stderr


def test_credentials_never_reach_the_error(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "fleet"
    one_cluster_fleet(root, "{name: app, method: git, "
                            "source: 'https://user:s3cret@127.0.0.1:9/defs.git'}")
    run = doit(root)
    assert run.returncode != 0
    assert "cannot fetch https://***@127.0.0.1:9/defs.git" in run.stderr, run.stderr
    assert "s3cret" not in run.stdout + run.stderr
    assert mirrors(cache) == [] and no_partial_entries(cache)


@pytest.mark.parametrize("scheme", ["ext::sh -c touch% ", "ext://"])
def test_a_source_that_makes_git_run_a_command_is_refused(tmp_path: Path, cache: Path,
                                                          scheme: str) -> None:
    """GitPython refuses `ext::` (any command) with its own exception, which was a
    traceback."""
    marker = tmp_path / "ran"
    source = f"{scheme}{marker}"
    root = tmp_path / "fleet"
    one_cluster_fleet(root, f"{{name: app, method: git, source: '{source}'}}")
    run = doit(root)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr, run.stderr
    assert (f"stacks/s/component.yaml: subcomponents[0]: git source of 'app' ({source} at "
            f"HEAD): cannot fetch {source}: refused, it makes git run a program (a "
            "`<transport>::` remote helper; `ext::` runs any command); use an https://, "
            "ssh:// or file:// URL") in run.stderr, run.stderr
    assert not marker.exists()
    assert mirrors(cache) == [] and no_partial_entries(cache)


def test_a_pin_added_for_one_cluster_does_not_replan_another(
        remote_stack: tuple[Path, Path, Path], tmp_path: Path) -> None:
    root, _, _ = remote_stack
    workspace = Workspace.at(root)
    assert load_fleet(workspace).replanned == ("c1", "c2")
    other = make_repo(tmp_path / "remote" / "other",
                      {"component.yaml": "name: o\ntype: static\npath: m\n",
                       "m/o.yaml": "kind: O\n"})
    write(root / "stacks/o/component.yaml",
          f"name: s\nsubcomponents:\n  - name: o\n    method: git\n    source: {other}\n")
    write(root / "environments/c3.yaml", "stack: ../stacks/o\n")
    assert load_fleet(workspace).replanned == ("c3",)
    assert (other, "HEAD") in lock_pins(root)
    assert load_fleet(workspace).replanned == ()


def test_a_link_out_of_the_repository_is_refused(tmp_path: Path, cache: Path) -> None:
    repo = tmp_path / "remote" / "defs"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "m").mkdir()
    (repo / "m" / "host.yaml").symlink_to("/etc/hostname")
    url = f"file://{repo}"
    commit(repo, {"component.yaml": "name: d\ntype: static\npath: m\n"})
    root = git_stack_fleet(tmp_path / "fleet", url)
    run = doit(root)
    assert run.returncode != 0
    assert run.stderr.strip() == (
        f"ERROR: environments/c1.yaml: stack: git source of 'stack' ({url} at HEAD): commit "
        f"{git(repo, 'rev-parse', 'HEAD')} of {url}: 'm/host.yaml' is a link to an absolute "
        "path"), run.stderr
    assert trees(cache) == [] and no_partial_entries(cache)


def test_a_link_and_a_folder_of_one_name_write_nothing_outside_the_checkout(
        tmp_path: Path, cache: Path) -> None:
    """A crafted tree (git fsck would refuse it; a fetch does not check) lists `d` twice:
    a link out of the checkout, then a folder. Unpacked in order, the folder's file went
    through the link, before any check of the unpacked tree; tarfile's "data" filter
    refuses the link as it comes."""
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = tmp_path / "remote" / "defs"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")

    def put(kind: str, data: bytes) -> bytes:
        written = subprocess.run(["git", "-C", str(repo), "hash-object", "--literally", "-w",
                                  "-t", kind, "--stdin"], input=data, capture_output=True,
                                 check=True)
        return bytes.fromhex(written.stdout.decode().strip())

    folder = put("tree", b"100644 x.yaml\0" + put("blob", b"kind: A\n"))
    link = put("blob", os.fsencode(outside))
    top = put("tree", b"120000 d\0" + link + b"40000 d\0" + folder)
    commit = git(repo, "commit-tree", top.hex(), "-m", "crafted")
    git(repo, "update-ref", "refs/heads/main", commit)
    url = f"file://{repo}"
    root = git_stack_fleet(tmp_path / "fleet", url)
    run = doit(root)
    assert run.returncode != 0
    assert list(outside.iterdir()) == []
    assert run.stderr.strip() == (
        f"ERROR: environments/c1.yaml: stack: git source of 'stack' ({url} at HEAD): commit "
        f"{commit} of {url}: 'd' is a link to an absolute path"), run.stderr
    assert trees(cache) == [] and no_partial_entries(cache)


@pytest.mark.parametrize(("text", "message"), [
    ("sources:\n- source: x\n  ref: main\n",
     "stacks.lock: sources[0]: expected a mapping with string source, ref and commit"),
    ("sources: [\n", "stacks.lock: not valid YAML"),
    ("sources:\n- {source: x, ref: main, commit: ../../etc}\n",
     "stacks.lock: sources[0].commit: '../../etc' is not a full commit id"),
    (f"sources:\n- {{source: x, ref: main, commit: {'a' * 40}}}\n"
     f"- {{source: y, ref: main, commit: {'b' * 40}}}\n"
     f"- {{source: x, ref: main, commit: {'c' * 40}}}\n",
     "stacks.lock: sources[2]: sources[0] pins the same source and ref (x main): a merge "
     "conflict resolved by keeping both sides? Keep one entry"),
    ("charts:\n- {repository: r, chart: c, version: ^1, resolved: 1.0.0, digest: 'sha256:1'}\n"
     "- {repository: r, chart: c, version: ^1, resolved: 1.1.0, digest: 'sha256:2'}\n",
     "stacks.lock: charts[1]: charts[0] pins the same repository, chart and version (r c ^1)"),
    ("files:\n- {url: u, digest: 'sha256:1'}\n- {url: u, digest: 'sha256:2'}\n",
     "stacks.lock: files[1]: files[0] pins the same url (u)"),
])
def test_a_damaged_lock_file_is_a_clear_error(remote_stack: tuple[Path, Path, Path],
                                              text: str, message: str) -> None:
    root, _, _ = remote_stack
    write(root / "stacks.lock", text)
    run = doit(root)
    assert run.returncode != 0
    assert message in run.stderr, run.stderr


def test_an_environment_stack_mapping_needs_method_git(tmp_path: Path) -> None:
    file = write(tmp_path / "environments/c1.yaml",
                 "stack: {source: 'https://example.com/x.git', method: http}\n")
    with pytest.raises(StackyardError, match=r"c1.yaml: stack: a stack given as a mapping "
                                             r"needs `source` and `method: git`"):
        load_environment(file)


def single_git_stack(root: Path, url: str) -> Path:
    """A fleet (cluster c1, stack s) whose one subcomponent `d` is the root of the
    repository at `url`, branch main."""
    one_cluster_fleet(root, f"{{name: d, method: git, source: {url}, branch: main}}")
    return root


def test_a_vendored_component_added_after_a_build_wins_from_the_next_build(
        tmp_path: Path, cache: Path) -> None:
    """`components/<name>` is read instead of the store when present (`fab install`'s
    layout): one that appears later is seen, though no file the last plan read changed."""
    url = make_repo(tmp_path / "remote", {"component.yaml": "name: d\ntype: static\n"
                                          "path: m\n", "m/a.yaml": "kind: Fetched\n"})
    root = single_git_stack(tmp_path / "fleet", url)
    assert doit(root).returncode == 0
    write(root / "stacks/s/components/d/component.yaml", "name: d\ntype: static\npath: m\n")
    write(root / "stacks/s/components/d/m/a.yaml", "kind: Vendored\n")
    pins = lock_pins(root)
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert outputs(root, "c1")["d/d.yaml"] == b"---\nkind: Vendored\n\n"
    # a copy left on one machine keeps the pin that CI, without the copy, uses
    assert lock_pins(root) == pins
    shutil.rmtree(root / "stacks/s/components")
    frozen = subprocess.run([sys.executable, "-m", "doit"], cwd=root, capture_output=True,
                            text=True, env={**os.environ, "STACKYARD_FROZEN": "1"})
    assert frozen.returncode == 0, frozen.stderr
    assert outputs(root, "c1")["d/d.yaml"] == b"---\nkind: Fetched\n\n"


def test_a_vendored_git_chart_added_after_a_build_wins_from_the_next_build(
        tmp_path: Path, cache: Path) -> None:
    """Likewise `helm_repos/<name>` for a `type: helm, method: git` chart."""
    chart = SHARED_CHARTS / "kured"
    url = make_repo(tmp_path / "remote", {
        f"kured/{path.relative_to(chart)}": path.read_text()
        for path in chart.rglob("*") if path.is_file()})
    root = tmp_path / "fleet"
    one_cluster_fleet(root, f"{{name: kured, type: helm, method: git, source: {url}, "
                            "path: kured}")
    assert doit(root).returncode == 0
    shutil.copytree(chart, root / "stacks/s/helm_repos/kured/kured")
    edit(root / "stacks/s/helm_repos/kured/kured/templates/daemonset.yaml", "kind: DaemonSet",
         "kind: DaemonSet\n# vendored")
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert b"# vendored" in outputs(root, "c1")["kured.yaml"]


def input_digests(root: Path, node_path: str) -> list[str]:
    nodes = {n.node_path: n for n in plan_fleet(Workspace.at(root))["c1"].nodes}
    return [digest for _, digest in nodes[node_path].inputs]


def relock(root: Path) -> None:
    assert subprocess.run([sys.executable, "-m", "rules.sources", "lock"], cwd=root,
                          check=False).returncode == 0


def test_a_git_folder_is_digested_by_its_tree_id(tmp_path: Path, cache: Path) -> None:
    repo = tmp_path / "remote" / "defs"
    url = make_repo(repo, {"component.yaml": "name: d\ntype: static\npath: m\n",
                           "m/a.yaml": "kind: One\n"})
    root = single_git_stack(tmp_path / "fleet", url)
    assert doit(root).returncode == 0
    first = lock_pins(root)[(url, "main")]
    tree = git(repo, "rev-parse", f"{first}:m")
    ids = json.loads((cache / "trees" / Store.key(url) / f"{first}.treeids").read_text())
    assert ids == {".": git(repo, "rev-parse", f"{first}^{{tree}}"), "m": tree}
    assert input_digests(root, "s/d") == [f"git:{tree}"]

    # another commit with the same tree at m: another checkout, the same digest
    second = commit(repo, {"README.md": "d\n"})
    relock(root)
    assert lock_pins(root)[(url, "main")] == second
    assert input_digests(root, "s/d") == [f"git:{tree}"]
    run = doit(root)
    assert run.returncode == 0 and run.renders == [], run.stdout + run.stderr
    assert len(trees(cache)) == len(sidecars(cache)) == 2


def test_a_no_op_reads_tree_ids_without_gitpython(remote_stack: tuple[Path, Path, Path]
                                                  ) -> None:
    root, _, _ = remote_stack
    assert doit(root).returncode == 0
    check = ("import sys; from pathlib import Path; from rules.plan_cache import load_fleet; "
             "from rules.workspace import Workspace; "
             "print(load_fleet(Workspace.at(Path.cwd())).replanned, 'git' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", check], cwd=root, capture_output=True,
                            text=True, check=False)
    assert result.stdout == "() False\n", result.stderr


def test_checkouts_ignore_export_attributes_so_tree_ids_name_their_files(
        tmp_path: Path, cache: Path) -> None:
    """`git archive` would substitute, leave out and convert: the tree id would lie."""
    repo = tmp_path / "remote" / "defs"
    url = make_repo(repo, {
        ".gitattributes": "m/a.yaml export-subst\nm/gone.yaml export-ignore\n* eol=crlf\n",
        "m/a.yaml": "kind: A # $Format:%H$\n",
        "m/gone.yaml": "kind: Gone\n",
    })
    first = git(repo, "rev-parse", "HEAD")
    checkout = Store().checkout(url, first)
    assert (checkout / "m/a.yaml").read_bytes() == b"kind: A # $Format:%H$\n"
    assert (checkout / "m/gone.yaml").read_bytes() == b"kind: Gone\n"
    assert json.loads(tree_ids_file(checkout).read_text())["m"] == \
        git(repo, "rev-parse", f"{first}:m")

    # a checkout by an older Stackyard was archived with the attributes applied: hashed
    tree_ids_file(checkout).unlink()
    assert Store().checkout(url, first) == checkout
    assert json.loads(tree_ids_file(checkout).read_text()) == {}


def test_a_folder_with_a_link_inside_is_content_hashed(tmp_path: Path, cache: Path) -> None:
    """A link may lead out of its folder: its tree id would miss a change there."""
    repo = tmp_path / "remote" / "defs"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "m").mkdir()
    (repo / "m" / "a.yaml").symlink_to("../shared/a.yaml")
    root = single_git_stack(tmp_path / "fleet", f"file://{repo}")
    commit(repo, {"component.yaml": "name: d\ntype: static\npath: m\n",
                  "shared/a.yaml": "kind: One\n"})
    assert doit(root).returncode == 0
    (ids,) = [json.loads(data) for data in sidecars(cache).values()]
    assert set(ids) == {"shared"}  # not m, not the root: both hold the link
    (digest,) = input_digests(root, "s/d")
    assert not digest.startswith("git:")

    commit(repo, {"shared/a.yaml": "kind: Two\n"})
    relock(root)
    run = doit(root)
    assert run.returncode == 0 and run.renders == ["render:c1:s/d"], run.stdout + run.stderr
    assert outputs(root, "c1")["d/d.yaml"] == b"---\nkind: Two\n\n"


def test_a_checkout_streams_the_commit_instead_of_holding_it(tmp_path: Path, cache: Path
                                                             ) -> None:
    """A 96 MiB file beside the component: the checkout's peak memory (git's included, told
    to stream its blobs) stays below the file's size (45 MB); holding the archive took
    twice it (222 MB)."""
    repo = tmp_path / "remote" / "defs"
    url = make_repo(repo, {"component.yaml": "name: d\ntype: static\npath: m\n",
                           "m/a.yaml": "kind: A\n"})
    (repo / "big.bin").write_bytes(bytes(96 * 1024 * 1024))
    commit(repo, {})
    store = Store()
    pinned = store.resolve(url, "HEAD")  # the clone, in this process
    # the child's own peak (VmHWM: ru_maxrss would count pytest's pages it was forked
    # with) and that of the git it runs
    peak = subprocess.run(
        [sys.executable, "-c", "import resource, sys\n"
         "from rules.sources.store import Store\n"
         "Store().checkout(sys.argv[1], sys.argv[2])\n"
         "own = next(int(line.split()[1]) for line in open('/proc/self/status')\n"
         "           if line.startswith('VmHWM:'))\n"
         "print(max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))",
         url, pinned], capture_output=True, text=True, check=True,
        env={**os.environ, "GIT_CONFIG_COUNT": "1",
             "GIT_CONFIG_KEY_0": "core.bigFileThreshold", "GIT_CONFIG_VALUE_0": "1m"})
    checkout = store.tree_path(url, pinned)
    assert (checkout / "big.bin").stat().st_size == 96 * 1024 * 1024
    assert (checkout / "m/a.yaml").read_text() == "kind: A\n"
    assert int(peak.stdout) < 96 * 1024, f"peak RSS {peak.stdout} KiB"


def test_a_checkout_without_tree_ids_still_works(remote_stack: tuple[Path, Path, Path],
                                                  cache: Path) -> None:
    """Checkouts from an older Stackyard: ids from the mirror, else content hashing."""
    root, _, _ = remote_stack
    assert doit(root).returncode == 0
    ids = sidecars(cache)
    assert len(ids) == len(trees(cache)) == 2

    def as_after_an_upgrade() -> None:  # new code drops the plan cache
        for path in ids:
            path.unlink()
        (root / ".stackyard" / "plans.sqlite3").unlink()

    as_after_an_upgrade()
    run = doit(root)
    assert run.returncode == 0 and run.renders == [], run.stdout + run.stderr
    assert sidecars(cache) == ids

    as_after_an_upgrade()
    shutil.rmtree(cache / "git")
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "render:c1:s/app/web" in run.renders  # its digest is now its files' digest
    assert sidecars(cache) == {} and mirrors(cache) == []
    assert not any(d.startswith("git:") for d in input_digests(root, "s/app/web"))
    assert outputs(root, "c1")["app/web.yaml"] == b"---\nkind: Web\n\n"
    run = doit(root)
    assert run.returncode == 0 and run.renders == [], run.stdout + run.stderr


def test_a_stack_version_that_reads_as_a_number_is_the_tag_as_written(
        tmp_path: Path, cache: Path) -> None:
    """`version: 1.10` in an environment's `stack:` is the tag "1.10", as in component
    files, not the number 1.1 (another tag here)."""
    repo = tmp_path / "remote" / "stack"
    url = make_repo(repo, {"component.yaml": "name: st\ntype: static\npath: m\n",
                           "m/a.yaml": "kind: OneDotOne\n"})
    git(repo, "tag", "1.1")
    commit(repo, {"m/a.yaml": "kind: OneDotTen\n"})
    git(repo, "tag", "1.10")
    root = tmp_path / "fleet"
    install_dodo(root)
    write(root / "environments/c1.yaml",
          f"stack: {{source: '{url}', method: git, version: 1.10}}\n")
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert outputs(root, "c1")["st.yaml"] == b"---\nkind: OneDotTen\n\n"
    assert (url, "1.10") in lock_pins(root)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda lock: (lock.unlink(), lock.mkdir()),
     "stacks.lock: a folder where the lock file belongs; move it away"),
    (lambda lock: lock.write_bytes(lock.read_bytes() + b"# \xff\n"),
     "stacks.lock: not UTF-8 text"),
], ids=["folder", "not-utf8"])
def test_a_damaged_lock_file_fails_with_a_message(
        remote_stack: tuple[Path, Path, Path], damage: object, message: str) -> None:
    root, _, _ = remote_stack
    assert doit(root).returncode == 0
    damage(root / "stacks.lock")  # type: ignore[operator]
    write(root / "environments/c3.yaml", "stack: ../stacks/s\n")  # plans read the lock
    run = doit(root)
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
    assert message in run.stderr, run.stderr


def test_a_source_store_that_cannot_be_written_fails_with_a_message(
        remote_stack: tuple[Path, Path, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root, _, _ = remote_stack
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("a file")
    monkeypatch.setenv("STACKYARD_CACHE", str(not_a_folder))
    run = doit(root)
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
    assert f"cannot write to the source store {not_a_folder}/git: Not a directory " \
           "(STACKYARD_CACHE names another folder)" in run.stderr, run.stderr


def test_the_default_branch_follows_the_remote(tmp_path: Path, cache: Path) -> None:
    """A definition with neither version nor branch uses the remote's default branch as it
    is now, not the one the store's mirror was cloned with."""
    repo = tmp_path / "remote" / "defs"
    url = make_repo(repo, {"component.yaml": "name: d\ntype: static\npath: m\n",
                           "m/a.yaml": "kind: Old\n"})
    root = tmp_path / "fleet"
    one_cluster_fleet(root, f"{{name: d, method: git, source: {url}}}")
    assert doit(root).returncode == 0
    git(repo, "checkout", "-q", "-b", "trunk")
    trunk = commit(repo, {"m/a.yaml": "kind: New\n"})
    git(repo, "branch", "-q", "-D", "main")  # the old default branch is gone upstream

    relocked = doit(root, "lock")
    assert relocked.returncode == 0, relocked.stdout + relocked.stderr
    assert lock_pins(root) == {(url, "HEAD"): trunk}
    assert doit(root).returncode == 0
    assert "kind: New" in (root / "generated/c1/d/d.yaml").read_text()


@pytest.fixture
def stalled_server() -> Iterator[str]:
    """`http://127.0.0.1:<port>`: a server that accepts connections (the kernel completes
    them) and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.mark.parametrize(("user_config", "stall"), [({}, 1), (
    {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.lowSpeedTime", "GIT_CONFIG_VALUE_0": "2"},
    2), ("fleet repository", 1)])
def test_a_stalled_git_server_times_out(tmp_path: Path, cache: Path, stalled_server: str,
                                        user_config: dict[str, str] | str, stall: int) -> None:
    """git over HTTP gets a low-speed limit (STACKYARD_NETWORK_TIMEOUT seconds below 1000
    bytes/s), unless the user set their own in git's configuration (not in the fleet's own
    repository's: that does not configure the store's mirrors)."""
    url = f"{stalled_server}/defs.git"
    root = tmp_path / "fleet"
    one_cluster_fleet(root, f"{{name: d, method: git, source: '{url}'}}")
    if user_config == "fleet repository":
        git(root, "init", "-q")
        git(root, "config", "http.lowSpeedTime", "600")
        user_config = {}
    run = subprocess.run([sys.executable, "-m", "doit"], cwd=root, capture_output=True,
                         text=True, check=False, timeout=60,
                         env={**os.environ, "STACKYARD_NETWORK_TIMEOUT": "1", **user_config})
    assert run.returncode != 0
    assert f"cannot fetch {url}: " in run.stderr, run.stderr
    assert f"the last {stall} seconds (timed out; STACKYARD_NETWORK_TIMEOUT" in run.stderr


def ssh_fleet(tmp_path: Path, stalled_server: str) -> tuple[Path, str]:
    """A fleet whose one component comes from `stalled_server` over ssh://."""
    url = f"ssh://{stalled_server.removeprefix('http://')}/defs.git"
    root = tmp_path / "fleet"
    one_cluster_fleet(root, f"{{name: d, method: git, source: '{url}'}}")
    return root, url


def test_a_stalled_ssh_server_times_out(tmp_path: Path, cache: Path,
                                        stalled_server: str) -> None:
    """ssh waits for ever for a server that never answers; the build gives up after
    STACKYARD_NETWORK_TIMEOUT seconds and says so (the real ssh client)."""
    if shutil.which("ssh") is None:
        pytest.skip("no ssh client on this machine")
    root, url = ssh_fleet(tmp_path, stalled_server)
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("GIT_SSH_COMMAND", "GIT_SSH")}
    run = subprocess.run([sys.executable, "-m", "doit"], cwd=root, capture_output=True,
                         text=True, check=False, timeout=60,
                         env={**environment, "STACKYARD_NETWORK_TIMEOUT": "1",
                              "HOME": str(tmp_path)})
    assert run.returncode != 0
    assert f"cannot fetch {url}: " in run.stderr, run.stderr
    assert "(timed out; STACKYARD_NETWORK_TIMEOUT sets" in run.stderr, run.stderr


@pytest.mark.parametrize(("timeout", "user_choice", "options"), [
    ("1", {}, "-o ConnectTimeout=1 -o ServerAliveInterval=1 -o ServerAliveCountMax=1"),
    ("50", {}, "-o ConnectTimeout=50 -o ServerAliveInterval=15 -o ServerAliveCountMax=4"),
    ("60", {"GIT_SSH_COMMAND": "ssh -o Mine=yes"}, "-o Mine=yes"),
    ("60", {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.sshCommand",
            "GIT_CONFIG_VALUE_0": "ssh -o Mine=yes"}, "-o Mine=yes"),
])
def test_ssh_gets_a_stall_limit_unless_the_user_chose_an_ssh_command(
        tmp_path: Path, cache: Path, stalled_server: str, timeout: str,
        user_choice: dict[str, str], options: str) -> None:
    """The ssh git runs gets keep-alives and a connect timeout that add up to
    STACKYARD_NETWORK_TIMEOUT; an ssh command the user chose is left as it is. The `ssh`
    on PATH here records its arguments."""
    root, url = ssh_fleet(tmp_path, stalled_server)
    tools = tmp_path / "bin"
    tools.mkdir()
    recorded = tmp_path / "ssh-arguments"
    (tools / "ssh").write_text(f'#!/bin/sh\necho "$@" >> {recorded}\nexit 255\n')
    (tools / "ssh").chmod(0o755)
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("GIT_SSH_COMMAND", "GIT_SSH")}
    run = subprocess.run([sys.executable, "-m", "doit"], cwd=root, capture_output=True,
                         text=True, check=False, timeout=60,
                         env={**environment, "PATH": f"{tools}:{os.environ['PATH']}",
                              "HOME": str(tmp_path), "STACKYARD_NETWORK_TIMEOUT": timeout,
                              **user_choice})
    assert run.returncode != 0
    assert f"cannot fetch {url}: " in run.stderr, run.stderr
    calls = recorded.read_text().splitlines()
    assert calls, run.stderr
    for call in calls:
        assert call.startswith(f"{options} -"), call
        assert "ServerAlive" not in call.removeprefix(options)


def test_lock_counts_the_pins_it_drops(tmp_path: Path) -> None:
    """A pin recorded with redacted credentials is dropped; the summary counts it among the
    pins there were."""
    root = tmp_path / "fleet"
    write(root / "stacks.lock", f"sources:\n- source: https://***@example.invalid/x.git\n"
                                f"  ref: main\n  commit: {'a' * 40}\n")
    run = subprocess.run([sys.executable, "-m", "rules.sources", "lock", str(root)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"https://***@example.invalid/x.git main: {'a' * 12} -> dropped\n"
    assert "1 of 1 pin(s) in stacks.lock moved" in run.stderr, run.stderr
    assert yaml.safe_load((root / "stacks.lock").read_text()) == {"sources": []}


@pytest.mark.parametrize(("entry", "message"), [
    ("{name: grab, type: static, path: UP/secret}",
     "app/component.yaml: subcomponents[0].path: SECRET is outside the fetched source"),
    ("{name: grab, source: UP/secret}",
     "app/component.yaml: subcomponents[0].source: SECRET is outside the fetched source"),
    ("{name: chart, type: helm, path: chart}",
     "dependency 'secret' (file://UP/secret) is outside the fetched chart's source"),
], ids=["static-path", "stack-source", "chart-file-dependency"])
def test_a_fetched_stack_reads_nothing_outside_its_source(
        tmp_path: Path, cache: Path, entry: str, message: str) -> None:
    """Another team's stack must not put the build machine's own folders into the output
    (D41): `..` far enough from the checkout reaches any folder."""
    secret = tmp_path / "secret"
    write(secret / "component.yaml", "name: secret\ntype: static\npath: m\n")
    write(secret / "m/cm.yaml", "kind: ConfigMap\nmetadata: {name: topsecret}\n")
    write(secret / "Chart.yaml", "apiVersion: v2\nname: secret\nversion: 0.1.0\n")
    write(secret / "templates/cm.yaml", "kind: ConfigMap\nmetadata: {name: topsecret}\n")
    up = "/".join([".."] * (len(cache.parts) + 8)) + str(tmp_path)
    url = make_repo(tmp_path / "remote", {
        "app/component.yaml": f"name: app\nsubcomponents:\n- {entry.replace('UP', up)}\n",
        "app/chart/Chart.yaml": "apiVersion: v2\nname: chart\nversion: 0.1.0\ndependencies:\n"
                                f"- {{name: secret, version: 0.1.0, repository: 'file://{up}/secret'}}\n",
    })
    root = git_stack_fleet(tmp_path / "fleet", url, "app")

    run = doit(root)

    assert run.returncode != 0
    expected = message.replace("UP", up).replace("SECRET", str(secret))
    assert expected in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert not (root / "generated").exists()


@pytest.mark.parametrize("local", ["file://SECRET", "SECRET"])
def test_a_stack_from_the_network_cannot_fetch_a_repository_of_this_machine(
        tmp_path: Path, cache: Path, local: str) -> None:
    """D41 for what a fetched stack fetches: a repository served over HTTP must not pull
    a git repository of the build machine into the output (a stack fetched from a path
    on this machine may: it is this machine's already)."""
    secret = make_repo(tmp_path / "secret", {"component.yaml": "name: s\ntype: static\n"
                                             "path: m\n", "m/cm.yaml": "kind: Secret\n"})
    source = local.replace("SECRET", secret.removeprefix("file://"))
    work = make_repo(tmp_path / "work", {"app/component.yaml": "name: app\nsubcomponents:\n"
                                         f"- {{name: grab, method: git, source: '{source}'}}\n"})
    subprocess.run(["git", "clone", "-q", "--bare", work.removeprefix("file://"),
                    str(tmp_path / "served/defs.git")], check=True)
    with GitServer(tmp_path / "served") as server:
        root = git_stack_fleet(tmp_path / "fleet", f"{server.url}/defs.git", "app")
        run = doit(root)

    assert run.returncode != 0
    assert (f"app/component.yaml: subcomponents[0].source: {source!r} is a repository on "
            f"this machine, named by a stack fetched from {server.url}/defs.git; such a "
            "stack may only fetch over the network") in run.stderr, run.stderr
    assert not (root / "generated").exists()
    assert git_stack_fleet(tmp_path / "local", work, "app") and doit(
        tmp_path / "local").returncode == 0


def test_a_store_named_through_dot_dot_or_a_link_works(
        remote_stack: tuple[Path, Path, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Store paths are compared by their text: the store's own name is made absolute and
    its links resolved first (a `..` in it read as a path leaving the repository)."""
    root, _, _ = remote_stack
    (tmp_path / "sub").mkdir()
    (tmp_path / "store-link").symlink_to(tmp_path / "sub")
    monkeypatch.setenv("STACKYARD_CACHE", str(tmp_path / "store-link/../sub/../store"))
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "store/CACHEDIR.TAG").read_text().startswith(
        "Signature: 8a477f597d28d172789f06886806bc55\n")


def test_a_chain_of_links_out_of_a_checkout_is_refused(tmp_path: Path, cache: Path) -> None:
    """`a` is checked as it is unpacked, before `z -> .` exists, and looks as if it stays
    inside; once `z` is there, `a` is the root of the machine (audit 10)."""
    outside = tmp_path / "outside"
    write(outside / "id.yaml", "kind: Secret\ndata: {k: HOST_SECRET}\n")
    repo = tmp_path / "remote" / "evil"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "a").symlink_to("z/" * 20 + "../" * 19 + "..")
    (repo / "z").symlink_to(".")
    (repo / "inside").symlink_to("z/z/m")  # a chain that stays inside is fine
    url = f"file://{repo}"
    commit(repo, {"component.yaml": f"name: evil\ntype: static\npath: a{outside}\n",
                  "m/ok.yaml": "kind: Ok\n"})
    root = git_stack_fleet(tmp_path / "fleet", url)

    run = doit(root)

    assert run.returncode != 0
    assert f"commit {git(repo, 'rev-parse', 'HEAD')} of {url}: the link 'a' leads out of " \
        "the repository" in run.stderr, run.stderr
    assert not (root / "generated").exists()
    assert trees(cache) == [] and no_partial_entries(cache)
    (repo / "a").unlink()
    commit(repo, {"component.yaml": "name: evil\ntype: static\npath: inside\n"})
    assert doit(root, "lock").returncode == 0
    assert doit(root).returncode == 0
    assert (root / "generated/c1/evil.yaml").read_text() == "---\nkind: Ok\n\n"


def test_a_relative_git_source_in_two_repositories_sharing_a_store(
        tmp_path: Path, cache: Path) -> None:
    """`source: .` is the repository doit runs in; two of them sharing one store are two
    sources, not the one that was fetched first (audit 10)."""
    for name in ("one", "two"):
        root = tmp_path / name
        one_cluster_fleet(root, "{name: self, method: git, source: ., path: own}")
        write(root / "own/component.yaml", "name: own\ntype: static\npath: m\n")
        write(root / "own/m/cm.yaml", f"kind: ConfigMap\nmetadata: {{name: {name}}}\n")
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "fleet")
        assert doit(root).returncode == 0
        assert f"name: {name}" in (root / "generated/c1/self/own.yaml").read_text()
    assert len(mirrors(cache)) == 2


def test_a_checkout_whose_git_archive_warns_a_lot_does_not_hang(tmp_path: Path,
                                                                 cache: Path) -> None:
    """Each negative pattern in .gitattributes makes `git archive` warn twice: ~600 KB
    of messages, more than a pipe holds (audit 11: the build hung for ever)."""
    url = make_repo(tmp_path / "remote" / "noisy", {
        ".gitattributes": "".join(f"!p{i} text\n" for i in range(3000)),
        "component.yaml": "name: app\ntype: static\npath: m\n",
        "m/cm.yaml": "kind: ConfigMap\n"})
    root = git_stack_fleet(tmp_path / "fleet", url)
    run = subprocess.run([sys.executable, "-m", "doit"], cwd=root, capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (root / "generated/c1/app.yaml").read_text() == "---\nkind: ConfigMap\n\n"


def test_the_store_follows_home_and_the_working_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STACKYARD_CACHE")
    for home in ("h1", "h2"):
        monkeypatch.setenv("HOME", str(tmp_path / home))
        assert cache_root() == tmp_path / home / ".cache/stackyard"
    monkeypatch.setenv("STACKYARD_CACHE", "store")
    for folder in ("w1", "w2"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        assert cache_root() == tmp_path / folder / "store"
