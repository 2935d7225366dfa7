"""`type: component` (and unknown types): a container node whose own manifest is empty."""

from __future__ import annotations

from pathlib import Path

from ..model import ComponentDef, PlanNode
from ..workspace import Workspace


class ContainerRenderer:
    version = "1"
    uses_config = False

    def input_paths(self, definition: ComponentDef, directory: Path,
                    checkout: Path | None = None) -> tuple[Path, ...]:
        return ()

    def render(self, node: PlanNode, workspace: Workspace) -> bytes:
        return b""


RENDERER = ContainerRenderer()
