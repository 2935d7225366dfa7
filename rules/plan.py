"""Planning: walk each cluster's stack, layer its config, and digest every node.

The plan is pure data (no doit, no rendering): one `PlanNode` per (cluster, component node)
with its merged config and ONE digest over everything that changes its output.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath

from .definitions import (
    config_files,
    environment_files,
    load_component,
    load_config_file,
    load_environment,
)
from .digest import digest_value
from .errors import StackyardError, join_key, locate, warn
from .layering import child_layers, is_disabled, merge_config
from .model import ComponentDef, Environment, Layer, PlanNode
from .renderers import REGISTRY, Renderer, renderer_for
from .workspace import Workspace

RESERVED_OUTPUTS = frozenset({PurePosixPath("kustomization.yaml")})
_warned: set[str] = set()


def warn_once(message: str) -> None:
    """Stacks are shared by many clusters: say each thing once per run."""
    if message not in _warned:
        _warned.add(message)
        warn(message)


@dataclass(frozen=True)
class ClusterPlan:
    environment: Environment
    nodes: tuple[PlanNode, ...]

    @property
    def name(self) -> str:
        return self.environment.cluster

    @property
    def digest(self) -> str:
        """Changes when any output file's name or content would change."""
        return digest_value(sorted((str(n.output), n.digest) for n in self.nodes))


@dataclass(frozen=True)
class _Visit:
    definition: ComponentDef
    directory: Path
    logical: PurePosixPath
    node_path: str
    layers: tuple[Layer, ...]
    ancestors: tuple[Path, ...]


def plan_fleet(workspace: Workspace) -> dict[str, ClusterPlan]:
    """Every cluster in `environments/`, by name."""
    plans = {}
    for file in environment_files(workspace.root / "environments"):
        environment = load_environment(file)
        plans[environment.cluster] = plan_cluster(environment, workspace)
    return plans


def plan_cluster(environment: Environment, workspace: Workspace) -> ClusterPlan:
    root = load_component(environment.stack_dir)
    directory, own = environment.stack_dir, _own_layers(environment.stack_dir, environment,
                                                        workspace)
    if root.method == "git" and not root.inline:
        # a root that points at a remote stack, vendored in components/<name> (spec §2.5)
        directory = _vendored(environment.stack_dir / "components" / root.name, root, workspace)
        root = load_component(directory)
        own = own + _own_layers(directory, environment, workspace)
    inherited = ()
    if environment.config is not None:
        inherited = (Layer(workspace.display(environment.file), "config", environment.config),)
    queue = deque([_Visit(root, directory, PurePosixPath("."), root.name, inherited + own,
                          (directory,))])
    nodes: list[PlanNode] = []
    layer_names: set[str] = set(config_files(directory))
    while queue:
        visit = queue.popleft()
        nodes.append(_plan_node(environment.cluster, visit))
        _warn_unknown_subcomponent_config(visit)
        for entry in visit.definition.subcomponents:
            inherited = tuple(child_layers(visit.layers, entry.name))
            if is_disabled(inherited):
                continue
            child = _child_visit(visit, entry, inherited, environment, workspace)
            layer_names.update(config_files(child.directory))
            queue.append(child)
    for layer in environment.layers:
        if layer not in layer_names:
            warn_once(f"{workspace.display(environment.file)}: layer {layer!r} has no config "
                      "file in any folder of this stack (a typo?)")
    _check_outputs(nodes, environment, workspace)
    return ClusterPlan(environment, tuple(nodes))


def _own_layers(directory: Path, environment: Environment, workspace: Workspace
                ) -> tuple[Layer, ...]:
    files = config_files(directory)
    return tuple(
        Layer(workspace.display(files[name]), "", load_config_file(files[name]))
        for name in (*environment.layers, "common") if name in files
    )


