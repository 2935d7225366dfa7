"""Reading Fabrikate definitions: component files, config layer files, environment files.

Everything returned is validated and normalised, so later stages never re-check shapes.
Errors name the file and the key path. Nothing is memoised here: the planner keeps parses
for one run (a cache keyed by path alone would serve an old parse after an edit).
"""

from __future__ import annotations

import math
import os
import re
import sys
from difflib import get_close_matches
from pathlib import Path
from typing import Any, NamedTuple

from .digest import digest_value
from .errors import StackyardError, display_path, join_key, warn
from .model import CONTAINER, ComponentDef, Environment
from .yamlio import load_config_layer, load_environment_file, load_file

COMPONENT_FILES = ("component.yaml", "component.json")
HOOK_NAMES = ("before-install", "after-install", "before-generate", "after-generate")
_INSTALL_HOOKS = frozenset(HOOK_NAMES[:2])
_STRING_FIELDS = ("name", "type", "generator", "source", "method", "path", "version", "branch")
_COMPONENT_KEYS = {*_STRING_FIELDS, "hooks", "subcomponents", "repositories", "config"}
_METHODS = {"", "git", "helm", "http", "local"}
_CONFIG_KEYS = {"config", "namespace", "injectNamespace", "disabled", "subcomponents"}
_ENVIRONMENT_KEYS = {"stack", "layers", "config"}
CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
RESERVED_CLUSTER_NAMES = frozenset({
    "auto", "clean", "dumpdb", "forget", "help", "ignore", "info", "list", "reset-dep", "run",
    "strace", "tabcompletion", "render", "fetch", "lock",
})
LAYER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"


def _text(value: Any, file: Path, key: str) -> str:
    """A string field. YAML gives these as written; a JSON number or boolean is an error,
    as Fabrikate's JSON decoding made it (`1.10` would otherwise be the text "1.1")."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    hint = " (put it in quotes)" if isinstance(value, int | float) else ""
    raise StackyardError(f"expected a string, got {_kind(value)}{hint}", file=file, key=key)


def _warn_unknown_keys(data: dict[Any, Any], known: set[str], file: Path, key: str = "",
                      otherwise: str = "") -> None:
    """Unknown keys are ignored, as Fabrikate ignores them, but said: a misspelt `layers`
    or `namespace` would otherwise change the output without a word."""
    unknown = sorted(str(name) for name in set(data) - known)
    if not unknown:
        return
    named, unmatched = [], False
    for name in unknown:
        close = get_close_matches(name, known, n=1)
        named.append(f"{name} (did you mean `{close[0]}`?)" if close else name)
        unmatched = unmatched or not close
    note = f" ({otherwise})" if otherwise and unmatched else ""
    warn(f"unknown key(s) {', '.join(named)} ignored{note}", file=file, key=key)


# ---------------------------------------------------------------- component files


def find_component_file(directory: Path) -> Path | None:
    """`component.yaml` wins over `component.json`; `.yml` is not recognised (as Fabrikate)."""
    for name in COMPONENT_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


class MissingComponent(StackyardError):
    """No definition in a component folder: the entry that points there is to blame."""

    def __init__(self, directory: Path) -> None:
        self.exists = directory.is_dir()
        self.yml = (directory / "component.yml").is_file()
        super().__init__(self.describe(display_path(directory)))

    def describe(self, folder: str) -> str:
        if self.exists:
            return (f"component folder {folder} has no component.yaml or component.json"
                    + (" (a component.yml is not read: rename it)" if self.yml else ""))
        return f"component folder {folder} does not exist"


def load_component(directory: Path) -> ComponentDef:
    """The component defined in `directory` (its root entry, with its subcomponents)."""
    file = find_component_file(directory)
    if file is None:
        raise MissingComponent(directory)
    data = load_file(file, as_text=True)
    if data is None:
        raise StackyardError("the component file is empty; expected a mapping", file=file)
    return _component_entry(data, file, "")


def _check_method(method: str, kind: str, file: Path, key: str) -> None:
    """Fabrikate compares `method` case-sensitively (only a static `http` in any case):
    any other spelling is read as `local`, which a warning says (D37)."""
    if method in _METHODS or (kind == "static" and method.lower() == "http"):
        return
    meant = (f"; Fabrikate compares methods case-sensitively: write `{method.lower()}`"
             if method.lower() in _METHODS else "")
    warn(f"unknown method {method!r} is read as `local`, as Fabrikate read it (known: git, "
         f"helm, http, local){meant}", file=file, key=key)


def _component_entry(data: Any, file: Path, key: str) -> ComponentDef:
    if not isinstance(data, dict):
        raise StackyardError(f"expected a mapping, got {_kind(data)}", file=file, key=key or "")
    _warn_unknown_keys(data, _COMPONENT_KEYS, file, key)
    if data.get("config") is not None:
        warn("config in a component file is ignored; put it in config/common.yaml",
             file=file, key=join_key(key, "config"))
    if data.get("repositories"):
        warn("deprecated and ignored", file=file, key=join_key(key, "repositories"))
    fields = {f: _text(data.get(f), file, join_key(key, f)) for f in _STRING_FIELDS}
    kind = fields.pop("generator")
    if kind:
        warn("deprecated alias of `type`; it overrides `type`", file=file,
             key=join_key(key, "generator"))
    else:
        kind = fields["type"]
    fields["type"] = kind or CONTAINER
    _check_method(fields["method"], fields["type"], file, join_key(key, "method"))
    _check_name(fields["name"], file, join_key(key, "name"))
    subs = data.get("subcomponents")
    if subs is None:
        subs = []
    if not isinstance(subs, list):
        raise StackyardError(
            f"expected a list of components, got {_kind(subs)}",
            file=file, key=join_key(key, "subcomponents"),
        )
    sub_key = join_key(key, "subcomponents")
    children = tuple(_component_entry(s, file, join_key(sub_key, i)) for i, s in enumerate(subs))
    _check_unique_names(children, file, sub_key)
    return ComponentDef(
        **fields,
        hooks=_hooks(data.get("hooks"), file, join_key(key, "hooks")),
        subcomponents=children,
        file=file,
        key=key,
    )


_LONGEST_NAME = 255 - len(".yaml")  # file names have at most 255 bytes on Linux and macOS


def _check_name(name: str, file: Path, key: str) -> None:
    """A name becomes an output file or folder name and a config key: one plain path
    segment. `..` or a slash would write outside the cluster's output folder."""
    if not name:
        raise StackyardError("a component needs a name: it names the output file or folder "
                             "and the component's entry in config files", file=file, key=key)
    if name in (".", "..") or any(c in name for c in "/\\\0"):
        raise StackyardError(f"{name!r} cannot be a component name: it is used as a file and "
                             "folder name, so it may not be . or .. nor contain / or \\",
                             file=file, key=key)
    try:
        size = len(os.fsencode(name))
    except UnicodeEncodeError:  # a C or POSIX locale without Python's UTF-8 mode
        raise StackyardError(f"{name!r} cannot be a file name in this process: its file "
                             f"names are {sys.getfilesystemencoding()}; run doit in a UTF-8 "
                             "locale (LANG=C.UTF-8)", file=file, key=key) from None
    if size > _LONGEST_NAME:
        raise StackyardError(f"a component name of {size} bytes is too long: it names the "
                             f"file <name>.yaml, so it may have at most {_LONGEST_NAME} bytes",
                             file=file, key=key)


