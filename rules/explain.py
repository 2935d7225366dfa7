"""Why a render is out of date, in the user's terms: which layer file and key changed.

Each render stores a record of its inputs beside its content (by digest); doit keeps
the digest of the last render of a task. Explaining compares that record with the node now.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .errors import display_path, join_key
from .layering import namespace_layer
from .model import Layer, PlanNode
from .renderers import REGISTRY, renderer_for
from .renderers.unchanged import listings
from .workspace import Workspace

_MAX_LINES = 12


def input_record(node: PlanNode) -> dict[str, Any]:
    renderer = renderer_for(node.definition.type) or REGISTRY["component"]
    record: dict[str, Any] = {
        "renderer": [node.definition.type, renderer.version],
        "definition": node.definition.identity(),
        "inputs": dict(node.inputs),
    }
    if renderer.uses_config:
        record["config"] = {"values": node.config.values, "namespace": node.config.namespace,
                            "injectNamespace": node.config.inject_namespace}
    return record


def input_listings(node: PlanNode, workspace: Workspace
                   ) -> dict[str, tuple[str, dict[str, str]]]:
    """By label, the digest and files of each local input folder of the node, as it is."""
    renderer = renderer_for(node.definition.type) or REGISTRY["component"]
    return listings(node, renderer.input_paths(node.definition, node.physical_dir,
                                               node.checkout), workspace)


Listing = Callable[[str, str], "dict[str, str] | None"]
"""The files of an input folder (by label) with a given digest, when known."""


def explain(previous: dict[str, Any] | None, node: PlanNode,
            listing: Listing = lambda label, digest: None) -> list[str]:
    """Lines saying what differs between the last render's inputs and the current ones."""
    if previous is None:
        return ["no earlier render is recorded (first build, a new component or one that "
                "never rendered, `doit forget`, or a cleaned workspace)"]
    current = input_record(node)
    lines: list[str] = []
    if previous.get("renderer") != current["renderer"]:
        lines.append(f"the renderer changed: {previous.get('renderer')} -> "
                     f"{current['renderer']}")
    old_definition = previous.get("definition", {})
    for field, value in current["definition"].items():
        if old_definition.get(field) != value:
            lines.append(f"{display_path(node.definition.file)}: "
                         f"{node.definition.key or 'top level'}: "
                         f"`{field}` changed from {_short(old_definition.get(field))} to "
                         f"{_short(value)}")
    lines.extend(_input_changes(previous.get("inputs", {}), current["inputs"], listing))
    if "config" in current:
        lines.extend(_config_changes(previous.get("config") or {}, current["config"],
                                     node.layers))
    if not lines:
        lines.append("the inputs are unchanged; the rendered file is missing from the "
                     "workspace")
    if len(lines) > _MAX_LINES:
        lines[_MAX_LINES:] = [f"... and {len(lines) - _MAX_LINES} more changes"]
    return lines


def _input_changes(old: dict[str, str], new: dict[str, str], listing: Listing
                   ) -> list[str]:
    """Folders by content, naming the files that changed when both listings are known; a
    download (`<source>/<chart>@<version>`) whose pin moved is one line, not an added and
    a removed input."""
    def unpinned(label: str) -> str:
        return label.rpartition("@")[0] or label

    moved = {unpinned(label): label for label in old if label not in new}
    lines = []
    for label, digest in new.items():
        if label in old:
            if old[label] != digest:
                lines.append(f"the content of {label} changed"
                             + _file_changes(listing(label, old[label]), listing(label, digest)))
        elif unpinned(label) in moved and "@" in label:
            before = moved.pop(unpinned(label)).rpartition("@")[2]
            lines.append(f"{unpinned(label)} moved from {before} to "
                         f"{label.rpartition('@')[2]} (stacks.lock)")
        else:
            lines.append(f"now reads {label}")
    lines.extend(f"no longer reads {label}" for label in moved.values())
    return lines


_MAX_FILES = 5


def _file_changes(before: dict[str, str] | None, after: dict[str, str] | None) -> str:
    """`: templates/a.yaml changed, b.yaml added` (a name ending in / is a folder)."""
    if before is None or after is None:
        return ""
    changes = [f"{name} {_file_change(before.get(name), after[name])}"
               for name in after if before.get(name) != after[name]]
    changes.extend(f"{name} removed" for name in before if name not in after)
    changes.sort()
    if not changes:
        return ""
    if len(changes) > _MAX_FILES:
        changes[_MAX_FILES:] = [f"and {len(changes) - _MAX_FILES} more"]
    return ": " + ", ".join(changes)


def _file_change(before: str | None, after: str) -> str:
    """A listing's detail is `<executable bit>\0<digest>`."""
    if before is None:
        return "added"
    if before.partition("\0")[2] == after.partition("\0")[2]:
        return "made executable" if after.startswith("1") else "made not executable"
    return "changed"


