"""`type: helm`: render a chart in-process with the embedded Helm SDK (spec §5.2).

Charts are loaded once per process (an LRU keyed by the chart's content digest) and
rendered for every cluster. A chart whose `file://` dependencies are not in its `charts/`
folder is built once into the workspace (a copy with those dependencies placed in it).

The SDK is a Go library: loading it starts the Go runtime, which does not survive fork().
doit's parallel runner forks its workers after loading tasks, so the SDK is imported only
when a render runs, never while tasks are planned.
"""

from __future__ import annotations

import fcntl
import glob
import importlib
import importlib.util
import json
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO

from cachetools import LRUCache

from .. import manifests
from ..atomic import fresh_temp_folder
from ..digest import digest_texts
from ..errors import StackyardError, join_key, warn
from ..filestate import FileState
from ..model import ComponentDef, PlanNode
from ..sources import artifacts
from ..sources.cache import store_entry
from ..workspace import Workspace
from ..yamlio import load_file
from .unchanged import check_unchanged

if TYPE_CHECKING:
    import helm_python


ENGINE_GOGC = "400"
_engine: ModuleType | None = None


def engine() -> ModuleType:
    """The Helm SDK, loaded on first use (see the module docstring).

    Go's collector at its default GOGC=100 takes ~25% of a render's CPU on a second core;
    at 400 a serial build is ~20% faster and two workers scale 1.7x instead of 1.4x, for
    a few MB more heap. A GOGC set by the user wins; Go reads it when the library loads.
    """
    global _engine
    if _engine is None:  # set only once the import finished (`-P thread` races here)
        os.environ.setdefault("GOGC", ENGINE_GOGC)
        _engine = importlib.import_module("helm_python")
    return _engine


def chart_dir(definition: ComponentDef, directory: Path, checkout: Path | None = None) -> Path:
    """Where the chart lives (spec §2.3): `checkout` (a git source from the store), else
    vendored `helm_repos/<name>` for git/helm methods."""
    if checkout is not None:
        return checkout
    if definition.method == "git":
        return Path(os.path.normpath(
            directory / "helm_repos" / definition.name / definition.path.lstrip("/")))
    if definition.method == "helm":
        return directory / "helm_repos" / definition.name
    return Path(os.path.normpath(directory / definition.path.lstrip("/")))


def _dependency_fields(chart: Path) -> Iterator[Any]:
    """The `dependencies` field of `requirements.yaml`, then of `Chart.yaml` (None where
    a file or the field is absent)."""
    for name in ("requirements.yaml", "Chart.yaml"):
        file = chart / name
        data = load_file(file) if file.is_file() else None
        yield data.get("dependencies") if isinstance(data, dict) else None


def declared_dependencies(chart: Path) -> list[dict[str, Any]]:
    """Dependencies from `requirements.yaml`, else from `Chart.yaml` (as Helm reads them)."""
    deps = next((field for field in _dependency_fields(chart) if field), [])
    return [d for d in deps if isinstance(d, dict)] if isinstance(deps, list) else []


def local_dependency_dirs(chart: Path) -> list[Path]:
    """Folders of `file://` dependencies, resolved against the chart folder. A fetched
    chart's that it carries in `charts/` (what `helm dependency update && helm package`
    makes of `file://../common`) are left out: Helm reads those from `charts/`."""
    fetched = store_entry(chart) is not None
    return [_file_dependency(chart, dep) for dep in declared_dependencies(chart)
            if _is_file_dependency(dep)
            and not (fetched and _carried(chart, str(dep.get("name") or "")))]


def _is_file_dependency(dependency: dict[str, Any]) -> bool:
    return str(dependency.get("repository") or "").startswith("file://")


def _file_dependency(chart: Path, dependency: dict[str, Any]) -> Path:
    """The folder a `file://` dependency names, resolved against the chart folder. A
    fetched chart's stays in its store entry (D41); a packaged chart's, in the chart."""
    repository = str(dependency["repository"])
    folder = Path(os.path.normpath(chart / repository[len("file://"):]))
    entry = store_entry(chart)
    if entry is not None and not folder.is_relative_to(entry):
        raise StackyardError(f"chart {chart}: dependency {dependency.get('name')!r} "
                             f"({repository}) is outside the fetched chart's source; a "
                             "fetched chart may only read its own folders")
    return folder


