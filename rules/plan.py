"""Planning: walk each cluster's stack, layer its config, and digest every node.

The plan is pure data (no doit, no rendering): one `PlanNode` per (cluster, component node)
with its merged config and ONE digest over everything that changes its output. The planner
also records what each cluster read (`Watch`), so that a later run can tell, file by file,
whether a cached plan is still valid.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Protocol

from .definitions import (
    COMPONENT_FILES,
    LayerFiles,
    MissingComponent,
    config_files,
    environment_files,
    environment_from,
    load_component,
    load_config_file,
    load_environment,
)
from .digest import digest_texts, digest_value
from .downloads import download_pin, node_downloads, vendored_copy
from .errors import StackyardError, collected_warnings, join_key, locate, warn
from .filestate import FileState
from .layering import child_layers, is_disabled, layers_digest, merge_config
from .model import ComponentDef, Environment, Layer, PlanNode
from .renderers import REGISTRY, Renderer, renderer_for
from .sources.access import ACCESS_FILE
from .sources.artifacts import Fetch
from .sources.cache import cache_root, store_entry
from .sources.redact import redact
from .sources.resolver import Pin, Sources, ref_of
from .sources.store import TreeIds, is_local
from .workspace import Workspace
from .yamlio import load_environment_file

RESERVED_OUTPUTS = frozenset({"kustomization.yaml", "provenance.json"})
"""Names Stackyard writes at the top of a cluster's folder: no component's file or folder."""


@dataclass(frozen=True)
class ClusterPlan:
    environment: Environment
    nodes: tuple[PlanNode, ...]

    @property
    def name(self) -> str:
        return self.environment.cluster

    @property
    def digest(self) -> str:
        """Changes when any output file's name or content would change."""
        return digest_value(sorted((n.output, n.digest) for n in self.nodes))


@dataclass
class Watch:
    """What planning one cluster read: files (present or absent) and whole input trees.

    Only the candidate files a cluster looks for are watched (its own layers'
    `config/<layer>.yaml|json`, `component.yaml|json`), never whole folder listings, so
    adding another cluster's layer file beside them leaves this cluster's plan valid.
    """

    files: set[str] = field(default_factory=set)
    """Paths as strings: a cluster watches ~150 files, 75,000 in a fleet of 500."""
    trees: set[Path] = field(default_factory=set)
    pins: dict[Pin, str] = field(default_factory=dict)
    """Every pin of the lock the plan used (git commits, chart versions, downloads): a moved
    pin re-plans the cluster, a pin added for another cluster does not."""
    warnings: list[str] = field(default_factory=list)


class ParsedFiles(Protocol):
    """Parsed layer and environment files kept between runs, by path and content digest
    (None: not kept)."""

    def get(self, path: str, digest: str) -> Any: ...

    def put(self, path: str, digest: str, data: Any) -> None: ...


@dataclass(frozen=True)
class _Visit:
    definition: ComponentDef
    directory: Path
    logical: str
    node_path: str
    layers: tuple[Layer, ...]
    ancestors: tuple[Path, ...]


