"""doit tasks from the fleet: `render:<cluster>:<node path>` and one `<cluster>` each, and
one `fetch:<chart or URL>` per download the renders need, however many use it.

Up-to-dateness is one digest per task. When doit is about to run tasks, those already up
to date are left out of the task list altogether (doit pays ~0.1 ms per task it is handed),
unless they were named on the command line; `doit list/info/forget` see every task.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed
from doit.task import Task

from .definitions import load_environment
from .errors import StackyardError
from .explain import explain, input_listings, input_record
from .filestate import FileState
from .hooks import run_hooks, working_copy
from .lock_task import LOCK_TASK
from .model import PlanNode
from .output import (
    assemble,
    cluster_dir,
    held_render,
    output_current,
    provenance_head,
    read_provenance,
    retire,
    retired_clusters,
)
from .plan import Planner
from .plan_cache import ClusterSummary, Fleet, NodeSummary
from .renderers import REGISTRY, renderer_for
from .runner import STORED
from .sources import artifacts
from .sources.artifacts import Fetch
from .sources.redact import was_redacted
from .sources.store import SourceError
from .workspace import Workspace

_CHECK_SIGNATURE = inspect.Signature([
    inspect.Parameter("task", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    inspect.Parameter("values", inspect.Parameter.POSITIONAL_OR_KEYWORD),
])


class Call:
    """A doit python-action with its arguments bound. Its signature is empty, so doit has
    nothing to inspect or bind per task (for a plain function it runs inspect.signature
    and bind_partial on every execution: ~0.1 ms, a second per 10,000 tasks)."""

    __signature__ = inspect.Signature()

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self.function = function
        self.args = args

    def __call__(self) -> Any:
        return self.function(*self.args)

    def __str__(self) -> str:
        return f"<{self.function.__name__}>"  # what `doit info` shows as the action


class CleanCall(Call):
    """`doit clean` prints "<task> - executing 'Python: <str(action) from its second
    character>'": here, what it removes instead of a function's name."""

    def __str__(self) -> str:
        cluster, workspace = self.args
        folder = workspace.display(cluster_dir(cluster, workspace))
        return f" remove what Stackyard wrote in {folder}/"


class RenderCheck:
    """Up to date when doit saved this digest and the rendered file is in the workspace.

    Printed by `doit info` when false: then it says which inputs changed.
    """

    __signature__ = _CHECK_SIGNATURE  # spares doit an inspect.signature() per task

    def __init__(self, digest: str, registry: PlanRegistry, cluster: str,
                 node_path: str) -> None:
        self.digest = digest
        self.where = (registry, cluster, node_path)
        self.previous: str | None = None

    def __call__(self, task: object, values: dict[str, Any]) -> bool:
        self.previous = values.get("digest")
        registry = self.where[0]
        return values.get("digest") == self.digest and registry.workspace.renders.has(
            self.digest)

    def __str__(self) -> str:
        registry, cluster, node_path = self.where
        try:
            node = registry.node(cluster, node_path)
        except StackyardError as err:
            return f"cannot plan {cluster}: {err}"
        baseline, since = self.previous, ""
        if baseline is None:  # doit drops a task's record when it fails or is forgotten
            baseline = self._written_digest(cluster, node)
            since = (f" (doit has no record of its last run: it failed, was ignored or "
                     f"forgotten; compared with generated/{cluster}/{node.output})")
        store = registry.workspace.renders
        record = store.inputs(baseline) if baseline else None
        present = input_listings(node, registry.workspace) if record else {}

        def listing(label: str, digest: str) -> dict[str, str] | None:
            now = present.get(label)
            return now[1] if now is not None and now[0] == digest else store.listing(digest)

        lines = explain(None if record is None else json.loads(record), node, listing)
        return (f"the render is out of date{since if record else ''}:\n"
                + "\n".join(f"        {line}" for line in lines))

    def _written_digest(self, cluster: str, node: PlanNode) -> str | None:
        """The digest of the render in the output folder, as its `provenance.json` says."""
        try:
            written = read_provenance(cluster_dir(cluster, self.where[0].workspace))
        except StackyardError:
            return None
        entry = written.get("files", {}).get(node.output)
        return entry.get("digest") if isinstance(entry, dict) else None


_USER_FIELDS = frozenset({"environment", "stack", "layers"})
"""Fields of `provenance.json` that the environment file sets (the generator's version
and the cluster's digest change only with what the build writes)."""


class ClusterCheck:
    """Up to date when doit saved this digest and the output folder holds it."""

    __signature__ = _CHECK_SIGNATURE

    def __init__(self, summary: ClusterSummary, workspace: Workspace, files: FileState
                 ) -> None:
        self.digest = summary.digest
        self.summary = summary
        self.workspace = workspace
        self.files = files
        self.folder = cluster_dir(summary.name, workspace)

    def __str__(self) -> str:
        try:
            recorded = read_provenance(self.folder)
        except StackyardError as err:
            return str(err)
        written = recorded.get("files", {})
        stale = [n.output for n in self.summary.nodes
                 if held_render(self.folder / n.output, n, self.workspace, self.files) is None]
        gone = sorted(set(written) - {n.output for n in self.summary.nodes})
        moved = [f"{field} {json.dumps(recorded.get(field))} -> {json.dumps(now)}"
                 for field, now in provenance_head(self.summary).items()
                 if recorded and field in _USER_FIELDS and recorded.get(field) != now]
        parts = [f"to write: {', '.join(stale)}" if stale else "",
                 f"to remove: {', '.join(gone)}" if gone else "",
                 f"provenance.json to update: {'; '.join(moved)}" if moved else ""]
        detail = "; ".join(p for p in parts if p) or "doit has no record of the last write"
        return f"generated/{self.summary.name}/ is out of date ({detail})"

    def __call__(self, task: object, values: dict[str, Any]) -> bool:
        return values.get("digest") == self.digest and output_current(
            self.summary, self.workspace, self.files)


class PlanRegistry:
    """Full plans by cluster: those made while loading tasks, others planned on demand.

    Tasks carry only (cluster, node path); a render looks its node up here, so loading
    10,000 up-to-date tasks never touches their configs.
    """

    def __init__(self, workspace: Workspace, fleet: Fleet) -> None:
        self.workspace = workspace
        self.plans = dict(fleet.plans)
        self.environment_files = fleet.environment_files
        self.files = fleet.files
        self._planner: Planner | None = None

    def node(self, cluster: str, node_path: str) -> PlanNode:
        plan = self.plans.get(cluster)
        if plan is None:
            if self._planner is None:  # one per process: stacks are shared by clusters
                self._planner = Planner(self.workspace, self.files)
            environment = load_environment(self.environment_files[cluster])
            plan, _ = self._planner.plan(environment)
            self.plans[cluster] = plan
        return next(n for n in plan.nodes if n.node_path == node_path)


def render_node(registry: PlanRegistry, cluster: str, node_path: str, digest: str,
                hooks: bool) -> dict[str, Any] | TaskFailed:
    """Render into the workspace, unless an identical render is already there (then the
    node is not even planned again: a fleet whose clusters share most renders, or a
    workspace that lost doit's records, re-plans nothing). A node planned again here (its
    cluster's plan came from the cache) must still have the digest the task was made
    for: the cluster's output task looks the render up by that digest."""
    try:
        if not hooks and registry.workspace.renders.has(digest):
            return {"digest": digest, "reused": True}
        node = registry.node(cluster, node_path)
        if node.digest != digest:
            raise StackyardError(f"the inputs of {cluster} changed while doit was running "
                                 "(the plan made at its start no longer holds); run doit "
                                 "again")
        workspace = registry.workspace
        definition = node.definition
        with working_copy(node, workspace.temp_dir) as hooked:
            run_hooks(definition, "before-generate", hooked.physical_dir)
            content = (renderer_for(definition.type) or REGISTRY["component"]).render(
                hooked, workspace)
            run_hooks(definition, "after-generate", hooked.physical_dir)
        store = workspace.renders
        store.put(node.digest, content, json.dumps(input_record(node), sort_keys=True))
        # a hook may change the folders it runs in: their listing would not be the inputs'
        if not definition.hooks and node.inputs_digest not in store.listed:
            store.put_listings(node.inputs_digest, dict(input_listings(node, workspace).values()))
    except StackyardError as err:
        return TaskFailed(f"{cluster}: {node_path}: {err}")
    except OSError as err:  # shutil.Error (a chart copy) has neither name nor strerror
        where = f"{registry.workspace.display(Path(err.filename))}: " if err.filename else ""
        reason = err.strerror or " ".join(str(err).split())[:500]
        return TaskFailed(f"{cluster}: {node_path}: {where}{reason}")
    return {"digest": node.digest, "reused": False}  # the report counts reused renders


def assemble_cluster(summary: ClusterSummary, workspace: Workspace, files: FileState
                     ) -> dict[str, Any] | TaskFailed:
    try:
        return assemble(summary, workspace, files)
    except OSError as err:  # a rename's error names its target second
        path = err.filename2 or err.filename or cluster_dir(summary.name, workspace)
        where = workspace.display(Path(path))
        reason = ("a file is in the way of this folder"
                  if isinstance(err, (FileExistsError, NotADirectoryError)) else err.strerror)
        return TaskFailed(f"{summary.name}: cannot write {where}: {reason}")
    except StackyardError as err:  # the render store: a full disk, a lock held too long
        return TaskFailed(f"{summary.name}: {err}")


def clean_cluster(cluster: str, workspace: Workspace) -> None:
    """`doit clean`: doit only prints what a clean action returns and exits 0, so a
    failure ends the command, with its message and a non-zero exit."""
    failure = retire_cluster(cluster, workspace)
    if failure is not None:
        raise SystemExit(f"ERROR: {failure.message}")


def retire_cluster(cluster: str, workspace: Workspace) -> TaskFailed | None:
    try:
        retire(cluster, workspace)
    except OSError as err:
        return TaskFailed(f"{cluster}: cannot remove {err.filename}: {err.strerror}")
    except StackyardError as err:  # an unreadable provenance.json
        return TaskFailed(f"{cluster}: {err}")
    return None


def fetch_entry(fetch: Fetch, registry: PlanRegistry, cluster: str, node_path: str
                ) -> TaskFailed | None:
    """Download into the store. A summary's source has its credentials redacted: then
    the URL as written comes from the node's plan."""
    try:
        if was_redacted(fetch.source):
            planned = registry.node(cluster, node_path).fetches
            fetch = next(f for f in planned if f.path == fetch.path)
        artifacts.ensure(fetch)
    except (SourceError, StackyardError) as err:
        return TaskFailed(f"fetch {fetch.label}: {err}")
    return None


class FetchCheck:
    """Up to date when the store holds the entry: then nothing touches the network."""

    __signature__ = _CHECK_SIGNATURE

    def __init__(self, fetch: Fetch) -> None:
        self.path = fetch.path

    def __call__(self, task: object, values: dict[str, Any]) -> bool:
        return self.path.exists()

    def __str__(self) -> str:
        return f"the store has no {self.path} yet"


def fetch_task(fetch: Fetch, registry: PlanRegistry, cluster: str, node_path: str) -> Task:
    """Named by the download, so one task serves every cluster that reads it."""
    action = Call(fetch_entry, fetch, registry, cluster, node_path)
    return Task(fetch_task_name(fetch), [action], uptodate=[FetchCheck(fetch)],
                doc=f"download {fetch.label} into the store", subtask_of="fetch", verbosity=2)


def fetch_task_name(fetch: Fetch) -> str:
    return f"fetch:{fetch.label}"


def render_task_name(cluster: str, node: NodeSummary) -> str:
    return f"render:{cluster}:{node.node_path}"


def every_task_name(fleet: Fleet) -> list[str]:
    """Every task the fleet has, pruned or not: what a mistyped name may have meant."""
    names = ["render", "fetch", LOCK_TASK]
    for cluster, summary in fleet.summaries.items():
        names.append(cluster)
        names.extend(render_task_name(cluster, node) for node in summary.nodes)
    return names


class Staleness:
    """Decides, before doit sees a task, whether it can be left out of this run.

    A cluster is current when doit has a record of it and of each of its renders, and its
    output folder holds exactly what `assemble` writes (`output_current`).
    A render of a stale cluster is current when doit's record of it has the render's
    digest (what doit's own check compares: after a revert, an older record would make
    `doit info` say "run" for a task never handed to doit, and a render with hooks would
    not run) and its render is in the workspace. `doit forget` removes records, so
    forgotten tasks run again.
    """

    def __init__(self, workspace: Workspace, files: FileState) -> None:
        self.workspace = workspace
        self.files = files
        self.recorded = _recorded_tasks(workspace.doit_db)
        self._digests: dict[str, dict[str, str]] = {}
        self._state: sqlite3.Connection | None = None

    def cluster_current(self, summary: ClusterSummary) -> bool:
        if summary.name not in self.recorded:
            return False
        if any(render_task_name(summary.name, n) not in self.recorded for n in summary.nodes):
            return False
        return output_current(summary, self.workspace, self.files)

    def render_current(self, cluster: str, node: NodeSummary) -> bool:
        if cluster not in self._digests:  # read for stale clusters only
            self._digests[cluster] = self._recorded_digests(cluster)
        return (self._digests[cluster].get(render_task_name(cluster, node)) == node.digest
                and node.digest in self.workspace.renders.digests())

    def _recorded_digests(self, cluster: str) -> dict[str, str]:
        """Render task id -> the `digest` value doit saved for it, for one cluster's
        renders: a range of the primary key (all 10,500 rows of a fleet took ~50 ms), the
        value read out of the JSON by SQLite, on one connection for the run."""
        if self._state is None:
            if not self.workspace.doit_db.is_file():
                return {}
            self._state = sqlite3.connect(f"file:{self.workspace.doit_db}?mode=ro", uri=True)
        prefix = f"render:{cluster}:"
        try:
            return dict(self._state.execute(
                "select task_id, json_extract(task_data, '$.\"_values_:\".digest') from doit "
                "where task_id >= ? and task_id < ?", (prefix, prefix[:-1] + ";")))
        except sqlite3.DatabaseError:
            return {}


def _recorded_tasks(database: Path) -> frozenset[str]:
    """Task ids in doit's sqlite3 state (read directly: one query, no JSON decoding)."""
    if not database.is_file():
        return frozenset()
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return frozenset(row[0] for row in connection.execute("select task_id from doit"))
    except sqlite3.DatabaseError:
        return frozenset()
    finally:
        connection.close()


def check_patterns(selected: tuple[str, ...], names: list[str], *, exact: str = "",
                   known: Callable[[], list[str]] | None = None) -> None:
    """A wildcard on the command line that names none of the tasks handed to doit is a
    typo: doit would run nothing and exit 0. (Pruning keeps every task a pattern names.)
    `exact`: the command, when it takes only task names, no patterns (`doit info` looked
    a pattern up with a traceback). `known`: every task name, for a suggestion when a name
    is none of `names`."""
    handed = set(names)
    for pattern in selected:
        if "*" in pattern:  # doit's only wildcard
            if exact:
                raise StackyardError(f"{pattern!r}: `doit {exact}` takes exact task names, "
                                     "not patterns (`doit list --all` lists them)")
            if not fnmatch.filter(names, pattern):
                raise StackyardError(f"no task matches {pattern!r} (`doit list --all` lists "
                                     "them)")
        elif pattern not in handed and (exact or known is not None):
            candidates = known() if known else names
            close = [name for name in candidates if name.lower() == pattern.lower()][:1] or \
                difflib.get_close_matches(pattern, candidates, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise StackyardError(f"{pattern!r} is not a task{hint} (`doit list --all` lists "
                                 "them)")


def fleet_tasks(fleet: Fleet, workspace: Workspace, *, prune: bool,
                selected: tuple[str, ...] = ()) -> Iterator[Task]:
    """doit tasks; with `prune`, only stale tasks and those named on the command line.

    Tasks come in cluster order, each cluster's renders then its output task, and the
    `render` group last: doit runs them in this order, so each cluster is written as soon
    as its renders are done (a cancelled build keeps whole clusters). Task objects are
    built directly: doit's dict form costs ~20 us more per task.
    """
    registry = PlanRegistry(workspace, fleet)
    staleness = Staleness(workspace, fleet.files) if prune else None
    every_render: list[str] = []
    fetches: dict[str, Fetch] = {}

    named = {pattern for pattern in selected if "*" not in pattern}  # doit's only wildcard
    patterns = [pattern for pattern in selected if "*" in pattern]

    def chosen(name: str) -> bool:
        """Named on the command line: a set lookup, as a CI job may name 2,000 clusters."""
        return name in named or any(fnmatch.fnmatchcase(name, p) for p in patterns)

    stored = workspace.renders.digests
    for summary in fleet.summaries.values():
        cluster = summary.name
        current = staleness is not None and staleness.cluster_current(summary)
        render_names = []
        for node in summary.nodes:
            name = render_task_name(cluster, node)
            if staleness is not None and not chosen(name) and (
                    current or staleness.render_current(cluster, node)):
                continue
            render_names.append(name)
            # Pruning kept it, so RenderCheck would say "run" too (no record, or its render
            # is not stored): `False` spares doit a state query and a call per task. Named
            # tasks and the commands that do not prune get the real check.
            stale = staleness is not None and not chosen(name)
            waits_for = []  # fetch tasks (pruned: only those whose entry is missing)
            for fetch in node.fetches:
                fetch_name = fetch_task_name(fetch)
                if fetch_name not in fetches and (staleness is None or not fetch.path.exists()):
                    fetches[fetch_name] = fetch
                    yield fetch_task(fetch, registry, cluster, node.node_path)
                if fetch_name in fetches:
                    waits_for.append(fetch_name)
            yield Task(
                name, [Call(render_node, registry, cluster, node.node_path, node.digest,
                            node.hooks)],
                task_dep=waits_for,
                uptodate=[False] if stale else [
                    RenderCheck(node.digest, registry, cluster, node.node_path)],
                doc=f"render {node.type} {node.node_path!r} for {cluster}",
                subtask_of="render", verbosity=2,
                meta={STORED: True} if not node.hooks and node.digest in stored() else None,
            )
        every_render.extend(render_names)
        if current and not render_names and not chosen(cluster):
            continue
        yield Task(
            cluster, [Call(assemble_cluster, summary, workspace, fleet.files)],
            task_dep=render_names, uptodate=[ClusterCheck(summary, workspace, fleet.files)],
            clean=[CleanCall(clean_cluster, cluster, workspace)],
            doc=f"write generated/{cluster}/ ({len(summary.nodes)} "
                f"component{'' if len(summary.nodes) == 1 else 's'}, "
                f"stack {summary.stack})",
            verbosity=2,
        )
    every_fetch = chosen("fetch")  # `doit fetch`: fill the store for the whole fleet
    for summary in fleet.summaries.values():  # fetch tasks named on the command line
        for node in summary.nodes:
            for fetch in node.fetches:
                fetch_name = fetch_task_name(fetch)
                if selected and fetch_name not in fetches and (every_fetch
                                                               or chosen(fetch_name)):
                    fetches[fetch_name] = fetch
                    yield fetch_task(fetch, registry, summary.name, node.node_path)
    for cluster in retired_clusters(workspace, set(fleet.summaries)):
        yield Task(f"retire:{cluster}", [(retire_cluster, (cluster, workspace))],
                   doc=f"remove generated/{cluster}/: environments/ no longer has {cluster}",
                   verbosity=2)
    # A group with no subtask left has nothing to run: up to date, so that doit records
    # nothing (a no-op then writes no state, and works on a read-only checkout). With
    # subtasks it says "run", as doit's groups do (`doit info render`).
    yield Task("render", None, task_dep=every_render, has_subtask=True,
               uptodate=[] if every_render else [True],
               doc="render every (cluster, component) pair into the workspace")
    if fetches or every_fetch:
        yield Task("fetch", None, task_dep=list(fetches), has_subtask=True,
                   uptodate=[] if fetches else [True],
                   doc="download every chart and manifest the renders read into the store")