def _config_changes(old: dict[str, Any], new: dict[str, Any], layers: tuple[Layer, ...]
                    ) -> list[str]:
    lines = []
    if old.get("namespace") != new["namespace"]:
        lines.append(f"namespace changed from {_short(old.get('namespace'))} to "
                     f"{_short(new['namespace'])}" + _namespace_source(layers))
    if old.get("injectNamespace") != new["injectNamespace"]:
        lines.append(f"injectNamespace changed from {_short(old.get('injectNamespace'))} to "
                     f"{_short(new['injectNamespace'])}" + _namespace_source(layers, paired=True))
    for path, before, after in _diff(old.get("values") or {}, new["values"], ()):
        shown = _shown(("config", *path))
        if after is _MISSING:
            lines.append(f"{shown} is no longer set (was {_short(before)})")
        elif before is _MISSING:
            lines.append(f"{shown} is now set to {_short(after)}" + _config_source(layers, path))
        else:
            old_text, new_text = _short_pair(before, after)
            lines.append(f"{shown} changed from {old_text} to {new_text}"
                         + _config_source(layers, path))
    return lines


_MISSING = object()

Key = str | int
"""A key of a mapping, or the index of a list element."""


def _diff(old: Any, new: Any, path: tuple[Key, ...]) -> list[tuple[tuple[Key, ...], Any, Any]]:
    """Changed leaves; a list of unchanged length element by element (so the line shows the
    element that changed), any other list as a whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in sorted(set(old) | set(new)):
            changes.extend(_diff(old.get(key, _MISSING), new.get(key, _MISSING), (*path, key)))
        return changes
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        changes = []
        for index, (old_item, new_item) in enumerate(zip(old, new, strict=True)):
            changes.extend(_diff(old_item, new_item, (*path, index)))
        return changes
    return [] if _same(old, new) else [(path, old, new)]


def _same(old: Any, new: Any) -> bool:
    """Equal as JSON, which is what the render is given: `1` and `true`, or `1` and `1.0`,
    differ there (Python's `==` says they are the same)."""
    if old is _MISSING or new is _MISSING:
        return old is new
    return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)


def _shown(path: tuple[Key, ...]) -> str:
    """`config.a.b[2].c`"""
    return "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path)[1:]


def _config_source(layers: tuple[Layer, ...], path: tuple[Key, ...]) -> str:
    """`, set in <file> (<key path>)`: the layer whose value the merge keeps; for a list,
    every layer whose list is joined into it (spec §3.4)."""
    found = [(layer, layer.data.get("config"), ("config",)) for layer in layers]
    for key in path:
        found = _step(found, key)
    found = [entry for entry in found if entry[1] is not None]
    if not found:
        return ""
    if not isinstance(found[0][1], list):
        found = found[:1]
    places = [f"{layer.file} ({join_key(layer.prefix, _shown(shown))})"
              for layer, _, shown in found]
    if len(places) == 1:
        return f", set in {places[0]}"
    return ", the list joining " + ", ".join(places)


_Found = list[tuple[Layer, Any, tuple[Key, ...]]]


def _step(found: _Found, key: Key) -> _Found:
    """From the layers contributing to a value to those contributing to one of its keys or
    elements: mappings merge key by key, lists join in layer order, the first scalar wins."""
    present = [entry for entry in found if entry[1] is not None]
    if present and not isinstance(present[0][1], dict | list):
        present = present[:1]
    if isinstance(key, int):
        offset = 0
        for layer, value, shown in present:
            if isinstance(value, list):
                if key < offset + len(value):
                    return [(layer, value[key - offset], (*shown, key - offset))]
                offset += len(value)
        return []
    return [(layer, value.get(key), (*shown, key)) for layer, value, shown in present
            if isinstance(value, dict) and value.get(key) is not None]


def _namespace_source(layers: tuple[Layer, ...], *, paired: bool = False) -> str:
    """The namespace and injectNamespace come together from one layer (spec §3.5)."""
    layer = namespace_layer(layers)
    if layer is None:
        return ", as no layer sets a namespace" if paired else ""
    where = f"{layer.file} ({join_key(layer.prefix, 'namespace')})"
    return f", taken with the namespace set in {where}" if paired else f", set in {where}"


def _shown_value(value: Any) -> str:
    """As JSON, in the value's own letters (escapes would be cut mid-way)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _short(value: Any) -> str:
    return _cut(_shown_value(value), 60)


def _short_pair(before: Any, after: Any) -> tuple[str, str]:
    """Both values, cut alike so that where they differ stays in view."""
    old_text, new_text = _shown_value(before), _shown_value(after)
    if max(len(old_text), len(new_text)) <= 60:
        return old_text, new_text
    common = next((index for index, (a, b) in enumerate(zip(old_text, new_text, strict=False))
                   if a != b), min(len(old_text), len(new_text)))
    start = max(0, common - 20)
    lead = "..." if start else ""
    return lead + _cut(old_text[start:], 57), lead + _cut(new_text[start:], 57)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."
