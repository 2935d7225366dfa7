"""The plan cache: re-planning after a shared change re-parses only the changed file."""

from __future__ import annotations

import os
import pickle
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import rules
from rules.errors import StackyardError
from rules.plan import plan_fleet
from rules.plan_cache import cache_path, load_fleet
from rules.workspace import Workspace
from tests.doit_runner import DoitRun, doit, install_dodo, link_chart, write, write_tree


def fleet(root: Path) -> None:
    write(root / "stacks/s/component.yaml",
          "name: s\nsubcomponents:\n  - {name: app, type: static, path: m}\n")
    write(root / "stacks/s/m/cm.yaml", "kind: ConfigMap\n")
    write(root / "stacks/s/config/common.yaml", "subcomponents:\n  app:\n    namespace: a\n")
    for cluster in ("c1", "c2"):
        write(root / f"stacks/s/config/{cluster}.yaml",
              f"subcomponents:\n  app:\n    namespace: {cluster}\n")
        write(root / f"environments/{cluster}.yaml", f"stack: ../stacks/s\nlayers: [{cluster}]\n")


def parsed_rows(root: Path) -> dict[str, bytes]:
    with sqlite3.connect(cache_path(Workspace.at(root))) as connection:
        return dict(connection.execute("select path, data from layers"))


def namespaces(root: Path) -> dict[str, str]:
    """Plan with the plan cache (the parses it kept), as each doit process does."""
    fleet_state = load_fleet(Workspace.at(root))
    return {name: plan.nodes[1].config.namespace for name, plan in fleet_state.plans.items()}


