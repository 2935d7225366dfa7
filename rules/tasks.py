"""doit tasks from a fleet plan: `render:<cluster>:<node path>` and one `<cluster>` each.

Up-to-dateness is one digest per task. When doit is about to run tasks, those already up
to date are left out of the task list altogether (doit pays ~0.1 ms per task it is handed),
unless they were named on the command line; `doit list/info/forget` see every task.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed

from .atomic import write_atomic
from .errors import StackyardError
from .hooks import run_hooks
from .model import PlanNode
from .output import assemble, cluster_dir
from .plan import ClusterPlan
from .renderers import REGISTRY, renderer_for
from .workspace import Workspace

_CHECK_SIGNATURE = inspect.Signature([
    inspect.Parameter("task", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    inspect.Parameter("values", inspect.Parameter.POSITIONAL_OR_KEYWORD),
])


class RenderCheck:
    """Up to date when doit saved this digest and the rendered file is in the workspace."""

    __signature__ = _CHECK_SIGNATURE  # spares doit an inspect.signature() per task

    def __init__(self, digest: str, artifact: Path) -> None:
        self.digest = digest
        self.artifact = artifact

    def __call__(self, task: object, values: dict[str, Any]) -> bool:
        return values.get("digest") == self.digest and self.artifact.is_file()


class ClusterCheck:
    """Up to date when the cluster digest matches and every output file has its saved size."""

    __signature__ = _CHECK_SIGNATURE

    def __init__(self, digest: str, folder: Path) -> None:
        self.digest = digest
        self.folder = folder

    def __call__(self, task: object, values: dict[str, Any]) -> bool:
        if values.get("digest") != self.digest:
            return False
        sizes = values.get("sizes") or {}
        try:
            return all((self.folder / name).stat().st_size == size
                       for name, size in sizes.items())
        except OSError:
            return False


def render_node(node: PlanNode, workspace: Workspace) -> dict[str, Any] | TaskFailed:
    """Render into the workspace, unless an identical render is already there."""
    artifact = workspace.render_path(node.digest)
    definition = node.definition
    if definition.hooks or not artifact.is_file():
        try:
            run_hooks(definition, "before-generate", node.physical_dir)
            content = (renderer_for(definition.type) or REGISTRY["component"]).render(
                node, workspace)
            run_hooks(definition, "after-generate", node.physical_dir)
        except StackyardError as err:
            return TaskFailed(f"{node.cluster}: {node.node_path}: {err}")
        write_atomic(artifact, content)
    return {"digest": node.digest}


def assemble_cluster(plan: ClusterPlan, workspace: Workspace) -> dict[str, Any] | TaskFailed:
    try:
        return assemble(plan, workspace)
    except OSError as err:
        return TaskFailed(f"{plan.name}: cannot write {err.filename}: {err.strerror}")


def render_task_name(node: PlanNode) -> str:
    return f"render:{node.cluster}:{node.node_path}"


def fleet_tasks(plans: dict[str, ClusterPlan], workspace: Workspace, *, prune: bool,
                selected: tuple[str, ...] = (), saved: Any = None) -> Iterator[dict[str, Any]]:
    """Task dicts for doit; with `prune`, only stale or selected tasks (`saved(name)` -> values)."""

    def wanted(name: str, check: RenderCheck | ClusterCheck) -> bool:
        if not prune or any(fnmatch.fnmatchcase(name, pattern) for pattern in selected):
            return True
        return not check(None, saved(name))

    yield {"basename": "render", "name": None,
           "doc": "render every (cluster, component) pair into the workspace"}
    for plan in plans.values():
        render_names = []
        for node in plan.nodes:
            name = render_task_name(node)
            check = RenderCheck(node.digest, workspace.render_path(node.digest))
            if not wanted(name, check):
                continue
            render_names.append(name)
            yield {
                "basename": "render",
                "name": name.removeprefix("render:"),
                "doc": f"render {node.definition.type} {node.node_path!r} for {node.cluster}",
                "actions": [(render_node, (node, workspace))],
                "uptodate": [check],
                "verbosity": 2,
            }
        check = ClusterCheck(plan.digest, cluster_dir(plan, workspace))
        if render_names or wanted(plan.name, check):
            yield {
                "basename": plan.name,
                "doc": f"write generated/{plan.name}/ ({len(plan.nodes)} components, "
                       f"stack {workspace.display(plan.environment.stack_dir)})",
                "actions": [(assemble_cluster, (plan, workspace))],
                "task_dep": render_names,
                "uptodate": [check],
                "verbosity": 2,
            }