class Planner:
    """Plans clusters for one run; what many clusters share (input trees, parsed files,
    folders) is read and digested once per planner."""

    def __init__(self, workspace: Workspace, files: FileState | None = None,
                 parsed: ParsedFiles | None = None, records_pins: bool = True) -> None:
        self.workspace = workspace
        self.records_pins = records_pins
        self.files = files or FileState()
        self.parsed = parsed
        self._file_digests: dict[str, str | None] = {}
        self.root_access_file = os.fspath(workspace.root / ACCESS_FILE)
        self._store_prefix = os.path.join(cache_root(), "")
        self._config_files: dict[Path, LayerFiles] = {}
        self._tree_digests: dict[Path, str | None] = {}
        self._layers: dict[tuple[Path, str],
                           tuple[tuple[str, ...], Layer | None, tuple[str, ...]]] = {}
        self._displayed: dict[Path, str] = {}
        self._inputs: dict[tuple[int, Path], tuple[tuple[Path, ...],
                                                   tuple[tuple[str, str], ...], str]] = {}
        self._downloads: dict[tuple[int, Path], tuple[tuple[Fetch, ...], dict[Pin, str]]] = {}
        self._folders: dict[Path, Path] = {}
        self._children: dict[tuple[Path, str], Path] = {}
        self._components: dict[Path, ComponentDef] = {}
        self._warnings: dict[str, tuple[str, ...]] = {}
        """Watched file -> what reading it warned of (files that did only): every cluster
        that reads the file keeps these with its plan, so a run that re-uses the plan says
        them again."""

    def folder(self, path: Path) -> Path:
        """One Path object per folder for the planner: the many dicts keyed by folder
        then match by identity, without comparing paths part by part."""
        return self._folders.setdefault(path, path)

    def child_folder(self, parent: Path, relative: str, entry: ComponentDef, field: str
                     ) -> Path:
        """`<parent>/<relative>`, normalised, once per planner; within the fetched source
        that holds `parent`, if one does (the `field` of `entry` named it)."""
        key = (parent, relative)
        if key not in self._children:
            child = self.folder(Path(os.path.normpath(parent / relative)))
            self.confine((child,), parent, entry.file, join_key(entry.key, field))
            self._children[key] = child
        return self._children[key]

    def layer(self, directory: Path, name: str
              ) -> tuple[tuple[str, ...], Layer | None, tuple[str, ...]]:
        """The files `config/<name>.yaml|json` that may exist, the layer if one does, and
        warnings of files for the layer that are not read.

        Shared by every cluster that uses the folder and the layer name.
        """
        key = (directory, name)
        if key not in self._layers:
            config = f"{directory}/config"
            listed = self._listed(directory)
            ignored = tuple((os.fspath(path), locate(why, file=path))
                            for path, why in listed.ignored.get(name, ()))
            # a file not read is watched too: when it goes, so does its warning
            candidates = (f"{config}/{name}.yaml", f"{config}/{name}.json",
                          *(path for path, _ in ignored if path.endswith(".yml")))
            file = listed.files.get(name)
            layer = None
            if file is not None:
                layer = Layer(self.workspace.display(file), "", self._parse_layer(file))
            self._layers[key] = (candidates, layer, tuple(why for _, why in ignored))
        return self._layers[key]

    def component(self, directory: Path) -> ComponentDef:
        """The folder's definition, parsed once per planner. Its candidate files are
        digested first: a file edited while planning then leaves a recorded digest older
        than the parse, so the next run plans again, never the other way round."""
        if directory not in self._components:
            candidates = _component_candidates(directory)[:len(COMPONENT_FILES)]
            for candidate in candidates:
                self.file_digest(candidate)
            with collected_warnings() as said:
                self._components[directory] = load_component(directory)
            if said:
                self._warnings[candidates[0]] = tuple(said)
        return self._components[directory]

    def config_files(self, directory: Path) -> dict[str, Path]:
        """Layer name -> the file read for it."""
        return self._listed(directory).files

    def _listed(self, directory: Path) -> LayerFiles:
        """`config_files`, listed once per planner: a stack shared by 500 clusters has
        500 layer files in one folder."""
        if directory not in self._config_files:
            self._config_files[directory] = config_files(directory)
        return self._config_files[directory]

    def file_digest(self, path: Path | str) -> str | None:
        """A file's content digest, looked up once per planner however many clusters
        watch it."""
        name = os.fspath(path)
        known = self._file_digests
        return known[name] if name in known else self._look_up(name)

    def files_looked_up(self) -> Collection[str]:
        """Every file this planner took the digest of: all that the fleet's plans read."""
        return self._file_digests.keys()

    def file_digests(self, names: Iterable[str]) -> dict[str, str | None]:
        """`file_digest` of each: one call for the ~150 files a cluster watches."""
        known = self._file_digests
        return {name: known[name] if name in known else self._look_up(name)
                for name in names}

    def _look_up(self, name: str) -> str | None:
        """A digest not memoised yet. A file of the store that is not there is not
        remembered as missing: checking a cached plan may look before planning fetches
        the checkout it is in (audit 12: its `access.yaml` then went unread, and its
        token unsent)."""
        digest = self.files.file_digest(name)
        if digest is not None or not name.startswith(self._store_prefix):
            self._file_digests[name] = digest
        return digest

    def environment(self, file: Path) -> Environment:
        """`environments/<cluster>.yaml`, its YAML kept in `parsed` like layer files."""
        with collected_warnings() as said:
            environment = environment_from(file, self._parsed(file, load_environment_file))
        name = os.fspath(file)
        if said:
            self._warnings[name] = tuple(dict.fromkeys((*self._warnings.get(name, ()), *said)))
        return environment

    def _parse_layer(self, file: Path) -> dict[str, Any]:
        return self._parsed(file, load_config_file)

    def _parsed(self, file: Path, parse: Callable[[Path], Any]) -> Any:
        """`parse(file)`, from `parsed` when the file's content is unchanged: a change to
        a shared stack re-plans every cluster, but re-parses only the changed file. What
        the parse warned of is kept with it."""
        name = os.fspath(file)
        digest = self.file_digest(file) if self.parsed is not None else None
        kept = self.parsed.get(name, digest) if self.parsed is not None and digest else None
        if kept is None:
            with collected_warnings() as said:
                kept = (parse(file), tuple(said))
            if self.parsed is not None and digest:
                self.parsed.put(name, digest, kept)
        data, said = kept
        if said:
            self._warnings[name] = said
        return data

    def warnings_of(self, watch: Watch) -> list[str]:
        """What reading the files a cluster watches warned of (few files warn: only
        those are kept, so the loop is short)."""
        return [message for name, said in sorted(self._warnings.items())
                if name in watch.files for message in said]

    @cached_property
    def sources(self) -> Sources:
        """Git sources and their lock, read only by plans that use one."""
        return Sources(self.workspace.root, records_pins=self.records_pins)

    def plan(self, environment: Environment,
             known: Mapping[str, tuple[str, str]] | None = None) -> tuple[ClusterPlan, Watch]:
        """`known`: node path -> (recipe, digest) from the cluster's last accepted plan. A
        node with the same recipe takes that digest without merging its config: the same
        layers merged without error then and gave that digest."""
        watch = Watch(files={os.fspath(environment.file)})
        plan = _ClusterWalk(self, environment, watch, known or {}).run()
        for message in self.warnings_of(watch):
            if message not in watch.warnings:
                watch.warnings.append(message)
                warn(message)
        return plan, watch

    def inputs(self, renderer: Renderer, definition: ComponentDef, directory: Path,
               checkout: Path | None, fetches: tuple[Fetch, ...]
               ) -> tuple[tuple[Path, ...], tuple[tuple[str, str], ...], str]:
        """A node's local input folders, the digests of those and of its downloads, and
        one digest of all: once per planner.

        A download is digested by its pinned sha256 (the store entry may not exist yet).
        """
        key = (id(definition), directory)  # definitions are shared, memoised objects
        if key not in self._inputs:
            downloaded = {fetch.path for fetch in fetches}
            paths = tuple(p for p in renderer.input_paths(definition, directory, checkout)
                          if p not in downloaded)
            self.confine(paths, checkout or directory, definition.file,
                         join_key(definition.key, "path"))
            trees = (*((self._label(p), self.tree_digest(p) or "missing") for p in paths),
                     *((fetch.label, fetch.digest) for fetch in fetches))
            self._inputs[key] = (paths, trees, digest_value([digest for _, digest in trees]))
        return self._inputs[key]

    def downloads(self, definition: ComponentDef, directory: Path, checkout: Path | None
                  ) -> tuple[tuple[Fetch, ...], dict[Pin, str]]:
        """`node_downloads`, once per planner per (definition, folder)."""
        key = (id(definition), directory)
        if key not in self._downloads:
            self._downloads[key] = node_downloads(self.sources, definition, directory, checkout)
        return self._downloads[key]

    def confine(self, paths: Iterable[Path], fetched: Path, file: Path | None, key: str
                ) -> None:
        """What a fetched stack or chart reads stays in its own store entry (D41): another
        team's definitions must not put the build machine's own folders into the output."""
        entry = store_entry(fetched)
        for path in paths if entry is not None else ():
            if not path.is_relative_to(entry):
                raise StackyardError(
                    f"{self.display(path)} is outside the fetched source {self._label(entry)}; "
                    "a fetched stack may only read its own folders", file=file, key=key)

    def confine_source(self, entry: ComponentDef, referrer: Path) -> None:
        """A stack fetched over the network may not name a git repository of the build
        machine (`file://`, a path): D41, for what a fetched stack fetches."""
        entry_root = store_entry(referrer)
        fetched_from = self.sources.checkouts.get(entry_root, ("",))[0] if entry_root else ""
        if fetched_from and not is_local(fetched_from) and is_local(entry.source):
            raise StackyardError(
                f"{entry.source!r} is a repository on this machine, named by a stack fetched "
                f"from {fetched_from}; such a stack may only fetch over the network",
                file=entry.file, key=join_key(entry.key, "source"))

    def _label(self, path: Path) -> str:
        """How a render's record of inputs names a folder (`doit info` shows it): a
        folder of a stored git checkout by its source, path and commit, which a moved pin
        changes (`<source>:<path> moved from <commit> to <commit>`); its place in the
        store means nothing to a user. Any other folder by its path."""
        if "sources" in self.__dict__:  # only plans that use git sources have checkouts
            for root, (source, commit) in self.sources.checkouts.items():
                if path.is_relative_to(root):
                    inner = path.relative_to(root).as_posix()
                    return f"{source}:{'' if inner == '.' else inner}@{commit[:12]}"
        return self.display(path)

    def display(self, path: Path) -> str:
        if path not in self._displayed:
            self._displayed[path] = self.workspace.display(path)
        return self._displayed[path]

    @cached_property
    def tree_ids(self) -> TreeIds:
        return TreeIds()

    def tree_digest(self, path: Path) -> str | None:
        """`git:<tree id>` for a folder of a stored git checkout, looked up in its commit's
        sidecar (nothing hashed, no git run; a commit changing only other paths leaves it
        as it was), else the digest of the folder's files; None when it does not exist."""
        if path not in self._tree_digests:
            tree = self.tree_ids.of(path)
            self._tree_digests[path] = f"git:{tree}" if tree else self.files.tree_digest(
                path, skip=self.workspace.own_paths)
        return self._tree_digests[path]


