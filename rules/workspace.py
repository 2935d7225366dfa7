"""The tool's own state folder (`.stackyard/` beside dodo.py): doit's database and caches."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .render_store import RenderStore


@dataclass(frozen=True, eq=False)
class Workspace:
    root: Path
    state_dir: Path

    @classmethod
    def at(cls, root: Path) -> Workspace:
        return cls(root=root, state_dir=root / ".stackyard")

    @property
    def doit_db(self) -> Path:
        return self.state_dir / "doit.sqlite3"

    @property
    def output_dir(self) -> Path:
        return self.root / "generated"

    @property
    def own_paths(self) -> tuple[Path, Path, Path]:
        """What Stackyard writes itself (state, output, the lock file): never an input,
        even inside an input folder (a chart at the repository root)."""
        return self.state_dir, self.output_dir, self.root / "stacks.lock"

    @property
    def temp_dir(self) -> Path:
        """Where output files are written before they are renamed into `generated/`."""
        return self.state_dir / "tmp"

    @cached_property
    def renders(self) -> RenderStore:
        """Renders are content-addressed: clusters with the same inputs share one."""
        return RenderStore(self.state_dir / "renders.sqlite3")

    @property
    def chart_builds_dir(self) -> Path:
        return self.state_dir / "charts"

    def chart_build_dir(self, digest: str) -> Path:
        """A copy of a chart with its `file://` dependencies placed in `charts/`."""
        return self.chart_builds_dir / digest

    def display(self, path: Path) -> str:
        """Paths in messages are relative to the repo root when they live inside it."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)
