"""The fleet's plan, kept between runs and re-planned only where an input changed.

Each cluster's entry holds a light summary of its plan (node paths, digests, output files)
and what planning it read: file digests (None for a file looked for and absent) and
input-tree digests. A run checks those (re-hashing only files whose inode, size, mtime or
ctime moved) and plans again just the clusters with a changed input. Entries live in one
SQLite file, a row per cluster, so a one-cluster change rewrites one row. A code change of
Stackyard itself drops the whole cache.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import sqlite3
from collections.abc import Collection, Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import xxhash

from . import __version__
from .definitions import environment_files
from .errors import StackyardError, access_problem, warn
from .filestate import FileState
from .model import Environment
from .plan import ClusterPlan, Planner, Watch
from .sources.access import ACCESS_FILE
from .sources.artifacts import Fetch
from .sources.lockfile import LOCK_NAME
from .sources.redact import redact
from .sources.resolver import Pin, frozen, ref_of
from .workspace import Workspace

_FORMAT = 3


class NodeSummary(NamedTuple):
    node_path: str
    digest: str
    output: str
    type: str
    recipe: str
    fetches: tuple[Fetch, ...] = ()
    """With credentials redacted: the cache is a file on disk."""
    hooks: bool = False
    """Rendered again, a node with hooks may store other content under its digest."""


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
            stack=_stack_name(environment, workspace),
            layers=(*environment.layers, "common"),
            digest=plan.digest,
            nodes=tuple(NodeSummary(n.node_path, n.digest, n.output, n.definition.type,
                                    n.recipe,
                                    tuple(f._replace(source=redact(f.source))
                                          for f in n.fetches),
                                    bool(n.definition.hooks))
                        for n in plan.nodes),
        )


def _stack_name(environment: Environment, workspace: Workspace) -> str:
    """The stack folder, or `<source> <path> at <ref>` for a stack in a git repository."""
    remote = environment.remote_stack
    if remote is None:
        return workspace.display(environment.stack_dir)
    return f"{redact(remote.source)} {remote.path or '.'} at {ref_of(remote)}"


@dataclass(frozen=True)
class _Seen:
    """The observed state of one cluster's inputs, to compare with on the next run."""

    files: dict[str, str | None]
    trees: dict[str, str | None]
    pins: dict[Pin, str]
    warnings: tuple[str, ...]


@dataclass
class _Entry:
    environment_file: str
    summary: ClusterSummary
    seen: _Seen


@dataclass
class Fleet:
    """Every cluster's summary, and full plans for those planned in this process."""

    summaries: dict[str, ClusterSummary]
    environment_files: dict[str, Path]
    plans: dict[str, ClusterPlan]
    replanned: tuple[str, ...]
    files: FileState
    """The file-digest memo as this run left it: later planning in the process (renders of
    clusters whose plan came from the cache) stats files instead of hashing them again."""


_ENGINES = (("helm_python", "helm_python_sdk"), ("yaml", "pyyaml"))
"""Libraries (module, distribution) whose version is part of what a plan's digests mean
(renderer versions)."""


def code_fingerprint() -> str:
    """Changes when the code that decides what plans contain changes: Stackyard's own
    modules, and the engine libraries (found without importing them: the Helm SDK must
    not be loaded before doit forks). By content, not by path or mtime: a CI job that
    installs the same Stackyard into a fresh virtualenv keeps its plan cache."""
    package = Path(__file__).parent
    hasher = xxhash.xxh3_128(f"{__version__}:{_FORMAT}".encode())
    for path in sorted(package.rglob("*.py")):
        hasher.update(f"{path.relative_to(package)}\0".encode())
        hasher.update(path.read_bytes())
    for module, distribution in _ENGINES:
        hasher.update(_installed(module, distribution))
    return hasher.hexdigest()


