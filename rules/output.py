"""Writing one cluster's output folder: its files, `kustomization.yaml`, `provenance.json`.

Renders land in the workspace first; only when every render of a cluster succeeded is the
cluster's folder updated (file by file, each atomically), so a failed build leaves the
previous output untouched. Files this tool wrote before and no longer produces are removed;
files it never wrote are left alone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Collection, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import __version__
from .atomic import remove_abandoned_beside, write_atomic
from .errors import StackyardError, display_path
from .filestate import FileState, content_digest
from .plan_cache import ClusterSummary, NodeSummary
from .render_store import Fingerprint
from .workspace import Workspace
from .yamlio import dump_yaml

PROVENANCE = "provenance.json"
KUSTOMIZATION = "kustomization.yaml"


def cluster_dir(cluster: str, workspace: Workspace) -> Path:
    return workspace.output_dir / cluster


def read_provenance(folder: Path) -> dict[str, Any]:
    return _parse_provenance(_read(folder / PROVENANCE), folder / PROVENANCE)


def _read(path: Path | str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _parse_provenance(raw: bytes | None, path: Path) -> dict[str, Any]:
    """The file says which files this tool wrote, so which it may remove. When it cannot
    be read (a merge conflict, a hand edit), guessing would leave stale files for ever or
    remove the wrong ones: an error that says how to recover."""
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    files = data.get("files", {}) if isinstance(data, dict) else None
    if not (isinstance(files, dict) and all(isinstance(info, dict) for info in files.values())):
        raise StackyardError(
            "not the provenance file this tool writes (a merge conflict? a hand edit?), so "
            "which files it wrote before is unknown; restore it from git, or delete the "
            f"folder {display_path(path.parent)}/ (a build writes it anew while its "
            "cluster has an environment file)", file=path)
    return data


def assemble(plan: ClusterSummary, workspace: Workspace, files: FileState
             ) -> dict[str, Any]:
    """Bring `generated/<cluster>/` in line with the plan; returns what doit stores. Each
    file is checked by content against its render (through the stat-keyed digest memo,
    so mostly without reading it): a hand edit or a bad merge is repaired.

    `provenance.json` is the only record of which files this tool wrote, so a name is in
    it before its file is written, and leaves it only after its file is removed: a build
    killed half-way leaves no file that a later build would not know to remove. Stale
    files go before new ones are written: a component renamed from `x` to `x.yaml` needs
    a folder where its old file was."""
    folder = cluster_dir(plan.name, workspace)
    old_provenance = _read(folder / PROVENANCE)
    previous = _parse_provenance(old_provenance, folder / PROVENANCE).get("files", {})
    sizes: dict[str, int] = {}
    to_write: dict[str, bytes] = {}
    prefix = f"{folder}{os.sep}"
    scratch = workspace.temp_dir  # not generated/: a killed write leaves no litter there
    for node in plan.nodes:
        target = prefix + node.output
        held = held_render(target, node, workspace, files)
        if held is None:
            to_write[target] = workspace.renders.get(node.digest)
            sizes[node.output] = len(to_write[target])
        else:
            sizes[node.output] = held.size
    written = _entries(plan, sizes)
    remove_abandoned_beside(_folders(folder, written, previous))
    stale = sorted(set(previous) - set(written))
    new_provenance = provenance(plan, written)
    if set(written) - set(previous):  # new names: listed before their files exist
        listed = provenance(plan, {**previous, **written}) if stale else new_provenance
        if listed != old_provenance:
            write_atomic(folder / PROVENANCE, listed, scratch)
            old_provenance = listed
    for name in stale:  # first: a stale file may stand where a new folder goes
        _remove(folder, name)
    for target, content in to_write.items():
        write_atomic(target, content, scratch)
    resources = _resources(sizes)
    if files.file_digest(folder / KUSTOMIZATION) != _kustomization_digest(resources):
        write_atomic(folder / KUSTOMIZATION, kustomization(resources), scratch)
    if new_provenance != old_provenance:
        write_atomic(folder / PROVENANCE, new_provenance, scratch)
    return {"digest": plan.digest}


def output_current(plan: ClusterSummary, workspace: Workspace, files: FileState) -> bool:
    """The folder holds exactly this plan's output: every file has its render's content,
    and `kustomization.yaml` and `provenance.json` are what `assemble` writes. Files are
    known by the stat-keyed digest memo, so a no-op build reads none of them."""
    prefix = f"{cluster_dir(plan.name, workspace)}{os.sep}"  # strings: Paths cost ~50 ms
    sizes = {}
    for node in plan.nodes:
        held = held_render(prefix + node.output, node, workspace, files)
        if held is None:
            return False
        sizes[node.output] = held.size
    if files.file_digest(prefix + KUSTOMIZATION) != _kustomization_digest(_resources(sizes)):
        return False
    made = _provenance_source(plan, sizes)
    known = files.made.get(plan.name)
    if known is None or known[0] != made:
        known = (made, content_digest(provenance(plan, _entries(plan, sizes))))
        files.made[plan.name] = known
        files.changed = True
    return files.file_digest(prefix + PROVENANCE) == known[1]


def output_files(plans: Iterable[ClusterSummary], workspace: Workspace) -> set[str]:
    """Every file `assemble` writes for these clusters, named as `output_current` names
    them."""
    names: set[str] = set()
    for plan in plans:
        prefix = f"{cluster_dir(plan.name, workspace)}{os.sep}"
        names.update(prefix + node.output for node in plan.nodes)
        names.update((prefix + KUSTOMIZATION, prefix + PROVENANCE))
    return names


def held_render(path: Path | str, node: NodeSummary, workspace: Workspace,
                files: FileState) -> Fingerprint | None:
    """The fingerprint of the node's render when the file at `path` holds it, else None.
    A render with hooks is looked up afresh: another process may have made it again."""
    fingerprint = workspace.renders.fingerprint(node.digest, fresh=node.hooks)
    if fingerprint is None or files.file_digest(path) != fingerprint.digest:
        return None
    return fingerprint


def _provenance_source(plan: ClusterSummary, sizes: dict[str, int]) -> str:
    """Everything of a cluster's `provenance.json` besides its name, in one string: the
    sizes too (a render with hooks, made again, may differ in size under one digest)."""
    return repr((__version__, plan.environment, plan.stack, plan.layers, plan.digest,
                 sorted(sizes.items())))


def _entries(plan: ClusterSummary, sizes: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Each file's line in `provenance.json`."""
    return {node.output: {"component": node.node_path, "type": node.type,
                          "digest": node.digest, "bytes": sizes[node.output]}
            for node in plan.nodes}