def plan_fleet(workspace: Workspace) -> dict[str, ClusterPlan]:
    """Every cluster in `environments/`, by name, planned from scratch."""
    planner = Planner(workspace)
    plans = {}
    for file in environment_files(workspace.root / "environments"):
        environment = load_environment(file)
        plans[environment.cluster] = planner.plan(environment)[0]
    return plans


def plan_cluster(environment: Environment, workspace: Workspace) -> ClusterPlan:
    return Planner(workspace).plan(environment)[0]


class _ClusterWalk:
    """One cluster's breadth-first walk of its stack (Fabrikate's order)."""

    def __init__(self, planner: Planner, environment: Environment, watch: Watch,
                 known: Mapping[str, tuple[str, str]]) -> None:
        self.planner = planner
        self.environment = environment
        self.workspace = planner.workspace
        self.watch = watch
        self.known = known

    def warn(self, message: str) -> None:
        self.watch.warnings.append(message)
        warn(message)

    def run(self) -> ClusterPlan:
        environment = self.environment
        # read by `AccessTokens` when a plan uses sources: tokens for any, grants (D42)
        self.watch.files.add(self.planner.root_access_file)
        directory = self.planner.folder(environment.stack_dir)
        if environment.remote_stack is not None:
            directory = self._git(environment.remote_stack, environment.file.parent)
        stack_dir = directory
        root = self._load(directory, environment.file, "stack")
        own = self._own_layers(directory)
        if root.method == "git" and not root.inline:
            # a root that points at a remote stack (spec §2.5)
            directory = self._git_component(directory, root)
            root = self._load(directory, root.file, join_key(root.key, "path"))
            own = own + self._own_layers(directory)
        inherited: tuple[Layer, ...] = ()
        if environment.config is not None:
            inherited = (Layer(self.workspace.display(environment.file), "config",
                               environment.config),)
        queue = deque([_Visit(root, directory, "", root.name, inherited + own,
                              (directory,))])
        nodes: list[PlanNode] = []
        layer_names = set(self.planner.config_files(stack_dir)) | set(
            self.planner.config_files(directory))
        while queue:
            visit = queue.popleft()
            nodes.append(self._plan_node(visit))
            self._warn_unknown_subcomponent_config(visit)
            for entry in visit.definition.subcomponents:
                inherited = tuple(child_layers(visit.layers, entry.name))
                if is_disabled(inherited):
                    continue
                child = self._child_visit(visit, entry, inherited)
                layer_names.update(self.planner.config_files(child.directory))
                queue.append(child)
        for layer in environment.layers:
            if layer not in layer_names:
                self.warn(locate(f"layer {layer!r} has no config file in any folder of this "
                                 "stack (a typo?)", file=environment.file))
        _check_outputs(nodes, environment)
        return ClusterPlan(environment, tuple(nodes))

    def _load(self, directory: Path, referrer: Path, key: str) -> ComponentDef:
        """A component folder; both candidate definition files and its `access.yaml`
        (tokens for the sources below it) are watched. A folder with no definition is
        reported at the `referrer` file's `key` that points there."""
        candidates = _component_candidates(directory)
        self.watch.files.update(candidates)
        access_file = candidates[-1]
        if self.planner.file_digest(access_file) is not None:
            self.planner.sources.access.register(Path(access_file))
        try:
            return self.planner.component(directory)
        except MissingComponent as err:
            raise StackyardError(err.describe(self.workspace.display(directory)),
                                 file=referrer, key=key) from None

    def _own_layers(self, directory: Path) -> tuple[Layer, ...]:
        layers = []
        for name in (*self.environment.layers, "common"):
            candidates, layer, ignored = self.planner.layer(directory, name)
            self.watch.files.update(candidates)
            for message in ignored:
                self.warn(message)
            if layer is not None:
                layers.append(layer)
        return tuple(layers)

    def _git_component(self, parent: Path, entry: ComponentDef) -> Path:
        """`<parent>/components/<name>/<path>` when vendored (Fabrikate's `fab install`
        layout), else the entry's `source`/`path` fetched into the store."""
        vendored = self.planner.child_folder(parent, f"components/{entry.name}", entry, "name")
        if self._vendored(vendored, _git_pin(entry)):
            return self.planner.child_folder(vendored, entry.path.lstrip("/"), entry, "path")
        return self._git(entry, parent)

    def _vendored(self, folder: Path, pin: Pin) -> bool:
        """Whether a `fab install` copy is at `folder`. When it is not, the folder is
        watched: a copy added later wins from the next build on (one that goes away is
        seen through the files read from it). While it is, the `pin` of the source it
        stands for is kept as it is: a copy left on one machine must not drop from
        `stacks.lock` the pin that CI, without the copy, uses."""
        if folder.is_dir():
            pinned = self.planner.sources.pinned(pin)
            if pinned is not None:
                self.watch.pins[pin] = pinned
            return True
        self.watch.trees.add(folder)
        return False

    def _git(self, entry: ComponentDef, referrer: Path) -> Path:
        """The entry's `source`/`path` from the store, at the commit the lock pins;
        `referrer` is the folder of the definition that names it."""
        sources = self.planner.sources
        self.planner.confine_source(entry, referrer)
        directory = self.planner.folder(sources.directory(entry))
        pin = _git_pin(entry)
        self.watch.pins[pin] = sources.pinned(pin) or ""
        return directory

    def _downloads(self, definition: ComponentDef, directory: Path, checkout: Path | None
                   ) -> tuple[Fetch, ...]:
        """The node's downloads, with the pins they used recorded in the watch."""
        vendored = vendored_copy(definition, directory)
        if vendored is not None:
            self._vendored(vendored, download_pin(definition))
        fetches, pins = self.planner.downloads(definition, directory, checkout)
        self.watch.pins.update(pins)
        return fetches

    def _child_visit(self, parent: _Visit, entry: ComponentDef, inherited: tuple[Layer, ...]
                     ) -> _Visit:
        node_path = f"{parent.node_path}/{entry.name}"
        if entry.inline:
            return _Visit(entry, parent.directory, parent.logical, node_path, inherited,
                          parent.ancestors)
        if entry.method == "git":
            directory = self._git_component(parent.directory, entry)
        else:
            directory = self.planner.child_folder(
                parent.directory, f"{entry.source or '.'}/{entry.path.lstrip('/')}", entry,
                "source" if entry.source else "path")
        if directory in parent.ancestors:
            raise StackyardError(
                f"subcomponent {entry.name!r} points at {self.workspace.display(directory)}, "
                "which is one of its own ancestors (a cycle)", file=entry.file, key=entry.key)
        source = "source" if entry.source and entry.method != "git" else "path"
        definition = self._load(directory, entry.file, join_key(entry.key, source))
        return _Visit(definition, directory, f"{parent.logical}{entry.name}/", node_path,
                      inherited + self._own_layers(directory), (*parent.ancestors, directory))

    def _plan_node(self, visit: _Visit) -> PlanNode:
        definition = visit.definition
        renderer = self._renderer(definition)
        checkout = None
        if definition.type == "helm" and definition.method == "git" \
                and not self._vendored(visit.directory / "helm_repos" / definition.name,
                                       _git_pin(definition)):
            checkout = self._git(definition, visit.directory)
        fetches = self._downloads(definition, visit.directory, checkout)
        if fetches and fetches[0].own:
            checkout = fetches[0].path
        paths, trees, inputs = self.planner.inputs(renderer, definition, visit.directory,
                                                   checkout, fetches)
        self.watch.trees.update(paths)
        recipe = digest_texts(renderer.version, definition.identity_digest, inputs,
                              layers_digest(visit.layers))  # the identity has the type
        merged = None
        recipe_then, digest = self.known.get(visit.node_path, ("", ""))
        if recipe != recipe_then:  # merged now: a layer conflict is a planning error
            merged = merge_config(visit.layers)
            payload: dict[str, object] = {
                "renderer": [definition.type, renderer.version],
                "definition": definition.identity(),
                "inputs": inputs,
            }
            if renderer.uses_config:
                payload["config"] = [merged.values, merged.namespace, merged.inject_namespace]
            if definition.hooks:  # what a hook makes is not known by its inputs: not shared
                payload["hooks run for"] = self.environment.cluster
            digest = digest_value(payload)
        return PlanNode(cluster=self.environment.cluster, node_path=visit.node_path,
                        definition=definition, physical_dir=visit.directory,
                        logical_dir=visit.logical, inputs=trees, inputs_digest=inputs,
                        recipe=recipe, digest=digest, checkout=checkout, fetches=fetches,
                        layers=visit.layers, merged=merged)

    def _renderer(self, definition: ComponentDef) -> Renderer:
        renderer = renderer_for(definition.type)
        if renderer is None:
            self.warn(locate(f"unknown type {definition.type!r} renders an empty manifest "
                             f"(known: {', '.join(sorted(REGISTRY))})",
                             file=definition.file, key=join_key(definition.key, "type")))
            return REGISTRY["component"]
        return renderer

    def _warn_unknown_subcomponent_config(self, visit: _Visit) -> None:
        known = {entry.name for entry in visit.definition.subcomponents}
        for layer in visit.layers:
            for name in layer.data["subcomponents"]:
                if name not in known:
                    key = join_key(join_key(layer.prefix, "subcomponents"), name)
                    self.warn(locate(f"{visit.node_path!r} has no subcomponent named "
                                     f"{name!r}; this config is unused", file=layer.file,
                                     key=key))


