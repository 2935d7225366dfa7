"""before-generate / after-generate hooks: `sh -c <line>` in the node's folder (spec §5.1)."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .atomic import temp_name
from .errors import StackyardError, join_key
from .model import ComponentDef, PlanNode
from .sources.cache import stored_checkout


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


@contextmanager
def working_copy(node: PlanNode, temp_dir: Path) -> Iterator[PlanNode]:
    """The node, or, when it has hooks and lives in a stored git checkout (shared by every
    cluster and build, so never to be changed), the node in a private copy of that
    checkout, removed afterwards: Fabrikate ran hooks in its own clone."""
    checkout = stored_checkout(node.physical_dir) if node.definition.hooks else None
    if checkout is None:
        yield node
        return
    copy = temp_dir / temp_name(f"hooks-{node.cluster}")
    try:
        shutil.copytree(checkout, copy, symlinks=True)
        moved = {"physical_dir": copy / node.physical_dir.relative_to(checkout)}
        if node.checkout is not None and node.checkout.is_relative_to(checkout):
            moved["checkout"] = copy / node.checkout.relative_to(checkout)
        yield dataclasses.replace(node, **moved)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
