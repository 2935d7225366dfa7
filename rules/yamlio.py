"""YAML and JSON reading with Fabrikate's dialect (go-yaml v2, YAML 1.1), and YAML writing.

Fabrikate decoded config with go-yaml v2: unquoted y/n/yes/no/on/off are booleans, map keys
are always strings, and timestamps stay strings. Component files decode into string fields,
so `version: 1.20` stays the text "1.20". Both dialects are reproduced here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import Any

import yaml

from .errors import StackyardError, warn

_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BASE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_YAML11_BOOL = re.compile(
    r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"
)
_TRUE_WORDS = {"y", "yes", "true", "on"}


_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"


def _key_text(node: yaml.Node, loader: yaml.SafeLoader) -> str:
    """Map keys are always strings, spelled as written: `on:` is "on", `1:` is "1"."""
    if isinstance(node, yaml.ScalarNode):
        return "" if node.tag == _NULL else str(node.value)
    return str(loader.construct_object(node, deep=True))


class _SaysDuplicateKeys:
    """A key written twice in one mapping: go-yaml (Fabrikate) kept the last silently; the
    loaders keep it too, and note where, for a warning."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)  # type: ignore[call-arg]
        self.duplicate_keys: list[tuple[str, int]] = []

    def note_duplicate_keys(self, node: yaml.MappingNode) -> None:
        seen: set[str] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE:
                if key.value in seen:
                    self.duplicate_keys.append((key.value, key.start_mark.line + 1))
                seen.add(key.value)


class ConfigLoader(_SaysDuplicateKeys, _BASE_LOADER):  # type: ignore[misc, valid-type]
    """SafeLoader with YAML 1.1 booleans (incl. y/n) and no timestamp type."""


# go-yaml v2's scalars: no base-60 numbers, no `=` value tag, floats with or without a dot.
# A plain scalar starting with a sign or digit is read with its underscores removed: as
# Go's strconv.ParseInt(text, 0, 64) (0x, 0o, 0b in either case, 0 for octal), else
# ParseUint, else a float if it has the form below and ParseFloat finds it in range, else
# (go-yaml's own) 0b followed by a signed binary number; one starting with a dot is
# ParseFloat's. Anything else is a string. The patterns match these forms, ranges aside
# (`1e400` and `0x1` with 17 zeros are strings): _go_number decides.
_REPLACED_TAGS = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp",
                  "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:value"}
_GO_INT = re.compile(r"^(?:[-+]_*)?(?:0_*[xX]_*[0-9a-fA-F][0-9a-fA-F_]*|0_*[bB]_*[01][01_]*"
                     r"|0_*[oO]_*[0-7][0-7_]*|0[0-7_]*|[1-9][0-9_]*|0_*b_*[-+]_*[01][01_]*)$")
_DOT_FLOAT = re.compile(r"\.[0-9](?:_?[0-9])*(?:[eE][-+]?[0-9](?:_?[0-9])*)?")
"""Go's ParseFloat of a text starting with a dot: an underscore only between digits."""
_GO_FLOAT = re.compile(rf"^(?:{_DOT_FLOAT.pattern}"
                       r"|(?:[-+]_*\._*[0-9]|(?:[-+]_*)?[0-9][0-9_]*\.?)[0-9_]*"
                       r"(?:[eE]_*[-+]?_*[0-9][0-9_]*)?"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_PLAIN_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)")
_PLAIN_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
"""go-yaml v2's yamlStyleFloat, for the text without underscores."""
_GO_SPECIAL_FLOATS = {
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan)}
_INT64, _UINT64 = range(-2**63, 2**63), range(2**64)


def _go_number(text: str) -> int | float | str:
    """What go-yaml v2 reads a plain scalar matching _GO_INT or _GO_FLOAT as."""
    if text in _GO_SPECIAL_FLOATS:
        return _GO_SPECIAL_FLOATS[text]
    if text.startswith("."):  # ParseFloat of the text as written, underscores and all
        return _finite_or_text(float(text), text) if _DOT_FLOAT.fullmatch(text) else text
    plain = text.replace("_", "")
    match = _PLAIN_INT.fullmatch(plain)
    if match:
        sign, digits = match.groups()
        value = int(digits, 8 if digits[:1] == "0" and digits[1:2].isdigit() else 0)  # 0644
        value = -value if sign == "-" else value
        if value in _INT64 or (not sign and value in _UINT64):
            return value
    if _PLAIN_FLOAT.fullmatch(plain):
        return _finite_or_text(float(plain), text)
    if plain.startswith("0b") and re.fullmatch(r"[-+]?[01]+", plain[2:]) \
            and int(plain[2:], 2) in _INT64:
        return int(plain[2:], 2)
    return text


