"""The plan cache: re-planning after a shared change re-parses only the changed file."""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path

from rules.definitions import load_config_file
from rules.plan_cache import cache_path, load_fleet
from rules.workspace import Workspace
from rules.yamlio import load_file
from tests.doit_runner import write


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
    """Plan as a new process would: without this process's parsed files."""
    load_config_file.cache_clear()
    load_file.cache_clear()
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
    planted = pickle.loads(rows[c1_layer])
    planted["subcomponents"]["app"]["namespace"] = "from-the-cache"
    c2_environment = str(root / "environments/c2.yaml")
    with sqlite3.connect(cache_path(Workspace.at(root))) as connection:
        connection.execute("update layers set data = ? where path = ?",
                           (pickle.dumps(planted), c1_layer))
        connection.execute("update layers set data = ? where path = ?",  # and no layers
                           (pickle.dumps({"stack": "../stacks/s"}), c2_environment))
    write(root / "stacks/s/config/common.yaml", "subcomponents:\n  app:\n    namespace: b\n")
    assert namespaces(root) == {"c1": "from-the-cache", "c2": "b"}
    # a changed file is parsed again
    write(root / "stacks/s/config/c1.yaml", "subcomponents:\n  app:\n    namespace: new\n")
    assert namespaces(root) == {"c1": "new"}