def remote_dependencies(chart: Path) -> list[tuple[str, str, str]]:
    """(repository, name, version constraint) of each dependency from an `http(s)://` or
    `oci://` repository, or one named by alias (`@stable`), that the chart does not carry
    in `charts/`."""
    if not (chart / "Chart.yaml").is_file():
        return []
    remote = []
    for dep in declared_dependencies(chart):
        repository, name = str(dep.get("repository") or ""), str(dep.get("name") or "")
        if not repository.startswith(("http://", "https://", "oci://", "@", "alias:")) \
                or not name:
            continue
        if not _carried(chart, name):
            remote.append((repository, name, str(dep.get("version") or "")))
    return remote


def _carried(chart: Path, name: str) -> bool:
    """The chart holds dependency `name` in `charts/`, unpacked or as an archive."""
    return bool(name) and ((chart / "charts" / name / "Chart.yaml").is_file() or any(
        (chart / "charts").glob(f"{glob.escape(name)}-*.tgz")))


def _installed_version(module: str, distribution: str) -> str:
    """A package's version from the name of its `<distribution>-<version>.dist-info` folder
    beside the module, found without importing either: importing importlib.metadata costs
    every re-planning build ~25 ms, and the module (the Helm SDK) must not load before doit
    forks. Falls back to importlib.metadata for other layouts."""
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.origin:
        site = Path(spec.origin).parent.parent
        found = sorted(site.glob(f"{glob.escape(distribution)}-*.dist-info"))
        if len(found) == 1:
            return found[0].name[len(distribution) + 1:-len(".dist-info")]
    from importlib.metadata import version

    return version(distribution)