def _finite_or_text(number: float, text: str) -> float | str:
    """Go's ParseFloat fails out of range (`1e400`), and go-yaml keeps the text."""
    return text if math.isinf(number) else number


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in _BASE_LOADER.yaml_implicit_resolvers.items()
}
_GO_RESOLVERS = (("tag:yaml.org,2002:bool", _YAML11_BOOL, list("yYnNtTfFoO")),
                 ("tag:yaml.org,2002:int", _GO_INT, list("-+0123456789")),
                 ("tag:yaml.org,2002:float", _GO_FLOAT, list("-+0123456789.")))
"""How go-yaml v2 types a plain scalar: what config is read with, and what the dumper
quotes a string for (`1e3` is a number there, which PyYAML's own pattern leaves a
string)."""
for _resolver in _GO_RESOLVERS:
    ConfigLoader.add_implicit_resolver(*_resolver)


def _construct_bool(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> bool:
    return str(loader.construct_scalar(node)).lower() in _TRUE_WORDS


def _construct_number(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | float | str:
    return _go_number(str(loader.construct_scalar(node)))


def _construct_string_keyed_mapping(loader: ConfigLoader, node: yaml.MappingNode) -> dict:
    loader.note_duplicate_keys(node)
    loader.flatten_mapping(node)
    return {
        _key_text(k, loader): loader.construct_object(v, deep=True)
        for k, v in node.value
    }


ConfigLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
ConfigLoader.add_constructor("tag:yaml.org,2002:int", _construct_number)
ConfigLoader.add_constructor("tag:yaml.org,2002:float", _construct_number)
ConfigLoader.add_constructor("tag:yaml.org,2002:map", _construct_string_keyed_mapping)
ConfigLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str
)


def _node_to_text_tree(node: yaml.Node, loader: _TextLoader,
                       inside: frozenset[int] = frozenset()) -> Any:
    """Component files: keep every scalar as the text written (go decodes into strings);
    `<<: *anchor` merges apply, as go-yaml applies them. `inside`: the collections this
    node is in, by id (an alias to one of them would never end)."""
    if isinstance(node, yaml.CollectionNode):
        if id(node) in inside:
            raise yaml.constructor.ConstructorError(
                None, None, "an alias refers to a collection that contains it",
                node.start_mark)
        inside = inside | {id(node)}
    if isinstance(node, yaml.MappingNode):
        loader.note_duplicate_keys(node)
        loader.flatten_mapping(node)
        return {str(_node_to_text_tree(k, loader, inside)): _node_to_text_tree(v, loader, inside)
                for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_node_to_text_tree(v, loader, inside) for v in node.value]
    if node.tag == _NULL:
        return None
    return node.value


def _namespaces_as_written(node: yaml.Node) -> None:
    """`namespace` is a string field of Fabrikate's config, which go-yaml fills with the
    text as written (`namespace: 1.10` is "1.10"): at the top of a config mapping and in
    each subcomponent's. Values under `config:` keep their types."""
    if not isinstance(node, yaml.MappingNode):
        return
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            continue
        if key.value == "namespace":
            _as_written(value)
        elif key.value == "subcomponents" and isinstance(value, yaml.MappingNode):
            for _, child in value.value:
                _namespaces_as_written(child)


def _as_written(node: yaml.Node) -> None:
    """A scalar read as the text written (what go-yaml puts in a string field); null
    stays null."""
    if isinstance(node, yaml.ScalarNode) and node.tag != _NULL:
        node.tag = _STR


class _TextLoader(_SaysDuplicateKeys, _BASE_LOADER):  # type: ignore[misc, valid-type]
    """Resolves only null and `<<`, so component files keep scalars as written."""


_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag in (_NULL, _MERGE)]
    for first, resolvers in _BASE_LOADER.yaml_implicit_resolvers.items()
}


