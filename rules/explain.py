"""Why a render is out of date, in the user's terms: which layer file and key changed.

Each render stores a record of its inputs beside its content (by digest); doit keeps
the digest of the last render of a task. Explaining compares that record with the node now.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import display_path, join_key
from .model import Layer, PlanNode
from .renderers import REGISTRY, renderer_for

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


def explain(previous: dict[str, Any] | None, node: PlanNode) -> list[str]:
    """Lines saying what differs between the last render's inputs and the current ones."""
    if previous is None:
        return ["no earlier render is recorded (first build, `doit forget`, or a cleaned "
                "workspace)"]
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
                         f"`{field}` changed from {old_definition.get(field)!r} to {value!r}")
    lines.extend(_input_changes(previous.get("inputs", {}), current["inputs"]))
    if "config" in current:
        lines.extend(_config_changes(previous.get("config") or {}, current["config"],
                                     node.layers))
    if not lines:
        lines.append("the inputs are unchanged; the rendered file is missing from the "
                     "workspace")
    if len(lines) > _MAX_LINES:
        lines[_MAX_LINES:] = [f"... and {len(lines) - _MAX_LINES} more changes"]
    return lines


def _input_changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Folders by content; a download (`<source>/<chart>@<version>`) whose pin moved is one
    line, not an added and a removed input."""
    def unpinned(label: str) -> str:
        return label.rpartition("@")[0] or label

    moved = {unpinned(label): label for label in old if label not in new}
    lines = []
    for label, digest in new.items():
        if label in old:
            if old[label] != digest:
                lines.append(f"the content of {label} changed")
        elif unpinned(label) in moved and "@" in label:
            before = moved.pop(unpinned(label)).rpartition("@")[2]
            lines.append(f"{unpinned(label)} moved from {before} to "
                         f"{label.rpartition('@')[2]} (stacks.lock)")
        else:
            lines.append(f"now reads {label}")
    lines.extend(f"no longer reads {label}" for label in moved.values())
    return lines


def _config_changes(old: dict[str, Any], new: dict[str, Any], layers: tuple[Layer, ...]
                    ) -> list[str]:
    lines = []
    for key in ("namespace", "injectNamespace"):
        if old.get(key) != new[key]:
            lines.append(f"{key} changed from {old.get(key)!r} to {new[key]!r}"
                         + _provenance(layers, key, ()))
    for path, before, after in _diff(old.get("values") or {}, new["values"], ()):
        shown = ".".join(("config", *path))
        if after is _MISSING:
            lines.append(f"{shown} is no longer set (was {_short(before)})")
        else:
            change = ("is now set to" if before is _MISSING
                      else f"changed from {_short(before)} to")
            lines.append(f"{shown} {change} {_short(after)}"
                         + _provenance(layers, "config", path))
    return lines


_MISSING = object()


def _diff(old: Any, new: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in sorted(set(old) | set(new)):
            changes.extend(_diff(old.get(key, _MISSING), new.get(key, _MISSING), (*path, key)))
        return changes
    return [] if _same(old, new) else [(path, old, new)]


def _same(old: Any, new: Any) -> bool:
    """Equal as JSON, which is what the render is given: `1` and `true`, or `1` and `1.0`,
    differ there (Python's `==` says they are the same)."""
    if old is _MISSING or new is _MISSING:
        return old is new
    return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)


def _provenance(layers: tuple[Layer, ...], top: str, path: tuple[str, ...]) -> str:
    """`, set in <file> (<key path>)`: the highest layer that provides the value."""
    for layer in layers:
        value: Any = layer.data.get(top)
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value not in (None, "") and not (top == "injectNamespace" and value is False):
            return f", set in {layer.file} ({join_key(layer.prefix, '.'.join((top, *path)))})"
    return ""


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."
