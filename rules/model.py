"""The data every stage shares: component definitions, config layers, environments, plan nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .digest import digest_value
from .sources.artifacts import Fetch
from .sources.redact import redact

CONTAINER = "component"


@dataclass(frozen=True)
class ComponentDef:
    """One entry of a `component.yaml`: the file's root or one of its `subcomponents`."""

    name: str
    type: str
    method: str = ""
    source: str = ""
    path: str = ""
    version: str = ""
    branch: str = ""
    hooks: tuple[tuple[str, tuple[str, ...]], ...] = ()
    subcomponents: tuple[ComponentDef, ...] = ()
    file: Path = field(default=Path(), compare=False)
    key: str = field(default="", compare=False)

    @property
    def inline(self) -> bool:
        """Fabrikate: `component`/empty type entries point at a folder; any other type is inline."""
        return self.type != CONTAINER

    def hook(self, name: str) -> tuple[str, ...]:
        return dict(self.hooks).get(name, ())

    @cached_property
    def identity_digest(self) -> str:
        """Of `identity()`, once per definition: thousands of nodes share one."""
        return digest_value(self.identity())

    def identity(self) -> dict[str, Any]:
        """The fields that change what this node renders (for its digest)."""
        return {
            "name": self.name, "type": self.type, "method": self.method,
            "source": redact(self.source),  # recorded beside renders: never a credential
            "path": self.path, "version": self.version, "branch": self.branch,
            "hooks": [[k, list(v)] for k, v in self.hooks],
        }


@dataclass(frozen=True)
class Layer:
    """One config source for a node: a file (or an environment's inline config) at a key prefix.

    `data` is the normalised component-config mapping found at `prefix` inside `file`
    (keys: config, namespace, injectNamespace, disabled, subcomponents).
    """

    file: str
    prefix: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Environment:
    """`environments/<cluster>.yaml`: which stack, which layers, optional inline config."""

    cluster: str
    file: Path
    stack_dir: Path
    layers: tuple[str, ...]
    config: dict[str, Any] | None
    remote_stack: ComponentDef | None = None
    """`stack:` given as a git source; then `stack_dir` is the environment's folder."""


@dataclass(frozen=True)
class MergedConfig:
    """A node's config after layering: its helm values and namespace settings."""

    values: dict[str, Any]
    namespace: str
    inject_namespace: bool


@dataclass(frozen=True)
class PlanNode:
    """One (cluster, component node) to render: everything the render needs, precomputed."""

    cluster: str
    node_path: str
    definition: ComponentDef
    physical_dir: Path
    logical_dir: str
    """The output folder relative to `generated/<cluster>/` as a prefix: "" at the top,
    "web/" below (strings: planning makes 10,000 of them)."""
    inputs: tuple[tuple[str, str], ...]
    """(folder, content digest) of every input tree the renderer reads."""
    inputs_digest: str
    recipe: str
    """Of what `digest` is made from, by reference: the renderer's version, the definition,
    the inputs digest and the config layers' own digests. Cheap to make; when it equals
    the last plan's, so does the digest, and nothing is merged or serialised again."""
    digest: str
    checkout: Path | None = None
    """A git entry's `source`/`path` in the store, when not vendored; for a chart from a
    repository or a `method: http` file, its entry in the store."""
    fetches: tuple[Fetch, ...] = ()
    """Store entries the render reads that `fetch:` tasks download: the chart or file
    itself, and chart dependencies from repositories."""
    layers: tuple[Layer, ...] = field(default=(), compare=False, repr=False)
    """The config layers of this node, highest first (to explain a change)."""
    merged: MergedConfig | None = field(default=None, compare=False, repr=False)
    """The merged config when planning made it (to digest it), else None."""

    @cached_property
    def config(self) -> MergedConfig:
        """The layers merged (spec §3.3-3.7). A node whose digest a re-plan took over from
        the last plan was not merged then; a render asking for its config merges it."""
        if self.merged is not None:
            return self.merged
        from .layering import merge_config  # layering is built on this module's types

        return merge_config(self.layers)

    @cached_property
    def output(self) -> str:
        """Output file relative to `generated/<cluster>/` (Fabrikate §4.2), '/'-separated."""
        return f"{self.logical_dir}{self.definition.name}.yaml"
