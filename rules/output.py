"""Writing one cluster's output folder: its files, `kustomization.yaml`, `provenance.json`.

Renders land in the workspace first; only when every render of a cluster succeeded is the
cluster's folder updated (file by file, each atomically), so a failed build leaves the
previous output untouched. Files this tool wrote before and no longer produces are removed;
files it never wrote are left alone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from . import __version__
from .atomic import write_atomic
from .plan import ClusterPlan
from .workspace import Workspace
from .yamlio import dump_yaml

PROVENANCE = "provenance.json"
KUSTOMIZATION = "kustomization.yaml"


def cluster_dir(plan: ClusterPlan, workspace: Workspace) -> Path:
    return workspace.output_dir / plan.name


def read_provenance(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / PROVENANCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def assemble(plan: ClusterPlan, workspace: Workspace) -> dict[str, Any]:
    """Bring `generated/<cluster>/` in line with the plan; returns what doit stores."""
    folder = cluster_dir(plan, workspace)
    previous = read_provenance(folder).get("files", {})
    files: dict[str, dict[str, Any]] = {}
    for node in plan.nodes:
        relative = str(node.output)
        target = folder / relative
        content = workspace.render_path(node.digest).read_bytes()
        before = previous.get(relative, {})
        unchanged = (before.get("digest") == node.digest and target.is_file()
                     and target.stat().st_size == len(content))
        if not unchanged:
            write_atomic(target, content)
        files[relative] = {"component": node.node_path, "type": node.definition.type,
                           "digest": node.digest, "bytes": len(content)}
    for stale in sorted(set(previous) - set(files)):
        _remove(folder, stale)
    _write_if_changed(folder / KUSTOMIZATION, kustomization(files))
    _write_if_changed(folder / PROVENANCE, provenance(plan, files, workspace))
    return {"digest": plan.digest, "sizes": {name: f["bytes"] for name, f in files.items()}}


def kustomization(files: dict[str, dict[str, Any]]) -> bytes:
    """Every non-empty file, sorted; `kubectl apply -k` / Flux order them by kind."""
    resources = sorted(name for name, info in files.items() if info["bytes"] > 0)
    return dump_yaml({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    }).encode()


def provenance(plan: ClusterPlan, files: dict[str, dict[str, Any]], workspace: Workspace
               ) -> bytes:
    """What produced each file: component, type, input digest. No timestamps: reproducible."""
    environment = plan.environment
    document = {
        "generator": f"stackyard {__version__}",
        "cluster": plan.name,
        "environment": workspace.display(environment.file),
        "stack": workspace.display(environment.stack_dir),
        "layers": [*environment.layers, "common"],
        "files": dict(sorted(files.items())),
    }
    return (json.dumps(document, indent=2, sort_keys=False) + "\n").encode()


def _write_if_changed(path: Path, content: bytes) -> None:
    try:
        if path.read_bytes() == content:
            return
    except OSError:
        pass
    write_atomic(path, content)


def _remove(folder: Path, relative: str) -> None:
    """Delete a file this tool wrote earlier, then any folders it leaves empty."""
    target = folder / relative
    if ".." in Path(relative).parts:
        return
    target.unlink(missing_ok=True)
    parent = target.parent
    while parent != folder and parent.is_relative_to(folder):
        try:
            os.rmdir(parent)
        except OSError:
            break
        parent = parent.parent
