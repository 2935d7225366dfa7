"""before-generate / after-generate hooks: `sh -c <line>` in the node's folder (spec §5.1)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .errors import StackyardError, join_key
from .model import ComponentDef


def run_hooks(definition: ComponentDef, stage: str, directory: Path) -> None:
    """Run each command of one hook in order; the first failure stops it, showing its output."""
    for command in definition.hook(stage):
        result = subprocess.run(
            ["sh", "-c", command], cwd=directory, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
        )
        if result.returncode != 0:
            output = result.stdout.strip() or "(no output)"
            raise StackyardError(
                f"hook command {command!r} failed with exit code {result.returncode} "
                f"in {directory}:\n{output}",
                file=definition.file, key=join_key(join_key(definition.key, "hooks"), stage),
            )