def _yaml_error(path: Path, err: yaml.YAMLError) -> StackyardError:
    mark = getattr(err, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    if mark is not None and _character_at(path, mark.line, mark.column) == "\t":
        problem += " (a tab: YAML indents with spaces)"
    return StackyardError(f"malformed YAML{where}: {problem}", file=path)


def _character_at(path: Path, line: int, column: int) -> str:
    try:
        return path.read_text(encoding="utf-8").splitlines()[line][column]
    except (OSError, UnicodeDecodeError, IndexError):
        return ""


def read_text(path: Path) -> str:
    """UTF-8, with or without the byte-order mark some Windows editors write."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise StackyardError(f"cannot read: {err.strerror}", file=path) from err
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        utf16 = " (it looks like UTF-16)" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise StackyardError(f"not UTF-8 text: byte 0x{raw[err.start]:02x} on line {line} "
                             f"cannot be decoded{utf16}; save the file as UTF-8",
                             file=path) from None


def parse_document(path: Path, text: str, *, as_text: bool = False) -> Any:
    """Parse YAML (or JSON by extension); `as_text` keeps scalars as written (component files)."""
    if as_text and path.suffix != ".json":
        return _parse_yaml(path, _TextLoader(text), _node_to_text_tree, text)
    return _parse_typed(path, text)


def _parse_json(path: Path, text: str) -> Any:
    twice: list[str] = []

    def mapping(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        data = dict(pairs)
        if len(data) < len(pairs):  # a key written twice
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    twice.append(key)
                seen.add(key)
        return data
    try:
        data = json.loads(text, object_pairs_hook=mapping)
    except json.JSONDecodeError as err:
        raise StackyardError(
            f"malformed JSON (line {err.lineno}, column {err.colno}): {err.msg}", file=path
        ) from err
    except RecursionError:
        raise _too_deep(path) from None
    for key in twice:
        warn(f"key {key!r} is written twice in one object; the last one counts, as in "
             "Fabrikate", file=path)
    return data


# Aliases may repeat what an anchor holds, but not blow a few lines up into millions of
# values, which merging and digesting would then walk (an "alias bomb"; go-yaml, and so
# Fabrikate, refuses excessive aliasing too).
_MOST_VALUES_BY_ALIASES = 1_000_000
_MOST_ALIAS_GROWTH = 10


def _values_written_and_expanded(root: yaml.Node) -> tuple[int, int]:
    """How many values the document is written with (an alias of a scalar counts as one
    more), and how many it expands to with every alias replaced by what it refers to (a
    collection inside itself counts once). Each collection is counted once, scalars in
    its loop: a 5 MB file takes ~0.4 s."""
    if not isinstance(root, yaml.CollectionNode):
        return 1, 1
    expanded: dict[int, int] = {id(root): 1}
    written = 0

    def count(node: yaml.CollectionNode) -> int:
        nonlocal written
        children = chain.from_iterable(node.value) if isinstance(node, yaml.MappingNode) \
            else node.value
        total = scalars = 0
        for child in children:
            if child.__class__ is yaml.ScalarNode:
                scalars += 1
            elif id(child) in expanded:
                total += expanded[id(child)]
            else:
                expanded[id(child)] = 1  # until counted: an alias inside it counts once
                expanded[id(child)] = count(child)
                total += expanded[id(child)]
        written += 1 + scalars
        return 1 + scalars + total

    total = count(root)
    return written, total


def _refuse_alias_bomb(path: Path, root: yaml.Node) -> None:
    written, expanded = _values_written_and_expanded(root)
    if expanded > _MOST_VALUES_BY_ALIASES and expanded > _MOST_ALIAS_GROWTH * written:
        raise StackyardError(f"YAML aliases expand {written:,} values into {expanded:,}; "
                             "repeat less through anchors (`&name`, `*name`)", file=path)


def _too_deep(path: Path) -> StackyardError:
    return StackyardError("mappings and lists nested too deeply to read (Python's recursion "
                          "limit; a few hundred levels are read)", file=path)


def _parse_yaml(path: Path, loader: _SaysDuplicateKeys,
                build: Callable[[yaml.Node, Any], Any], text: str) -> Any:
    """The first document `loader` reads, built from its node tree, as go-yaml v2's
    Unmarshal (Fabrikate) reads only that one; warns of duplicate keys and of later
    documents that are not empty."""
    try:
        node = loader.get_node() if loader.check_node() else None  # type: ignore[attr-defined]
        if node is not None and "&" in text:
            _refuse_alias_bomb(path, node)
        data = None if node is None else build(node, loader)
        ignored = None if node is None else _later_document_line(loader)
    except yaml.YAMLError as err:
        raise _yaml_error(path, err) from err
    except RecursionError:
        raise _too_deep(path) from None
    finally:
        loader.dispose()  # type: ignore[attr-defined]
    for key, line in loader.duplicate_keys:
        warn(f"line {line}: key {key!r} is written twice in one mapping; the last one "
             "counts, as in Fabrikate", file=path)
    if ignored is not None:
        warn(f"line {ignored}: a later YAML document (after `---` or `...`) is ignored: "
             "Fabrikate read only a file's first document, and so does Stackyard; move what "
             "it holds into the first one, or delete it", file=path)
    return data


def _later_document_line(loader: Any) -> int | None:
    """Line of the `---` of the first document after the first one that holds anything
    (not only comments), or None. One that go-yaml never read may even be malformed: that
    is said the same way, not an error. Read as events: nothing is built."""
    line = None
    try:
        while not isinstance(event := loader.get_event(), yaml.StreamEndEvent):
            if isinstance(event, yaml.DocumentStartEvent):
                line = event.start_mark.line + 1
            elif not isinstance(event, yaml.DocumentEndEvent) and not (
                    isinstance(event, yaml.ScalarEvent) and event.value == ""
                    and event.implicit[0] and event.tag is None and event.anchor is None):
                return line
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        return line or (mark.line + 1 if mark is not None else 1)
    return None


def _parse_typed(path: Path, text: str,
                 shape: Callable[[yaml.Node], None] | None = None) -> Any:
    """Typed like config, after `shape` marked on the document's nodes what Fabrikate reads
    as text. JSON has its own types, as in Fabrikate."""
    if path.suffix == ".json":
        return _parse_json(path, text)

    def build(node: yaml.Node, loader: ConfigLoader) -> Any:
        if shape is not None:
            shape(node)
        return loader.construct_document(node)
    return _parse_yaml(path, ConfigLoader(text), build, text)


def load_config_layer(path: Path) -> Any:
    """A config layer file (`config/<layer>.yaml`), with namespaces as written."""
    return _parse_typed(path, read_text(path), _namespaces_as_written)


def load_environment_file(path: Path) -> Any:
    """An environment file: its `config:` read like a config layer; a `stack:` mapping
    keeps its scalars as written, as component files do (`version: 1.10` is "1.10")."""
    def shape(node: yaml.Node) -> None:
        for key, value in node.value if isinstance(node, yaml.MappingNode) else ():
            if isinstance(key, yaml.ScalarNode) and key.value == "config":
                _namespaces_as_written(value)
            elif isinstance(key, yaml.ScalarNode) and key.value == "stack" \
                    and isinstance(value, yaml.MappingNode):
                for _, field in value.value:
                    _as_written(field)
    return _parse_typed(path, read_text(path), shape)


def load_file(path: Path, *, as_text: bool = False) -> Any:
    """Read and parse a file. Not memoised here: a cache keyed by path alone would serve an
    old parse after the file changed (the planner keeps parses per run, by content)."""
    return parse_document(path, read_text(path), as_text=as_text)


class _Go11Dumper(_BASE_DUMPER):  # type: ignore[misc, valid-type]
    """Quotes every string a YAML 1.1 reader would take for another type (`"y"`, `"on"`,
    `"1.0"`), in double quotes as go-yaml v2 does."""


for _resolver in _GO_RESOLVERS:
    _Go11Dumper.add_implicit_resolver(*_resolver)


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    """Multi-line strings as literal blocks (`|`), and strings that would read as another
    type in double quotes (PyYAML would pick single ones), as go-yaml writes them; other
    strings that cannot be plain (`'a: b'`) get single quotes from both."""
    if "\n" in text:
        style: str | None = "|"
    elif dumper.resolve(yaml.ScalarNode, text, (True, False)) != _STR:
        style = '"'
    else:
        style = None
    return dumper.represent_scalar(_STR, text, style=style)


_Go11Dumper.add_representer(str, _represent_text)


def dump_yaml(value: Any) -> str:
    """Re-serialise like go-yaml v2: sorted keys, 2-space indent, unindented list items."""
    return yaml.dump(
        value, Dumper=_Go11Dumper, default_flow_style=False, sort_keys=True,
        allow_unicode=True, width=80,
    )