def _vendored(directory: Path, entry: ComponentDef, workspace: Workspace) -> Path:
    if not directory.is_dir():
        raise StackyardError(
            f"remote component ({entry.source or 'no source'}) is not vendored at "
            f"{workspace.display(directory)}; this version does not fetch git sources yet",
            file=entry.file, key=entry.key or "method")
    return directory


def _child_visit(parent: _Visit, entry: ComponentDef, inherited: tuple[Layer, ...],
                 environment: Environment, workspace: Workspace) -> _Visit:
    node_path = f"{parent.node_path}/{entry.name}"
    if entry.inline:
        return _Visit(entry, parent.directory, parent.logical, node_path, inherited,
                      parent.ancestors)
    if entry.method == "git":
        base = _vendored(parent.directory / "components" / entry.name, entry, workspace)
    else:
        base = parent.directory / (entry.source or ".")
    directory = Path(os.path.normpath(base / entry.path.lstrip("/")))
    if directory in parent.ancestors:
        raise StackyardError(
            f"subcomponent {entry.name!r} points at {workspace.display(directory)}, which is "
            "one of its own ancestors (a cycle)", file=entry.file, key=entry.key)
    definition = load_component(directory)
    return _Visit(definition, directory, parent.logical / entry.name, node_path,
                  inherited + _own_layers(directory, environment, workspace),
                  (*parent.ancestors, directory))


def _plan_node(cluster: str, visit: _Visit) -> PlanNode:
    definition = visit.definition
    renderer = _renderer(definition)
    config = merge_config(visit.layers)
    inputs = _input_digest(definition, visit.directory)
    payload: dict[str, object] = {
        "renderer": [definition.type, renderer.version],
        "definition": definition.identity(),
        "inputs": inputs,
    }
    if renderer.uses_config:
        payload["config"] = [config.values, config.namespace, config.inject_namespace]
    return PlanNode(cluster=cluster, node_path=visit.node_path, definition=definition,
                    physical_dir=visit.directory, logical_dir=visit.logical, config=config,
                    inputs_digest=inputs, digest=digest_value(payload))


def _renderer(definition: ComponentDef) -> Renderer:
    renderer = renderer_for(definition.type)
    if renderer is None:
        warn_once(locate(f"unknown type {definition.type!r} renders an empty manifest (known: "
                         f"{', '.join(sorted(REGISTRY))})",
                         file=definition.file, key=join_key(definition.key, "type")))
        return REGISTRY["component"]
    return renderer


@cache
def _input_digest(definition: ComponentDef, directory: Path) -> str:
    """Many clusters share a node's files: digest them once per process."""
    return _renderer(definition).input_digest(definition, directory)


def _warn_unknown_subcomponent_config(visit: _Visit) -> None:
    known = {entry.name for entry in visit.definition.subcomponents}
    for layer in visit.layers:
        for name in layer.data["subcomponents"]:
            if name not in known:
                key = f"{layer.prefix + '.' if layer.prefix else ''}subcomponents.{name}"
                warn_once(f"{layer.file}: {key}: {visit.node_path!r} has no subcomponent "
                          f"named {name!r}; this config is unused")


def _check_outputs(nodes: list[PlanNode], environment: Environment, workspace: Workspace
                   ) -> None:
    """Fabrikate let two nodes overwrite one file; here that is an error."""
    owners: dict[PurePosixPath, PlanNode] = {}
    for node in nodes:
        if node.output in RESERVED_OUTPUTS:
            raise StackyardError(f"component {node.node_path!r} would write {node.output}, "
                                 "which Stackyard writes itself; rename the component",
                                 file=node.definition.file, key=node.definition.key or "name")
        other = owners.get(node.output)
        if other is not None:
            raise StackyardError(
                f"components {other.node_path!r} and {node.node_path!r} would both write "
                f"generated/{environment.cluster}/{node.output}; rename one of them",
                file=node.definition.file, key=node.definition.key or "name")
        owners[node.output] = node
