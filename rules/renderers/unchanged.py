"""A render reads its input folders when it runs, which may be minutes after planning
digested them. An edit, or a `git checkout`, in between would otherwise be stored under
the digest of what planning saw, and served from the store for good."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import StackyardError
from ..filestate import FileState, listing_digest
from ..model import PlanNode
from ..workspace import Workspace

_files = FileState()
"""Digests by (inode, size, mtime, ctime), per process: a folder checked again re-hashes
only what changed since."""


def local_folders(node: PlanNode, paths: tuple[Path, ...], workspace: Workspace
                  ) -> Iterator[tuple[Path, str, str]]:
    """(path, label, planned digest) of each local folder among `paths`. Downloads and
    stored git checkouts are left out (the store never changes them): the record of
    inputs names them by source (`Planner._label`), not by their path."""
    planned = dict(node.inputs)
    for path in paths:
        label = workspace.display(path)
        digest = planned.get(label)
        if digest is not None:
            yield path, label, digest


def check_unchanged(node: PlanNode, paths: tuple[Path, ...], workspace: Workspace) -> None:
    """Raise when a local folder among `paths` no longer holds what planning digested."""
    for path, label, digest in local_folders(node, paths, workspace):
        if (_files.tree_digest(path, skip=workspace.own_paths) or "missing") != digest:
            raise StackyardError(f"{label} changed while this build was running, so this "
                                 "render is not kept; run doit again",
                                 file=node.definition.file, key=node.definition.key)


def listings(node: PlanNode, paths: tuple[Path, ...], workspace: Workspace
             ) -> dict[str, tuple[str, dict[str, str]]]:
    """By label, the planned digest and the present listing of each local input folder
    that still holds what planning digested (`doit info` names the files that changed
    since an earlier render's)."""
    found = {}
    for path, label, digest in local_folders(node, paths, workspace):
        listing = _files.tree_listing(path, skip=workspace.own_paths)
        if listing is not None and listing_digest(listing) == digest:
            found[label] = (digest, listing)
    return found