def _check_unique_names(children: tuple[ComponentDef, ...], file: Path, key: str) -> None:
    seen: dict[str, str] = {}
    for child in children:
        if child.name in seen:
            raise StackyardError(
                f"two subcomponents are named {child.name!r} ({seen[child.name]} and "
                f"{child.key}); names select config and output folders, so they must differ",
                file=file, key=key,
            )
        seen[child.name] = child.key


def _hooks(value: Any, file: Path, key: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise StackyardError(f"expected a mapping of hook name to commands, got {_kind(value)}",
                             file=file, key=key)
    hooks = []
    for name, commands in value.items():
        if name not in HOOK_NAMES:
            warn(f"unknown hook ignored (known: {', '.join(HOOK_NAMES)})", file=file,
                 key=join_key(key, name))
            continue
        if commands is None:
            continue
        if not isinstance(commands, list):
            raise StackyardError(f"expected a list of shell commands, got {_kind(commands)}",
                                 file=file, key=join_key(key, name))
        lines = tuple(_text(c, file, join_key(join_key(key, name), i))
                      for i, c in enumerate(commands))
        if name in _INSTALL_HOOKS:  # not kept: they would stop renders being shared
            if any(lines):
                warn("not run: Stackyard has no install step, sources are fetched while "
                     "planning (D18 in docs/fabrikate-compat.md); what this hook made must be "
                     "in the repository", file=file, key=join_key(key, name))
            continue
        hooks.append((name, tuple(line for line in lines if line)))
    return tuple(sorted(hooks))


# ---------------------------------------------------------------- config files


class LayerFiles(NamedTuple):
    """What `config/` holds: the file read for each layer, and files that are not read
    (`<layer>.json` beside `<layer>.yaml`, `<layer>.yml`), with why, for a warning."""

    files: dict[str, Path]
    ignored: dict[str, list[tuple[Path, str]]]


def config_files(directory: Path) -> LayerFiles:
    """Layer name -> file in `directory/config`; `.yaml` wins over `.json` (as Fabrikate)."""
    try:
        names = os.listdir(directory / "config")
    except (FileNotFoundError, NotADirectoryError):
        return LayerFiles({}, {})
    except OSError as err:  # a loop of links, no permission
        raise StackyardError(f"cannot list the layer files: {err.strerror}",
                             file=directory / "config") from None
    found: dict[str, Path] = {}
    ignored: dict[str, list[tuple[Path, str]]] = {}
    for name in sorted(names):
        if name.endswith(".yml"):
            ignored.setdefault(name[:-4], []).append(
                (directory / "config" / name, "ignored: layer files end in .yaml or .json, "
                                              "as Fabrikate read them"))
    for suffix in (".json", ".yaml"):
        for name in names:
            if name.endswith(suffix):
                layer = name[: -len(suffix)]
                if layer in found:
                    ignored.setdefault(layer, []).append(
                        (found[layer], f"ignored: config/{layer}.yaml is read instead, as "
                                       "Fabrikate read it"))
                found[layer] = directory / "config" / name
    return LayerFiles(found, ignored)


def load_config_file(file: Path) -> dict[str, Any]:
    """A config layer file, normalised (see `normalise_config`)."""
    data = load_config_layer(file)
    return normalise_config({} if data is None else data, file, "")


def normalise_config(data: Any, file: Path | str, key: str) -> dict[str, Any]:
    """Check a component-config mapping and fill defaults.

    Result keys: config (mapping or None), namespace (str), injectNamespace (bool),
    disabled (bool), subcomponents (name -> normalised mapping), and digest: of the three
    keys a node's merged config reads (config, namespace, injectNamespace). Made once, when
    the file is parsed, and kept with the parse: a re-plan tells by these which nodes'
    layers changed, without merging and serialising every node's values again.
    """
    file = Path(file)
    if not isinstance(data, dict):
        raise StackyardError(f"expected a mapping, got {_kind(data)}", file=file, key=key)
    _warn_unknown_keys(data, _CONFIG_KEYS, file, key, "values belong under `config:`")
    values = data.get("config")
    if values is not None and not isinstance(values, dict):
        raise StackyardError(f"expected a mapping of values, got {_kind(values)}",
                             file=file, key=join_key(key, "config"))
    _check_plain(values, file, join_key(key, "config"))
    subs = data.get("subcomponents") or {}
    if not isinstance(subs, dict):
        raise StackyardError(f"expected a mapping of subcomponent name to config, got "
                             f"{_kind(subs)}", file=file, key=join_key(key, "subcomponents"))
    sub_key = join_key(key, "subcomponents")
    namespace = _text(data.get("namespace"), file, join_key(key, "namespace"))
    inject = _flag(data, "injectNamespace", file, key)
    return {
        "config": values,
        "namespace": namespace,
        "injectNamespace": inject,
        "digest": digest_value([values, namespace, inject]),
        "disabled": _flag(data, "disabled", file, key),
        "subcomponents": {
            str(name): normalise_config(sub if sub is not None else {}, file,
                                        join_key(sub_key, name))
            for name, sub in subs.items()
        },
    }


_PLAIN_SCALARS = (str, int, float, bool, type(None))


def _check_plain(value: Any, file: Path, key: str) -> None:
    """Values reach Helm as JSON: a `!!binary` (bytes) or `!!set` value has no JSON form."""
    if isinstance(value, dict):
        for name, item in value.items():
            _check_plain(item, file, join_key(key, str(name)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(item, file, f"{key}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise StackyardError(f"expected a finite number, got {value!r} (Helm values are "
                             "JSON, which has no NaN or infinity)", file=file, key=key)
    elif not isinstance(value, _PLAIN_SCALARS):
        kind = "a !!set" if isinstance(value, set) else (
            "!!binary data" if isinstance(value, bytes) else type(value).__name__)
        raise StackyardError(f"expected a string, number, boolean, null, list or mapping, "
                             f"got {kind} (Helm values are JSON)", file=file, key=key)


def _flag(data: dict[str, Any], name: str, file: Path, key: str) -> bool:
    value = data.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise StackyardError(f"expected true or false, got {_kind(value)}",
                             file=file, key=join_key(key, name))
    return value


# ---------------------------------------------------------------- environment files


def load_environment(file: Path) -> Environment:
    """`environments/<cluster>.yaml`: the cluster is the file name, the stack is relative to it."""
    return environment_from(file, load_environment_file(file))


def environment_from(file: Path, data: Any) -> Environment:
    """An environment from its file's parsed YAML (which a plan cache may have kept)."""
    cluster = file.stem
    if not CLUSTER_NAME.match(cluster):
        raise StackyardError("a cluster name (the file name) must start with an ASCII letter "
                             "or digit and may only use ASCII letters, digits, '.', '_' and "
                             "'-'",
                             file=file)
    if cluster in RESERVED_CLUSTER_NAMES:
        raise StackyardError(f"{cluster!r} is the name of a doit command or of one of "
                             "Stackyard's own tasks (render, fetch, lock), so it cannot name a "
                             "cluster task; rename the file", file=file)
    if not isinstance(data, dict):
        raise StackyardError(f"expected a mapping with `stack` and `layers`, got {_kind(data)}",
                             file=file)
    _warn_unknown_keys(data, _ENVIRONMENT_KEYS, file)
    stack = data.get("stack")
    config = data.get("config")
    config = None if config is None else normalise_config(config, file, "config")
    layers = _layers(data.get("layers"), file)
    if isinstance(stack, dict):
        return Environment(cluster=cluster, file=file, stack_dir=file.parent, layers=layers,
                           config=config, remote_stack=_remote_stack(stack, file))
    if not isinstance(stack, str) or not stack:
        raise StackyardError(f"expected the path of a stack folder, got {_kind(stack)}",
                             file=file, key="stack")
    stack_dir = Path(os.path.normpath(file.parent / stack))
    if stack_dir.is_file():
        raise StackyardError(f"{display_path(stack_dir)} is a file; `stack:` names the stack's "
                             f"folder (here {display_path(stack_dir.parent)})", file=file,
                             key="stack")
    if not stack_dir.is_dir():
        raise StackyardError(f"stack folder {display_path(stack_dir)} does not exist",
                             file=file, key="stack")
    return Environment(cluster=cluster, file=file, stack_dir=stack_dir, layers=layers,
                       config=config)


def _remote_stack(data: dict[str, Any], file: Path) -> ComponentDef:
    """`stack: {source, method: git, path, version|branch}`: a stack in a git repository."""
    names = ("source", "method", "path", "version", "branch")
    _warn_unknown_keys(data, set(names), file, "stack")
    fields = {name: _text(data.get(name), file, f"stack.{name}") for name in names}
    if fields["method"] != "git" or not fields["source"]:
        raise StackyardError("a stack given as a mapping needs `source` and `method: git`",
                             file=file, key="stack")
    return ComponentDef(name="stack", type="component", file=file, key="stack", **fields)


def _layers(value: Any, file: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise StackyardError(f"expected a list of layer names, got {_kind(value)}",
                             file=file, key="layers")
    layers: list[str] = []
    for i, item in enumerate(value):
        key = f"layers[{i}]"
        if not isinstance(item, str):  # `no`, `1.10`: YAML read another type
            raise StackyardError(f"expected a layer name, got {_kind(item)}; put the name in "
                                 "quotes", file=file, key=key)
        if not LAYER_NAME.match(item):
            raise StackyardError(f"expected a layer name, got {_kind(item)}", file=file, key=key)
        if item == "common":
            raise StackyardError("`common` is always applied last; do not list it",
                                 file=file, key=key)
        if item in layers:
            raise StackyardError(f"layer {item!r} is listed twice", file=file, key=key)
        layers.append(item)
    return tuple(layers)


def environment_files(environments_dir: Path) -> list[Path]:
    """Every `<cluster>.yaml` / `.json`; a cluster defined twice is an error. Hidden files
    (an editor's `.#c1.yaml` lock, `.c1.yaml.swp`) are no cluster: a cluster name starts
    with a letter or digit."""
    if not environments_dir.is_dir():
        raise StackyardError("the environments folder does not exist", file=environments_dir)
    files: dict[str, Path] = {}
    for entry in sorted(os.listdir(environments_dir)):
        path = environments_dir / entry
        if entry.startswith("."):
            continue
        if path.suffix not in (".yaml", ".json"):
            if path.suffix.lower() in (".yml", ".yaml", ".json"):
                warn("ignored: environment files end in .yaml or .json", file=path)
            elif path.is_dir():
                warn("ignored: a folder; each cluster is one file directly in environments/",
                     file=path)
            continue
        if not path.is_file():  # else its cluster would be retired: its output deleted
            what = "a folder" if path.is_dir() else "a link to nowhere, or a loop of links"
            raise StackyardError(f"cluster {path.stem!r} cannot be read: this is {what}",
                                 file=path)
        if path.stem in files:
            raise StackyardError(f"cluster {path.stem!r} is defined twice ({files[path.stem].name}"
                                 f" and {entry})", file=environments_dir)
        files[path.stem] = path
    if not files:
        warn("no clusters: add one file per cluster, <cluster>.yaml, with its `stack:`",
             file=environments_dir)
    return [files[name] for name in sorted(files)]