def test_unchanged_layer_files_are_not_parsed_again(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    fleet(root)
    assert namespaces(root) == {"c1": "c1", "c2": "c2"}
    rows = parsed_rows(root)
    c1_layer = str(root / "stacks/s/config/c1.yaml")
    assert sorted(rows) == sorted([*(str(root / f"environments/{n}.yaml") for n in ("c1", "c2")),
                                   *(str(root / f"stacks/s/config/{n}.yaml")
                                     for n in ("c1", "c2", "common"))])
    # prove the stored parse is what a re-plan uses: plant another value for c1's layer
    planted, warnings = pickle.loads(rows[c1_layer])  # a parse and what it warned of
    assert warnings == ()
    planted["subcomponents"]["app"]["namespace"] = "from-the-cache"
    c2_environment = str(root / "environments/c2.yaml")
    with sqlite3.connect(cache_path(Workspace.at(root))) as connection:
        connection.execute("update layers set data = ? where path = ?",
                           (pickle.dumps((planted, ())), c1_layer))
        connection.execute("update layers set data = ? where path = ?",  # and no layers
                           (pickle.dumps(({"stack": "../stacks/s"}, ())), c2_environment))
    write(root / "stacks/s/config/common.yaml", "subcomponents:\n  app:\n    namespace: b\n")
    assert namespaces(root) == {"c1": "from-the-cache", "c2": "b"}
    # a changed file is parsed again
    write(root / "stacks/s/config/c1.yaml", "subcomponents:\n  app:\n    namespace: new\n")
    assert namespaces(root) == {"c1": "new"}


def test_a_second_plan_in_one_process_reads_edited_definitions(tmp_path: Path) -> None:
    """Parses are kept per run by content, not per process by path: a process that plans
    twice (a long-lived caller, a test) sees a definition edited in between, even an edit
    of the same size with the old mtime put back (only the ctime tells)."""
    root = tmp_path / "fleet"
    fleet(root)
    write(root / "stacks/s/n/cm.yaml", "kind: Secret\n")
    assert {n.node_path for n in load_fleet(Workspace.at(root)).plans["c1"].nodes} == {
        "s", "s/app"}
    definition = root / "stacks/s/component.yaml"
    before = definition.stat()
    edited = definition.read_text().replace("{name: app, type: static, path: m}",
                                            "{name: ppa, type: static, path: n}")
    assert len(edited) == before.st_size
    definition.write_text(edited)
    os.utime(definition, ns=(before.st_atime_ns, before.st_mtime_ns))
    replanned = load_fleet(Workspace.at(root))
    assert replanned.replanned == ("c1", "c2")
    assert {n.node_path for n in replanned.plans["c1"].nodes} == {"s", "s/ppa"}


def test_a_re_plan_merges_only_nodes_whose_layers_changed(tmp_path: Path) -> None:
    """A node whose layers, definition and inputs are those of the last plan keeps its
    digest unmerged; merging (and its kind-conflict check) runs again only where one of
    them changed, even for a node that ignores config."""
    root = tmp_path / "fleet"
    fleet(root)
    write(root / "stacks/s/component.yaml",
          "name: s\nsubcomponents:\n  - {name: app, type: static, path: m}\n"
          "  - {name: other, type: static, path: m}\n")
    write(root / "stacks/s/config/common.yaml",
          "subcomponents:\n  app:\n    namespace: a\n  other:\n    config: {x: {y: 1}}\n")
    first = load_fleet(Workspace.at(root))
    assert all(n.merged is not None for p in first.plans.values() for n in p.nodes)
    digests = {(p.name, n.node_path): n.digest for p in first.plans.values() for n in p.nodes}

    write(root / "stacks/s/config/common.yaml",
          "subcomponents:\n  app:\n    namespace: b\n  other:\n    config: {x: {y: 1}}\n")
    second = load_fleet(Workspace.at(root))
    merged = {(p.name, n.node_path) for p in second.plans.values() for n in p.nodes
              if n.merged is not None}
    assert merged == {("c1", "s/app"), ("c2", "s/app")}  # not the root: its own keys and
    # not `other`: its entries are the same (a layer's digest leaves `subcomponents` out)
    assert {(p.name, n.node_path): n.digest for p in second.plans.values()
            for n in p.nodes} == digests  # static: the namespace is not part of its output
    assert {p.name: p.nodes[1].config.namespace for p in second.plans.values()} == {
        "c1": "c1", "c2": "c2"}  # merged when asked for

    write(root / "stacks/s/config/c1.yaml",  # a list over common's mapping: a conflict
          "subcomponents:\n  app:\n    namespace: c1\n  other:\n    config: {x: [1]}\n")
    with pytest.raises(StackyardError, match="is a mapping here but a list in the higher"):
        load_fleet(Workspace.at(root))


def _random_layer(rng: random.Random, slots: list[str]) -> str:
    """A layer file touching some slots: values, namespaces, lists, disabled flags."""
    lines = ["subcomponents:"]
    for slot in slots:
        if rng.random() < 0.4:
            continue
        lines.append(f"  {slot}:")
        if rng.random() < 0.3:
            lines.append(f"    namespace: ns-{rng.randint(1, 3)}")
            lines.append(f"    injectNamespace: {rng.choice(['true', 'false'])}")
        if rng.random() < 0.1:
            lines.append(f"    disabled: {rng.choice(['true', 'false'])}")
        lines.append("    config:")
        lines.append(f"      replicaCount: {rng.randint(1, 3)}")
        lines.append(f"      labels: {{tier: t{rng.randint(1, 2)}}}")
        lines.append(f"      extra: [{rng.randint(1, 2)}]")
    return "\n".join(lines) + "\n"


def test_re_plans_agree_with_planning_from_scratch(tmp_path: Path) -> None:
    """Whatever layer edits come, the digests a re-plan takes over from the last plan (or
    makes anew) are those a plan from scratch makes. Seeded random edits of a small fleet:
    shared and per-cluster layers, an environment's inline config, Helm and static nodes."""
    root = tmp_path / "fleet"
    link_chart(root, "kured")
    slots = ["web", "cron", "files"]
    write(root / "stacks/s/component.yaml",
          "name: s\nsubcomponents:\n"
          "  - {name: web, type: helm, path: ../charts/kured}\n"
          "  - {name: cron, type: helm, path: ../charts/kured}\n"
          "  - {name: files, type: static, path: m}\n")
    write(root / "stacks/s/m/cm.yaml", "kind: ConfigMap\nmetadata: {name: cm}\n")
    clusters = ["c1", "c2", "c3"]
    layer_files = [root / "stacks/s/config/common.yaml", root / "stacks/s/config/east.yaml",
                   *(root / f"stacks/s/config/{c}.yaml" for c in clusters)]
    rng = random.Random(4)
    for file in layer_files:
        write(file, _random_layer(rng, slots))
    for cluster in clusters:
        write(root / f"environments/{cluster}.yaml",
              f"stack: ../stacks/s\nlayers: [{cluster}, east]\n")
    workspace = Workspace.at(root)
    for step in range(25):
        fleet_state = load_fleet(workspace)
        incremental = {c: [(n.node_path, n.digest) for n in s.nodes]
                       for c, s in fleet_state.summaries.items()}
        scratch = {c: [(n.node_path, n.digest) for n in p.nodes]
                   for c, p in plan_fleet(workspace).items()}
        assert incremental == scratch, f"step {step}"
        if step % 5 == 4:  # now and then the environment's inline config
            cluster = rng.choice(clusters)
            write(root / f"environments/{cluster}.yaml",
                  f"stack: ../stacks/s\nlayers: [{cluster}, east]\nconfig:\n"
                  + textwrap.indent(_random_layer(rng, slots), "  "))
        else:
            write(rng.choice(layer_files), _random_layer(rng, slots))


def test_a_file_memo_saved_by_an_earlier_version_loads() -> None:
    """The memo is kept across code changes (its digests stay true); fields added since
    must not make loading it fail."""
    import pickle

    from rules.filestate import FileState

    older = FileState(digests={"a.yaml": ((1, 2, 3, 4), "d")})
    del older.__dict__["made"]  # as a FileState of session 5 was pickled
    loaded = pickle.loads(pickle.dumps(older))
    assert loaded.made == {} and loaded.digests == {"a.yaml": ((1, 2, 3, 4), "d")}


def test_definition_warnings_are_said_by_every_build_not_only_the_first(tmp_path: Path) -> None:
    """A typo'd key builds something else than meant: a warning said once, by the build
    that first read the file, would be lost in CI logs. Plans and parses that later builds
    re-use keep what reading their files warned of."""
    root = tmp_path / "fleet"
    install_dodo(root)
    write_tree(root, {
        "stacks/s/component.yaml": "name: s\nsubcomponents:\n"
        "  - {name: app, type: static, path: m, method: ftp}\n  - {name: b, source: b}\n",
        "stacks/s/m/cm.yaml": "kind: ConfigMap\n",
        "stacks/s/b/component.yaml": "name: b\ntype: static\npath: m\nsource: x\nsource: m\n",
        "stacks/s/b/m/cm.yaml": "kind: Secret\n",
        "stacks/s/config/common.yaml": "subcomponents:\n  app: {replicas: 2}\n",
        "stacks/s/config/common.yml": "config: {}\n",
        "environments/c1.yaml": "stack: ../stacks/s\nlayer: [prod]\n",
        "environments/c2.yaml": "stack: ../stacks/s\n",
    })
    expected = [
        "environments/c1.yaml: unknown key(s) layer (did you mean `layers`?) ignored",
        "stacks/s/component.yaml: subcomponents[0].method: unknown method 'ftp' is read as "
        "`local`",
        "stacks/s/b/component.yaml: line 5: key 'source' is written twice in one mapping",
        "stacks/s/config/common.yaml: subcomponents.app: unknown key(s) replicas ignored",
        "stacks/s/config/common.yml: ignored: layer files end in .yaml or .json",
    ]

    def said_each_once(run: DoitRun) -> None:
        assert run.returncode == 0, run.stderr
        for text in expected:
            assert run.stderr.count(text) == 1, (text, run.stderr)
        assert run.stderr.count("warning:") == len(expected), run.stderr

    said_each_once(doit(root))  # reads and plans everything
    said_each_once(doit(root))  # plans nothing: both plans are re-used
    write(root / "environments/c2.yaml", "stack: ../stacks/s\nlayers: []\n")
    said_each_once(doit(root))  # re-plans c2 from kept parses, re-uses c1's plan
    os.remove(root / "environments/c1.yaml")
    expected.pop(0)
    said_each_once(doit(root))  # c2 alone reads the other files
    os.remove(root / "stacks/s/config/common.yml")
    expected.pop()
    said_each_once(doit(root))  # a warning goes with its file


def _fingerprint_of(package_parent: Path) -> str:
    """`code_fingerprint()` as a process importing `rules` from `package_parent` sees it."""
    run = subprocess.run(
        [sys.executable, "-c",
         "from rules.plan_cache import code_fingerprint; print(code_fingerprint())"],
        env={**os.environ, "PYTHONPATH": str(package_parent)}, cwd=package_parent,
        capture_output=True, text=True, check=True)
    return run.stdout.strip()


def test_the_same_code_installed_elsewhere_keeps_the_plan_cache(tmp_path: Path) -> None:
    """A CI job installs Stackyard into a fresh virtualenv: another path, new mtimes, the
    same code. The plan cache's fingerprint is the code's content, so it stays; a changed
    module changes it."""
    original = Path(rules.__file__).parent
    copy = tmp_path / "elsewhere"
    shutil.copytree(original, copy / "rules", ignore=shutil.ignore_patterns("__pycache__"),
                    copy_function=shutil.copy)  # new mtimes
    module = copy / "rules" / "layering.py"
    os.utime(module, ns=(1, 1))
    before = _fingerprint_of(original.parent)
    assert _fingerprint_of(copy) == before
    module.write_text(module.read_text() + "\n# a change\n")
    assert _fingerprint_of(copy) != before