def _installed(module: str, distribution: str) -> bytes:
    """What identifies the installed library: its `.dist-info` folder's name and `RECORD`
    (the digest of every file it installed), or, in another layout, its module file's
    path, size and mtime."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return f"{module}: not installed\n".encode()
    origin = Path(spec.origin)
    prefix = f"{distribution}-"
    found = [folder for folder in origin.parent.parent.glob("*.dist-info")
             if folder.name.lower().startswith(prefix)]
    if len(found) == 1 and (found[0] / "RECORD").is_file():
        return found[0].name.encode() + b"\0" + (found[0] / "RECORD").read_bytes()
    info = origin.stat()
    return f"{origin}:{info.st_size}:{info.st_mtime_ns}\n".encode()


def cache_path(workspace: Workspace) -> Path:
    return workspace.state_dir / "plans.sqlite3"


_TABLES = ("create table if not exists entries (name text primary key, data blob)",
           "create table if not exists layers (path text primary key, digest text, data blob)")


class _Store:
    """Rows of pickled entries; the file-digest memo is one more row. Parsed layer and
    environment files are a second table, read row by row only while re-planning
    (`ParsedFiles`)."""

    def __init__(self, workspace: Workspace, fingerprint: str) -> None:
        workspace.state_dir.mkdir(parents=True, exist_ok=True)
        self.path = cache_path(workspace)
        try:
            self.connection = sqlite3.connect(self.path, timeout=60)
        except sqlite3.OperationalError as err:  # a file of another user (a CI cache)
            raise StackyardError(f"cannot open the plan cache: {err}"
                                 f"{access_problem(self.path)}", file=self.path) from None
        self.fingerprint = fingerprint
        self._parsed: dict[str, tuple[str, bytes]] = {}

    def get(self, path: str, digest: str) -> Any:
        row = self.connection.execute("select data from layers where path = ? and digest = ?",
                                      (path, digest)).fetchone()
        return None if row is None else pickle.loads(row[0])

    def put(self, path: str, digest: str, data: Any) -> None:
        self._parsed[path] = (digest, pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))

    def close(self) -> None:
        self.connection.close()

    def load(self) -> tuple[FileState, dict[str, _Entry]]:
        """The saved memo and entries; no entries when they were made by other code."""
        try:
            with self.connection:
                for table in _TABLES:
                    self.connection.execute(table)
            rows = dict(self.connection.execute("select name, data from entries"))
            files = pickle.loads(rows.pop("\0files")) if "\0files" in rows else FileState()
            if rows.pop("\0fingerprint", None) == self.fingerprint.encode():
                return files, {name: pickle.loads(data) for name, data in rows.items()}
        except sqlite3.OperationalError as err:  # busy past the timeout: not damage
            raise StackyardError(f"cannot read the plan cache: {err}"
                                 f"{access_problem(self.path)}", file=self.path) from None
        except Exception:  # a damaged cache is only a cache: start over, say so
            warn(f"ignoring unreadable plan cache {self.path}")
            self.connection.close()
            self.path.unlink(missing_ok=True)
            self.connection = sqlite3.connect(self.path, timeout=60)
            files = FileState()
        # in one transaction: a build started at the same moment sees old or new tables
        try:
            self.connection.executescript("begin immediate; drop table if exists entries; "
                                          "drop table if exists layers; "
                                          + "; ".join(_TABLES) + "; commit;")
        except sqlite3.OperationalError as err:
            raise StackyardError(f"cannot reset the plan cache: {err}"
                                 f"{access_problem(self.path)}", file=self.path) from None
        files.changed = True
        return files, {}

    def save(self, files: FileState | None, changed: dict[str, _Entry],
             removed: set[str], used: Collection[str] | None = None) -> None:
        """`used`: every file the fleet reads now; parsed files at other paths (deleted,
        or from before the repository moved) are dropped."""
        rows = [(name, pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))
                for name, entry in changed.items()]
        rows.append(("\0fingerprint", self.fingerprint.encode()))
        if files is not None:
            rows.append(("\0files", pickle.dumps(files, protocol=pickle.HIGHEST_PROTOCOL)))
        with self.connection:
            self.connection.executemany("delete from entries where name = ?",
                                        [(name,) for name in removed])
            self.connection.executemany("insert or replace into entries values (?, ?)", rows)
            self.connection.executemany("insert or replace into layers values (?, ?, ?)",
                                        [(path, *row) for path, row in self._parsed.items()])
            if used is not None:
                self.connection.executemany(
                    "delete from layers where path = ?",
                    [row for row in self.connection.execute("select path from layers")
                     if row[0] not in used])
        self._parsed.clear()


def _observe(watch: Watch, planner: Planner) -> _Seen:
    """Unsorted: only lookups use it (sorting 200 paths per cluster cost a shared-stack
    change ~0.1 s)."""
    return _Seen(
        files=planner.file_digests(watch.files),
        trees={os.fspath(p): planner.tree_digest(p) for p in watch.trees},
        pins=dict(watch.pins),
        warnings=tuple(watch.warnings),
    )


class _Validator:
    """Checks observations once per path, however many clusters share the path."""

    def __init__(self, planner: Planner) -> None:
        self.planner = planner
        self._trees: dict[str, str | None] = {}

    def still_valid(self, seen: _Seen) -> bool:
        trees = self._trees
        file_digest = self.planner.file_digest
        for path, digest in seen.files.items():
            if file_digest(path) != digest:
                return False
        for path, digest in seen.trees.items():
            if path not in trees:
                trees[path] = self.planner.tree_digest(Path(path))
            if trees[path] != digest:
                return False
        return all(self.planner.sources.pinned(pin) == value
                   for pin, value in seen.pins.items())


def save_file_memo(workspace: Workspace, files: FileState,
                   summaries: Mapping[str, ClusterSummary]) -> None:
    """The file-digest memo as task creation left it (it checked output files too): the
    next run then knows them by their stat. Saved only when it changed; of `made`, only
    what the fleet's clusters make now is kept."""
    if files.changed:
        _forget_unread(files, summaries.values(), workspace)
    if not files.changed:
        return
    files.made = {name: made for name, made in files.made.items() if name in summaries}
    with closing(_Store(workspace, code_fingerprint())) as store:
        try:
            store.save(files, {}, set())
            files.changed = False
        except sqlite3.OperationalError as err:  # only a memo: the next run hashes again
            warn(f"cannot save the plan cache {workspace.display(store.path)} ({err})")