class HelmRenderer:
    uses_config = True

    @cached_property
    def version(self) -> str:
        """The SDK package pins its Helm version, so its own version names the engine; the
        number before it counts changes of Stackyard's own output, so that renders stored
        before are made again (2: a loaded chart serves only renders that switch the same
        subcharts on; 3: hooks last, unknown hook types dropped; 4: documents trimmed;
        5: a re-serialised document quotes as go-yaml does; 6: `1e3` and other strings
        go-yaml reads as numbers quoted too, and subcharts below `dependencies: []`;
        7: CRLF templates split into their documents; 8: a list or scalar document is an
        error, no longer dropped; 9: a library chart is an error, no longer empty; 10: a
        re-serialised document quotes `0X1F`, `0o644` and the other numbers of Go's strconv)."""
        return f"10+helm-python-sdk-{_installed_version('helm_python', 'helm_python_sdk')}"

    def __init__(self) -> None:
        # A chart is loaded once per (inputs' digest, subchart setting): rendering removes
        # the subcharts that the values switch off from the loaded chart, for good.
        self._charts: LRUCache[tuple[str, str], helm_python.Chart] = LRUCache(maxsize=64)
        self._chart_crds: LRUCache[tuple[str, str], list[dict[str, str]]] = LRUCache(
            maxsize=64)
        self._prepared: dict[str, _Prepared] = {}  # by inputs' digest
        self._valid_names: set[str] = set()  # checked once per process, not per cluster

    def input_paths(self, definition: ComponentDef, directory: Path,
                    checkout: Path | None = None) -> tuple[Path, ...]:
        chart = chart_dir(definition, directory, checkout)
        if not (chart / "Chart.yaml").is_file():
            return (chart,)  # reported by the render, with the folder it looked in
        outside = [d for d in local_dependency_dirs(chart) if not d.is_relative_to(chart)]
        return (chart, *outside)

    def render(self, node: PlanNode, workspace: Workspace) -> bytes:
        definition = node.definition
        where = {"file": definition.file, "key": definition.key}
        key = node.inputs_digest
        if definition.hooks:  # a hook may have changed the chart: know it by what it holds
            chart = chart_dir(definition, node.physical_dir, node.checkout)
            key = digest_texts(key, FileState().tree_digest(
                chart, skip=workspace.own_paths) or "")
        prepared = self._prepared.get(key)
        if prepared is None or (definition.hooks and not prepared.ready.is_dir()):
            # else prepared by an earlier render: same chart, same inputs (a hooked chart's
            # working copy goes with its render)
            prepared = self._prepare(node, workspace, where, key)
        variant = (key, prepared.switches.setting(node.config.values))
        loaded = self._charts.get(variant)
        if loaded is None:  # values that switch other subcharts on or off
            loaded = self._load(node, workspace, where, key, prepared.ready)
            self._charts[variant] = loaded
        namespace = node.config.namespace or "default"
        helm_python = engine()
        try:
            if definition.name not in self._valid_names:
                helm_python.validate_release_name(definition.name)
                self._valid_names.add(definition.name)
            templates = loaded.render(node.config.values, name=definition.name,
                                      namespace=namespace)
            crds = self._crds(variant, loaded)
        except helm_python.HelmError as err:
            raise StackyardError(
                f"helm template failed for chart {self._display(node, workspace)}: "
                f"{' '.join(err.detail.split())}", **where) from err
        try:
            documents, unknown_hooks = manifests.collect(templates, crds)
        except manifests.InvalidManifest as err:
            raise StackyardError(f"chart {self._display(node, workspace)}: {err}",
                                 **where) from err
        for document in unknown_hooks:  # said once per process: the text names no cluster
            warn(f"chart {self._display(node, workspace)}: {document.source}: left out a "
                 f"{document.kind or 'document'} with unknown Helm hook "
                 f"{document.hooks!r}, as helm template does (Helm 3 knows: "
                 f"{', '.join(sorted(manifests.HOOK_TYPES))}); to keep it, remove the "
                 "annotation or give it a known type")
        inject = node.config.namespace if node.config.inject_namespace else None
        return manifests.join(documents, inject or None)

    @staticmethod
    def _display(node: PlanNode, workspace: Workspace) -> str:
        return workspace.display(chart_dir(node.definition, node.physical_dir, node.checkout))

    def _crds(self, variant: tuple[str, str], loaded: helm_python.Chart
              ) -> list[dict[str, str]]:
        """The `crds/` files of the subcharts a variant keeps: read once per variant."""
        if variant not in self._chart_crds:
            self._chart_crds[variant] = loaded.crds
        return self._chart_crds[variant]

    def _prepare(self, node: PlanNode, workspace: Workspace, where: dict[str, Any], key: str
                 ) -> _Prepared:
        """The node's chart, its downloads ensured and its dependencies in place, loaded
        and kept under `key` (its inputs' digest) with what switches its subcharts, so
        that the many renders of one chart skip all of this."""
        definition = node.definition
        chart = chart_dir(definition, node.physical_dir, node.checkout)
        fetched = artifacts.ensure_all(node.fetches, where)
        if not (chart / "Chart.yaml").is_file():
            field = where["key"] if definition.method in ("git", "helm") else join_key(
                where["key"], "path")
            raise StackyardError(f"no Helm chart at {workspace.display(chart)}",
                                 file=where["file"], key=field)
        dependencies = [(f.name, path) for f, path in zip(node.fetches, fetched, strict=True)
                        if not f.own]
        helm_python = engine()
        try:
            listing = helm_python.dependency_list(chart)
            ready = self._with_dependencies(chart, listing, key, workspace, where,
                                            dependencies)
        except helm_python.HelmError as err:
            raise StackyardError(f"cannot load Helm chart {workspace.display(chart)}: "
                                 f"{' '.join(err.detail.split())}", **where) from err
        loaded = self._load(node, workspace, where, key, ready)
        try:
            kind = str(loaded.metadata.get("type") or "application")
            if kind != "application":  # Helm's CheckIfInstallable; as a dependency it renders
                raise StackyardError(
                    f"component {definition.name!r}: chart {workspace.display(chart)} is a "
                    f"{kind} chart (type: {kind} in Chart.yaml); {kind} charts are not "
                    "installable (helm template refuses them); use it as a dependency of an "
                    "application chart", **where)
            _check_vendored(chart, listing, loaded.dependencies, workspace, where)
        except StackyardError:
            loaded.close()
            raise
        prepared = self._prepared[key] = _Prepared(ready, SubchartSwitches.of(loaded, ready))
        self._charts[(key, prepared.switches.setting(node.config.values))] = loaded
        return prepared

    def _load(self, node: PlanNode, workspace: Workspace, where: dict[str, Any], key: str,
              ready: Path) -> helm_python.Chart:
        """Load the chart `ready` (the chart folder, or a copy with its dependencies),
        checking that its inputs are still what the plan digested."""
        definition = node.definition
        chart = chart_dir(definition, node.physical_dir, node.checkout)
        helm_python = engine()
        try:
            loaded = helm_python.Chart.load(ready)
        except helm_python.HelmError as err:
            raise StackyardError(f"cannot load Helm chart {workspace.display(chart)}: "
                                 f"{' '.join(err.detail.split())}", **where) from err
        if not definition.hooks:  # a hook changes the chart on purpose
            try:  # once per loaded chart: every later render of it uses what was loaded
                check_unchanged(node, self.input_paths(definition, node.physical_dir,
                                                       node.checkout), workspace)
            except StackyardError:
                loaded.close()
                if ready != chart:  # a copy built from the changed files is not kept either
                    shutil.rmtree(ready, ignore_errors=True)
                self._prepared.pop(key, None)  # the next render of these inputs prepares again
                raise
        return loaded

    def _with_dependencies(self, chart: Path, listing: list[dict[str, Any]], digest: str,
                           workspace: Workspace, where: dict[str, Any],
                           fetched: list[tuple[str, Path]]) -> Path:
        """The chart itself, or a built copy when declared dependencies are not in charts/
        (`listing`: Helm's dependency list): `file://` ones from their folders, repository
        ones from the store (`fetched`, as (chart name, folder)). What charts/ already holds
        is used as it is, as Helm does, whatever its version."""
        absent = [d for d in listing if d.get("status") == "missing"]
        if not absent:
            return chart
        local = [d for d in absent if _is_file_dependency(d)]
        fetched_names = {name for name, _ in fetched}
        unresolved = [d for d in absent if d not in local and d["name"] not in fetched_names]
        if unresolved:
            names = ", ".join(f"{d['name']} ({d.get('repository') or 'no repository'})"
                              for d in unresolved)
            raise StackyardError(
                f"chart {workspace.display(chart)} needs dependencies that are not in its "
                "charts/ folder and not from an http(s):// or oci:// repository or a "
                f"repository alias: {names}; vendor them (helm dependency build) or give the "
                "repository URL", **where)
        built = workspace.chart_build_dir(digest) / chart.name
        with _copy_record(built) as record:
            recorded = record.read()
            if recorded and FileState().tree_digest(built) == recorded:
                os.utime(built.parent)  # renew its date: housekeeping drops unused copies
                return built
            record.truncate(0)  # killed from here on, the copy has no record: built again
            record.flush()
            _remove_copy(built)
            record.write(_build_copy(chart, built, [
                *(_file_dependency(chart, d) for d in local),
                *(path for _, path in fetched)], workspace, where))
        return built


