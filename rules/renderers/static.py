"""`type: static`: each file of a folder as `---\\n<content>\\n`, by name (spec §5.4)."""

from __future__ import annotations

import os
from pathlib import Path

from .. import manifests
from ..errors import StackyardError, join_key, warn
from ..model import ComponentDef, PlanNode
from ..sources import artifacts
from ..workspace import Workspace
from .unchanged import check_unchanged


def manifest_dir(definition: ComponentDef, directory: Path) -> Path:
    """`method: http` reads its vendored download in `components/<name>/` (when not
    vendored, the download in the store); else `<path>`."""
    if definition.method.lower() == "http":
        return directory / "components" / definition.name
    return Path(os.path.normpath(directory / definition.path.lstrip("/")))


class StaticRenderer:
    version = "1"
    uses_config = False

    def input_paths(self, definition: ComponentDef, directory: Path,
                    checkout: Path | None = None) -> tuple[Path, ...]:
        # a missing folder is reported by the render (a hook may still create it)
        return (manifest_dir(definition, directory),)

    def render(self, node: PlanNode, workspace: Workspace) -> bytes:
        where = {"file": node.definition.file, "key": node.definition.key}
        if node.fetches:  # `method: http`, downloaded into the store: the folder's one file
            (download,) = artifacts.ensure_all(node.fetches, where)
            return b"---\n" + download.read_bytes() + b"\n"
        folder = manifest_dir(node.definition, node.physical_dir)
        if not folder.is_dir():
            problem = ("is a file, not a folder: `path` names a folder, and every file in "
                       "it is written; to write only this file, put it in a folder of its own"
                       if folder.exists() else "does not exist")
            raise StackyardError(f"static manifest folder {workspace.display(folder)} "
                                 f"{problem}", file=node.definition.file,
                                 key=join_key(node.definition.key, "path"))
        parts: list[bytes] = []
        for name in sorted(os.listdir(folder), key=os.fsencode):  # Fabrikate's byte order
            path = folder / name
            if path.is_dir():
                raise StackyardError(f"static manifest folder {workspace.display(folder)} "
                                     f"contains a sub-folder {name!r}; only files are read",
                                     **where)
            content = path.read_bytes()
            _warn_unless_yaml(path, content, workspace)
            parts.append(b"---\n" + content + b"\n")
        if not node.definition.hooks:  # a hook changes the folder on purpose
            check_unchanged(node, (folder,), workspace)
        return b"".join(parts)


def _warn_unless_yaml(path: Path, content: bytes, workspace: Workspace) -> None:
    """Files are written verbatim, as Fabrikate writes them; one that is not YAML would
    only fail later, in Flux or `kubectl apply`, so it is said now."""
    try:
        problem = manifests.yaml_problem(content.decode())
        message = None if problem is None else f"not valid YAML{problem}"
    except UnicodeDecodeError:
        message = "not UTF-8 text"
    if message is not None:
        warn(f"{message}; written as it is", file=workspace.display(path))


RENDERER = StaticRenderer()