def _git_pin(entry: ComponentDef) -> Pin:
    return ("git", redact(entry.source), ref_of(entry))


@cache
def _component_candidates(directory: Path) -> tuple[str, ...]:
    """`component.yaml`, `component.json`, then `access.yaml`."""
    return tuple(f"{directory}/{name}" for name in (*COMPONENT_FILES, ACCESS_FILE))


def _check_outputs(nodes: list[PlanNode], environment: Environment) -> None:
    """Fabrikate let two nodes overwrite one file; here that is an error."""
    owners: dict[str, PlanNode] = {}
    for node in nodes:
        if node.output.partition("/")[0] in RESERVED_OUTPUTS:
            raise StackyardError(f"component {node.node_path!r} would write {node.output}, "
                                 "which Stackyard writes itself; rename the component",
                                 file=node.definition.file, key=node.definition.key or "name")
        other = owners.get(node.output)
        if other is not None:
            raise StackyardError(
                f"components {other.node_path!r} and {node.node_path!r} would both write "
                f"generated/{environment.cluster}/{node.output}; rename one of them",
                file=node.definition.file, key=node.definition.key or "name")
        owners[node.output] = node
    folders: dict[str, PlanNode] = {}  # every folder an output is in
    for output, node in owners.items():
        folder = output.rpartition("/")[0]  # one C call (posixpath.dirname is three)
        while folder:
            folders[folder] = node
            folder = folder.rpartition("/")[0]
    for output, node in owners.items():
        if output in folders:  # one writes a file where the other needs a folder
            raise StackyardError(
                f"component {node.node_path!r} would write generated/{environment.cluster}/"
                f"{output}, which component {folders[output].node_path!r} needs as a folder; "
                "rename one of them", file=node.definition.file,
                key=node.definition.key or "name")