class _Prepared(NamedTuple):
    ready: Path
    """The chart folder, or a copy with its dependencies in `charts/`."""
    switches: SubchartSwitches


class SubchartSwitches:
    """The values that decide which subcharts a render keeps (a dependency's `condition`
    paths, `tags`), read from a loaded chart.

    Helm's rendering drops each switched-off subchart from the loaded chart object, so a
    loaded chart may serve only renders whose setting of these values is the same. Helm
    looks below a chart only when its `dependencies` are set (an empty list too);
    conditions of a subchart's own dependencies are looked up under its name. The SDK
    shows the declarations of the chart and of its subcharts, not of theirs: a chart whose
    subcharts have subcharts of their own gets one load per distinct values.
    """

    def __init__(self, paths: tuple[tuple[str, ...], ...], every_value: bool) -> None:
        self.paths = paths
        self.every_value = every_value

    @classmethod
    def of(cls, loaded: helm_python.Chart, folder: Path) -> SubchartSwitches:
        """`folder`: the chart `loaded` was loaded from."""
        if not _sets_dependencies(folder):
            return cls((), every_value=False)
        declared = _declared(loaded.metadata)
        paths = _condition_paths(declared, "")
        tagged = any(dep.get("tags") for dep in declared)
        names: dict[str, list[str]] = {}  # a subchart's names in the values: its aliases
        for dep in declared:
            names.setdefault(str(dep.get("name")), []).append(
                str(dep.get("alias") or dep.get("name")))
        for subchart in loaded.dependencies:
            below = _declared(subchart)
            tagged = tagged or any(dep.get("tags") for dep in below)
            for prefix in names.get(str(subchart.get("name")), [str(subchart.get("name"))]):
                paths.extend(_condition_paths(below, prefix))
        if tagged:  # Helm reads the top-level `tags` at every level
            paths.append(("tags",))
        if any("global" in path for path in paths):  # a subchart's globals are the top's
            paths.append(("global",))
        return cls(tuple(paths), every_value=_has_nested_subcharts(folder))

    def setting(self, values: dict[str, Any]) -> str:
        """Equal for two values exactly when they switch the same subcharts on."""
        if self.every_value:
            return json.dumps(values, sort_keys=True)
        if not self.paths:
            return ""
        return json.dumps([_look_up(values, path) for path in self.paths], sort_keys=True)


