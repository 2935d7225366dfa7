"""The fleet's plan, kept between runs and re-planned only where an input changed.

Each cluster's entry holds a light summary of its plan (node paths, digests, output files)
and what planning it read: file digests, folder listings, input-tree digests. A run checks
those (re-hashing only files whose inode, size, mtime or ctime moved) and plans again just
the clusters with a changed input. A code change of Stackyard itself drops the whole cache.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import xxhash

from . import __version__
from .atomic import write_atomic
from .definitions import environment_files, load_environment
from .errors import warn
from .filestate import FileState, listing
from .plan import ClusterPlan, Planner, Watch, warn_once
from .workspace import Workspace

_FORMAT = 1


class NodeSummary(NamedTuple):
    node_path: str
    digest: str
    output: str
    type: str


@dataclass(frozen=True)
class ClusterSummary:
    """What tasks and output writing need to know about a cluster, without its configs."""

    name: str
    environment: str
    stack: str
    layers: tuple[str, ...]
    digest: str
    nodes: tuple[NodeSummary, ...]

    @classmethod
    def of(cls, plan: ClusterPlan, workspace: Workspace) -> ClusterSummary:
        environment = plan.environment
        return cls(
            name=plan.name,
            environment=workspace.display(environment.file),
            stack=workspace.display(environment.stack_dir),
            layers=(*environment.layers, "common"),
            digest=plan.digest,
            nodes=tuple(NodeSummary(n.node_path, n.digest, str(n.output), n.definition.type)
                        for n in plan.nodes),
        )


@dataclass(frozen=True)
class _Seen:
    """The observed state of one cluster's inputs, to compare with on the next run."""

    files: dict[str, str | None]
    folders: dict[str, tuple[str, ...] | None]
    trees: dict[str, str | None]
    warnings: tuple[str, ...]


@dataclass
class _Entry:
    environment_file: str
    summary: ClusterSummary
    seen: _Seen


@dataclass
class _Cache:
    fingerprint: str
    files: FileState = field(default_factory=FileState)
    clusters: dict[str, _Entry] = field(default_factory=dict)


@dataclass
class Fleet:
    """Every cluster's summary, and full plans for those planned in this process."""

    summaries: dict[str, ClusterSummary]
    environment_files: dict[str, Path]
    plans: dict[str, ClusterPlan]
    replanned: tuple[str, ...]


def code_fingerprint() -> str:
    """Changes when Stackyard's own code changes (it decides what plans contain)."""
    package = Path(__file__).parent
    hasher = xxhash.xxh3_128(f"{__version__}:{_FORMAT}".encode())
    for path in sorted(package.rglob("*.py")):
        info = path.stat()
        hasher.update(f"{path.relative_to(package)}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return hasher.hexdigest()


def cache_path(workspace: Workspace) -> Path:
    return workspace.state_dir / "plan-cache.pickle"


def _load_cache(workspace: Workspace, fingerprint: str) -> _Cache:
    try:
        with open(cache_path(workspace), "rb") as handle:
            cache = pickle.load(handle)
    except FileNotFoundError:
        return _Cache(fingerprint)
    except Exception:  # a damaged or foreign cache is only a cache: start over
        warn(f"ignoring unreadable plan cache {cache_path(workspace)}")
        return _Cache(fingerprint)
    if not isinstance(cache, _Cache) or cache.fingerprint != fingerprint:
        return _Cache(fingerprint, files=getattr(cache, "files", FileState()))
    return cache


def _observe(watch: Watch, planner: Planner) -> _Seen:
    files = planner.files
    return _Seen(
        files={os.fspath(p): files.file_digest(p) for p in sorted(watch.files)},
        folders={os.fspath(p): listing(p) for p in sorted(watch.folders)},
        trees={os.fspath(p): planner.tree_digest(p) for p in sorted(watch.trees)},
        warnings=tuple(watch.warnings),
    )


class _Validator:
    """Checks observations once per path, however many clusters share the path."""

    def __init__(self, planner: Planner) -> None:
        self.planner = planner
        self._files: dict[str, str | None] = {}
        self._folders: dict[str, tuple[str, ...] | None] = {}

    def still_valid(self, seen: _Seen) -> bool:
        for path, digest in seen.files.items():
            if path not in self._files:
                self._files[path] = self.planner.files.file_digest(path)
            if self._files[path] != digest:
                return False
        for path, names in seen.folders.items():
            if path not in self._folders:
                self._folders[path] = listing(path)
            if self._folders[path] != names:
                return False
        return all(self.planner.tree_digest(Path(path)) == digest
                   for path, digest in seen.trees.items())


def load_fleet(workspace: Workspace) -> Fleet:
    """Summaries for every cluster; re-plans only clusters whose inputs changed.

    Raises StackyardError for bad input, before anything is saved or written.
    """
    fingerprint = code_fingerprint()
    cache = _load_cache(workspace, fingerprint)
    planner = Planner(workspace, cache.files)
    validator = _Validator(planner)
    entries: dict[str, _Entry] = {}
    plans: dict[str, ClusterPlan] = {}
    for file in environment_files(workspace.root / "environments"):
        cluster, path = file.stem, os.fspath(file)
        entry = cache.clusters.get(cluster)
        if entry is not None and entry.environment_file == path \
                and validator.still_valid(entry.seen):
            for message in entry.seen.warnings:
                warn_once(message)
        else:
            plan, watch = planner.plan(load_environment(file))
            plans[cluster] = plan
            entry = _Entry(path, ClusterSummary.of(plan, workspace), _observe(watch, planner))
        entries[cluster] = entry
    replanned = tuple(sorted(plans))
    if replanned or set(entries) != set(cache.clusters) or cache.files.changed:
        cache.clusters = entries
        cache.files.changed = False
        _save(workspace, cache)
    return Fleet({name: e.summary for name, e in entries.items()},
                 {name: Path(e.environment_file) for name, e in entries.items()},
                 plans, replanned)


def _save(workspace: Workspace, cache: _Cache) -> None:
    workspace.state_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(cache_path(workspace), pickle.dumps(cache, protocol=pickle.HIGHEST_PROTOCOL))