def retired_clusters(workspace: Workspace, clusters: set[str]) -> list[str]:
    """Output folders this tool wrote for clusters that no longer have an environment."""
    try:
        names = sorted(os.listdir(workspace.output_dir))
    except FileNotFoundError:
        return []
    except OSError as err:  # a file in its place, a loop of links
        raise StackyardError(f"cannot use it as the output folder: {err.strerror}",
                             file=workspace.output_dir) from None
    return [name for name in names if name not in clusters
            and (workspace.output_dir / name / PROVENANCE).is_file()]


def retire(cluster: str, workspace: Workspace) -> None:
    """Remove what this tool wrote for a cluster; files it did not write stay."""
    folder = cluster_dir(cluster, workspace)
    files = read_provenance(folder).get("files", {})
    remove_abandoned_beside(_folders(folder, (), files))
    for relative in files:
        _remove(folder, relative)
    for name in (KUSTOMIZATION, PROVENANCE):
        (folder / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def _resources(sizes: dict[str, int]) -> tuple[str, ...]:
    """Every non-empty file, sorted: what `kustomization.yaml` lists."""
    return tuple(sorted(name for name, size in sizes.items() if size))


@lru_cache(maxsize=256)
def kustomization(resources: tuple[str, ...]) -> bytes:
    """`kubectl apply -k` / Flux order the listed resources by kind themselves. Made once
    per distinct list: clusters of one stack list the same files."""
    return dump_yaml({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(resources),
    }).encode()


@lru_cache(maxsize=256)
def _kustomization_digest(resources: tuple[str, ...]) -> str:
    return content_digest(kustomization(resources))


def provenance_head(plan: ClusterSummary) -> dict[str, Any]:
    """`provenance.json` before its `files`."""
    return {
        "generator": f"stackyard {__version__}",
        "cluster": plan.name,
        "environment": plan.environment,
        "stack": plan.stack,
        "layers": list(plan.layers),
        "digest": plan.digest,
    }


def provenance(plan: ClusterSummary, files: dict[str, dict[str, Any]]) -> bytes:
    """What produced each file: component, type, input digest. No timestamps: reproducible.

    JSON with one line per output file: diffs show exactly the files that changed, and
    the C encoder writes it (an indented dump runs the pure-Python encoder).
    """
    lines = [f"  {json.dumps(key)}: {json.dumps(value)},"
             for key, value in provenance_head(plan).items()]
    body = ",\n".join(f"    {json.dumps(name)}: {json.dumps(info)}"
                      for name, info in sorted(files.items()))
    return ("{\n" + "\n".join(lines) + '\n  "files": {\n' + body + "\n  }\n}\n").encode()


def _remove(folder: Path, relative: str) -> None:
    """Delete a file this tool wrote earlier, then any folders it leaves empty. The name
    comes from a committed file that anyone may edit: only a file inside `folder`, not
    reached through a link, is ever removed."""
    if not _inside(folder, relative):
        return
    target = folder / relative
    try:
        target.unlink(missing_ok=True)
    except OSError as err:
        if err.errno != errno.ENAMETOOLONG:  # a name no file can have is not there
            raise
    parent = target.parent
    while parent != folder and parent.is_relative_to(folder):
        try:
            os.rmdir(parent)
        except OSError:
            break
        parent = parent.parent


def _folders(folder: Path, writes: Collection[str], wrote: Iterable[str] = ()) -> set[str]:
    """The cluster folder and each folder in it that holds a file this tool writes (named
    by the plan) or wrote (named by `provenance.json`, which anyone may edit: only those
    inside `folder`): where a killed write may have left its temp file."""
    names = {*writes, *(name for name in wrote if name not in writes and _inside(folder, name))}
    return {os.fspath(folder), *(os.path.join(folder, parent)
                                 for parent in {os.path.dirname(name) for name in names}
                                 if parent)}


def _inside(folder: Path, relative: str) -> bool:
    """`folder/relative` is in `folder` itself, not elsewhere through a link."""
    if os.path.isabs(relative) or ".." in Path(relative).parts:
        return False
    parent = os.path.dirname(relative)
    return os.path.realpath(folder / parent) == os.path.normpath(
        os.path.join(os.path.realpath(folder), parent))
