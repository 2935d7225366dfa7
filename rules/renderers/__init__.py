"""One renderer per component type, behind one small interface.

A new component type is a module with a `RENDERER` object and a line in `REGISTRY`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ..model import ComponentDef, PlanNode
from ..workspace import Workspace
from . import container, helm, static


class Renderer(Protocol):
    """Turns one planned node into manifest bytes."""

    version: str
    """Changes whenever the bytes this renderer produces for the same inputs change."""

    uses_config: bool
    """Whether the node's merged config reaches the output (and so its digest)."""

    def input_paths(self, definition: ComponentDef, directory: Path,
                    checkout: Path | None = None) -> tuple[Path, ...]:
        """The files and folders the render will read; the planner digests their content.

        `checkout` is the entry's `source`/`path` from the git store, when not vendored.
        """
        ...

    def render(self, node: PlanNode, workspace: Workspace) -> bytes:
        """The manifest bytes; raises StackyardError on bad input."""
        ...


REGISTRY: dict[str, Renderer] = {
    "component": container.RENDERER,
    "static": static.RENDERER,
    "helm": helm.RENDERER,
}


def renderer_for(kind: str) -> Renderer | None:
    return REGISTRY.get(kind)