def _sets_dependencies(chart: Path) -> bool:
    """Whether the chart's `dependencies` are set, an empty list too (the SDK's metadata
    leaves an empty list out, but Helm then still walks the subcharts in `charts/`)."""
    return any(field is not None for field in _dependency_fields(chart))


def _has_nested_subcharts(chart: Path) -> bool:
    """A subchart in `charts/`, a folder or an archive, has subcharts of its own."""
    charts = chart / "charts"
    for entry in sorted(charts.iterdir()) if charts.is_dir() else ():
        if entry.is_dir():
            inner = entry / "charts"
            if inner.is_dir() and any(inner.iterdir()):
                return True
        elif entry.name.endswith(".tgz"):
            try:
                with tarfile.open(entry) as archive:
                    names = archive.getnames()
            except (tarfile.TarError, OSError):  # Helm loaded it: when in doubt, assume so
                return True
            if any(len(parts) > 2 and parts[1] == "charts"
                   for parts in (name.split("/") for name in names)):
                return True
    return False


def _declared(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    return [dep for dep in metadata.get("dependencies") or [] if isinstance(dep, dict)]


def _condition_paths(declared: list[dict[str, Any]], prefix: str
                     ) -> list[tuple[str, ...]]:
    """Each `condition` is a comma-separated list of value paths."""
    head = (prefix,) if prefix else ()
    return [(*head, *part.strip().split(".")) for dep in declared
            for part in str(dep.get("condition") or "").split(",") if part.strip()]


def _look_up(values: Any, path: tuple[str, ...]) -> list[Any]:
    """What the values hold along `path`: how far it leads, and what it finds there (a
    null and a missing key differ: a null removes the chart's default)."""
    for depth, key in enumerate(path):
        if not isinstance(values, dict):
            return [depth, "not a mapping", values]
        if key not in values:
            return [depth, "missing"]
        values = values[key]
    return [len(path), "found", values]


def _check_vendored(chart: Path, listing: list[dict[str, Any]], loaded: list[dict[str, Any]],
                    workspace: Workspace, where: dict[str, Any]) -> None:
    """What `helm template` checks of the subcharts it loaded (`loaded`: their metadata):
    each declared dependency is there by name (CheckDependencies), else an error. Helm
    renders one whose version does not satisfy its constraint: so does this, with a
    warning."""
    versions = {str(sub.get("name")): str(sub.get("version")) for sub in loaded}
    shown = workspace.display(chart)
    for dependency in listing:
        name, wanted = str(dependency["name"]), str(dependency.get("version") or "")
        status = dependency.get("status")
        if name not in versions:
            misnamed = (f"; {_vendored_place(chart, name)} holds another chart"
                        if status == "misnamed" else "")
            raise StackyardError(
                f"chart {shown} declares dependency {name!r}, but no chart in its charts/ "
                f"folder is named {name!r} (helm template fails too: found in Chart.yaml, "
                f"but missing in charts/ directory){misnamed}; run helm dependency update",
                **where)
        if status == "wrong version":
            warn(f"chart {shown}: {_vendored_place(chart, name)} is {versions[name]}, which "
                 f"does not satisfy {wanted} in Chart.yaml; rendered as helm template does; "
                 "run helm dependency update")
        elif status == "invalid version":
            warn(f"chart {shown}: {_vendored_place(chart, name)} is {versions[name]} and "
                 f"Chart.yaml asks for {wanted!r}, which is not a version or constraint Helm "
                 "can compare; rendered as helm template does")


def _vendored_place(chart: Path, name: str) -> str:
    """Where charts/ holds dependency `name`, looked for as Helm does: an archive
    `<name>-*.tgz`, else a folder whose Chart.yaml names it."""
    archives = sorted((chart / "charts").glob(f"{glob.escape(name)}-*.tgz"))
    if archives:
        return f"charts/{archives[0].name}"
    for folder in sorted((chart / "charts").iterdir()):
        file = folder / "Chart.yaml"
        data = load_file(file) if file.is_file() else None
        if isinstance(data, dict) and str(data.get("name")) == name:
            return f"charts/{folder.name}"
    return "charts/"


@contextmanager
def _copy_record(built: Path) -> Iterator[TextIO]:
    """`<copy>.tree` beside the chart copy `built`, locked (`flock`) for the block: the
    tree digest of the copy, written once the copy is whole. A copy is used only when it
    still has that digest: a partial restore of a CI cache, or a build killed while
    copying, must not serve a chart with files missing. The lock keeps two workers from
    building (or removing) one copy at once."""
    built.parent.mkdir(parents=True, exist_ok=True)
    with open(built.parent / f"{built.name}.tree", "a+", encoding="utf-8") as record:
        fcntl.flock(record, fcntl.LOCK_EX)  # released when the file is closed
        record.seek(0)
        yield record


def _remove_copy(copy: Path) -> None:
    """Delete a chart copy, if there is one. A copy of a read-only chart has its read-only
    folders, which a user other than root cannot empty: made writable first."""
    def writable(function: Callable[[str], None], path: str, _: object) -> None:
        os.chmod(os.path.dirname(path), 0o700)
        function(path)

    if copy.exists():
        shutil.rmtree(copy, onerror=writable)


def _build_copy(chart: Path, target: Path, dependencies: list[Path], workspace: Workspace,
                where: dict[str, Any]) -> str:
    """Copy the chart, and its dependencies (chart folders) into charts/, then rename into
    place; returns the copy's tree digest.

    Each goes to `charts/<name>-<version>`, the name `helm dependency build` gives its
    archive: Helm finds a dependency by name and version, never by its folder, so two
    `file://` folders both called `common`, or one chart at two versions, both stay.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = fresh_temp_folder(target.parent, ".build-", abandoned_after=0)  # under lock
    try:
        copy = staging / chart.name
        shutil.copytree(chart, copy, symlinks=False, ignore=_not_chart_content(workspace))
        placed: dict[str, Path] = {}
        for dependency in dependencies:
            place = _vendored_name(dependency, chart, workspace, where)
            earlier = placed.setdefault(place, dependency)
            if earlier == dependency:
                shutil.rmtree(copy / "charts" / place, ignore_errors=True)
                shutil.copytree(dependency, copy / "charts" / place, symlinks=False)
            elif FileState().tree_digest(earlier) != FileState().tree_digest(dependency):
                raise StackyardError(
                    f"chart {workspace.display(chart)} has two different dependencies that "
                    f"are both chart {place} ({workspace.display(earlier)} and "
                    f"{workspace.display(dependency)}); Helm tells dependencies apart only "
                    "by name and version", **where)
        tree = FileState().tree_digest(copy) or ""
        os.replace(copy, target)
        return tree
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _not_chart_content(workspace: Workspace) -> Callable[[str, list[str]], set[str]]:
    """For `copytree`: what the chart's digest leaves out (`.git`, and Stackyard's own
    files when the chart is the repository root: copying `.stackyard/` into itself would
    never end)."""
    own = {os.path.realpath(path) for path in workspace.own_paths}

    def ignored(folder: str, names: list[str]) -> set[str]:
        return {name for name in names if name == ".git"
                or os.path.realpath(os.path.join(folder, name)) in own}
    return ignored


def _vendored_name(dependency: Path, chart: Path, workspace: Workspace,
                   where: dict[str, Any]) -> str:
    """`<name>-<version>` from the dependency's Chart.yaml."""
    file = dependency / "Chart.yaml"
    metadata = load_file(file) if file.is_file() else None
    if not isinstance(metadata, dict) or not metadata.get("name"):
        raise StackyardError(f"file:// dependency {workspace.display(dependency)} of "
                             f"chart {workspace.display(chart)} is not a chart", **where)
    name = f"{metadata['name']}-{metadata.get('version', '')}"
    if Path(name).name != name:  # a downloaded chart may name itself anything
        raise StackyardError(f"dependency {workspace.display(dependency)} of chart "
                             f"{workspace.display(chart)} has an invalid name or version: "
                             f"{name!r}", **where)
    return name


RENDERER = HelmRenderer()
