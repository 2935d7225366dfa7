"""A render reads its input folders when it runs, which may be minutes after planning
digested them. An edit, or a `git checkout`, in between would otherwise be stored under
the digest of what planning saw, and served from the store for good."""

from __future__ import annotations

from pathlib import Path

from ..errors import StackyardError
from ..filestate import FileState
from ..model import PlanNode
from ..workspace import Workspace

_files = FileState()
"""Digests by (inode, size, mtime, ctime), per process: a folder checked again re-hashes
only what changed since."""


def check_unchanged(node: PlanNode, paths: tuple[Path, ...], workspace: Workspace) -> None:
    """Raise when a local folder among `paths` no longer holds what planning digested.
    Downloads and stored git checkouts are left out (the store never changes them): the
    record of inputs names them by source (`Planner._label`), not by their path."""
    planned = dict(node.inputs)
    for path in paths:
        name = workspace.display(path)
        digest = planned.get(name)
        if digest is None:
            continue
        if (_files.tree_digest(path, skip=workspace.own_paths) or "missing") != digest:
            raise StackyardError(f"{name} changed while this build was running, so this "
                                 "render is not kept; run doit again",
                                 file=node.definition.file, key=node.definition.key)