def _forget_unread(files: FileState, summaries: Iterable[ClusterSummary],
                   workspace: Workspace) -> None:
    """Before the memo is saved: only the files this run looked at and the fleet's output
    files stay (a command that does not run tasks, or a stale cluster, does not look at
    every output file)."""
    from .output import output_files  # output.py imports this module

    files.prune(output_files(summaries, workspace).__contains__)


def access_files_read(workspace: Workspace) -> list[Path]:
    """The `access.yaml` files the kept plans read, those of git-sourced stacks too (in
    the store, where a walk of the repository does not look), for `doit lock`."""
    path = cache_path(workspace)
    if not path.is_file():
        return []
    try:  # read only: a cache of other code is left for the next build to reset
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
            rows = dict(connection.execute("select name, data from entries"))
        if rows.pop("\0fingerprint", None) != code_fingerprint().encode():
            return []
        rows.pop("\0files", None)
        entries = [pickle.loads(data) for data in rows.values()]
    except (sqlite3.Error, pickle.UnpicklingError, AttributeError, EOFError):
        return []
    return sorted({Path(name) for entry in entries for name, digest in entry.seen.files.items()
                   if digest is not None and name.endswith(f"/{ACCESS_FILE}")})


def _drop_unused_pins(planner: Planner, entries: Iterable[_Entry]) -> None:
    """On every build: `stacks.lock` keeps only what some cluster uses (a build knows every
    cluster's pins; a change may have been planned first by `doit info`, which writes no
    lock), so `doit lock` never asks for a branch nothing uses, which may be gone. Not
    under STACKYARD_FROZEN: there the lock must not change."""
    if frozen() or not (planner.workspace.root / LOCK_NAME).is_file():
        return
    lock = planner.sources.lock
    if lock.keep_only({pin for entry in entries for pin in entry.seen.pins}):
        lock.save()


def load_fleet(workspace: Workspace, records_pins: bool = True) -> Fleet:
    """Summaries for every cluster; re-plans only clusters whose inputs changed.
    `records_pins`: whether what planning resolves is written to `stacks.lock`.

    Raises StackyardError for bad input, before anything is saved or written.
    """
    with closing(_Store(workspace, code_fingerprint())) as store:
        files, cached = store.load()
        planner = Planner(workspace, files, parsed=store, records_pins=records_pins)
        validator = _Validator(planner)
        entries: dict[str, _Entry] = {}
        changed: dict[str, _Entry] = {}
        plans: dict[str, ClusterPlan] = {}
        for file in environment_files(workspace.root / "environments"):
            cluster, path = file.stem, os.fspath(file)
            entry = cached.get(cluster)
            if entry is not None and entry.environment_file == path \
                    and validator.still_valid(entry.seen):
                for message in entry.seen.warnings:
                    warn(message)
            else:
                known = {} if entry is None else {
                    n.node_path: (n.recipe, n.digest) for n in entry.summary.nodes}
                plan, watch = planner.plan(planner.environment(file), known)
                plans[cluster] = plan
                entry = _Entry(path, ClusterSummary.of(plan, workspace), _observe(watch, planner))
                changed[cluster] = entry
            entries[cluster] = entry
        removed = set(cached) - set(entries)
        if records_pins:
            _drop_unused_pins(planner, entries.values())
        if files.changed:  # output files are looked at later, by task creation
            _forget_unread(files, (entry.summary for entry in entries.values()), workspace)
        if changed or removed or files.changed:
            try:
                store.save(files if files.changed else None, changed, removed,
                           planner.files_looked_up())
                files.changed = False
            except sqlite3.OperationalError as err:  # a full disk, a lock held too long
                warn(f"cannot save the plan cache {workspace.display(store.path)} ({err}); "
                     "the next run plans these clusters again")
    return Fleet({name: e.summary for name, e in entries.items()},
                 {name: Path(e.environment_file) for name, e in entries.items()},
                 plans, tuple(sorted(plans)), files)
