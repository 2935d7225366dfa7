"""Fabrikate's config layering (spec §3.3-3.7), with errors that name both files.

A node's layers, highest priority first: every ancestor layer's `subcomponents.<name>` entry
(top-down: the environment's inline config, then the root's files in layer order, then
`common`, then the next ancestor's), then the node's own `config/<layer>` files, then its
own `config/common`. Folding them gives the node's values; see docs/config-layering.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .digest import digest_texts
from .errors import StackyardError, join_key
from .model import Layer, MergedConfig


class _KindConflict(Exception):
    def __init__(self, path: tuple[str, ...]) -> None:
        super().__init__(path)
        self.path = path


def kind_name(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a scalar"


def merge_values(high: Any, low: Any, path: tuple[str, ...] = ()) -> Any:
    """Merge a lower-priority value under a higher one.

    Maps merge key by key, lists concatenate (higher's items first), the first non-null
    scalar wins, and a map or list above a value of another kind is an error.
    """
    if high is None:
        return low
    if low is None:
        return high
    if isinstance(high, dict):
        if not isinstance(low, dict):
            raise _KindConflict(path)
        merged = dict(high)
        for key, low_value in low.items():
            merged[key] = (
                merge_values(high[key], low_value, (*path, key)) if key in high else low_value
            )
        return merged
    if isinstance(high, list):
        if not isinstance(low, list):
            raise _KindConflict(path)
        return high + low
    return high


def child_layers(layers: Sequence[Layer], name: str) -> list[Layer]:
    """What a subcomponent inherits: each layer's `subcomponents.<name>` entry, in order."""
    return [
        Layer(layer.file, join_key(join_key(layer.prefix, "subcomponents"), name),
              layer.data["subcomponents"][name])
        for layer in layers
        if name in layer.data["subcomponents"]
    ]


def is_disabled(inherited: Sequence[Layer]) -> bool:
    """The highest layer that mentions a subcomponent decides whether it is disabled."""
    return bool(inherited) and inherited[0].data["disabled"]


def layers_digest(layers: Sequence[Layer]) -> str:
    """Of the layers' own digests in order: what `merge_config` makes of them, and whether
    it fails, is decided by these (each covers the config, namespace and injectNamespace it
    reads)."""
    return digest_texts(*(layer.data["digest"] for layer in layers))


def merge_config(layers: Sequence[Layer]) -> MergedConfig:
    """Fold a node's layers (highest first) into its values and namespace settings."""
    values: Any = None
    for index, layer in enumerate(layers):
        try:
            values = merge_values(values, layer.data["config"])
        except _KindConflict as conflict:
            raise _conflict_error(layers[:index], layer, conflict.path) from None
    source = namespace_layer(layers)
    if source is None:
        return MergedConfig(values=values or {}, namespace="", inject_namespace=False)
    return MergedConfig(values=values or {}, namespace=source.data["namespace"],
                        inject_namespace=source.data["injectNamespace"])


def namespace_layer(layers: Sequence[Layer]) -> Layer | None:
    """The highest layer that sets a namespace: namespace and injectNamespace travel as a
    pair from it (spec §3.5)."""
    for layer in layers:
        if layer.data["namespace"]:
            return layer
    return None


def _value_at(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _conflict_error(higher: Sequence[Layer], lower: Layer, path: tuple[str, ...]
                    ) -> StackyardError:
    low_value = _value_at(lower.data["config"], path)
    key = ".".join(("config", *path))
    for layer in higher:
        high_value = _value_at(layer.data["config"], path)
        if isinstance(high_value, dict | list) and kind_name(high_value) != kind_name(low_value):
            return StackyardError(
                f"is {kind_name(low_value)} here but {kind_name(high_value)} in the "
                f"higher-priority layer {layer.file} ({join_key(layer.prefix, key)}); "
                "a layer may not change a key's kind",
                file=lower.file, key=join_key(lower.prefix, key),
            )
    return StackyardError(f"is {kind_name(low_value)} here but a higher layer has another kind",
                          file=lower.file, key=join_key(lower.prefix, key))
