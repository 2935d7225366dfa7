"""Which downloads a planned node reads: its own chart or manifest when it comes from a
chart repository, an OCI registry or http, or the repository dependencies of a local or
git chart. Each is pinned through the lock (resolved and added when new)."""

from __future__ import annotations

from pathlib import Path

from .errors import StackyardError, join_key
from .model import ComponentDef
from .renderers.helm import chart_dir, remote_dependencies
from .sources.artifacts import Fetch
from .sources.redact import redact
from .sources.resolver import Pin, Sources
from .sources.store import SourceError


def node_downloads(sources: Sources, definition: ComponentDef, directory: Path,
                   checkout: Path | None) -> tuple[tuple[Fetch, ...], dict[Pin, str]]:
    """The node's downloads and the pins they used (for the plan cache's watch).

    A `method: helm` chart or `method: http` manifest that is not vendored is the node's
    own content (`Fetch.own`); a local or git chart may need repository dependencies that
    it does not carry in `charts/`.
    """
    own = _own_download(definition, directory)
    if own is not None:
        requests = [own]
    elif definition.type == "helm":
        chart = chart_dir(definition, directory, checkout)
        requests = [("chart", *dependency) for dependency in remote_dependencies(chart)]
    else:
        requests = []
    fetches, pins = [], {}
    for request in requests:
        try:
            fetches.append(sources.fetch(request)._replace(own=request is own))
        except SourceError as err:
            raise StackyardError(f"{definition.name!r}: {err}", file=definition.file,
                                 key=definition.key) from None
        pin = (request[0], redact(request[1]), *request[2:])
        pins[pin] = sources.pinned(pin) or ""
    return tuple(fetches), pins


def vendored_copy(definition: ComponentDef, directory: Path) -> Path | None:
    """Where `fab install` would have put the node's download (`helm_repos/<name>` for a
    `method: helm` chart, `components/<name>` for a `method: http` manifest); a copy there
    is read instead of downloading."""
    if definition.type == "helm" and definition.method == "helm":
        return directory / "helm_repos" / definition.name
    if definition.type == "static" and definition.method.lower() == "http":
        return directory / "components" / definition.name
    return None


def download_pin(definition: ComponentDef) -> Pin:
    """The pin of the node's own download, as plans record it (see `resolver.Pin`)."""
    if definition.type == "helm":
        return ("chart", redact(definition.source), definition.path, definition.version)
    return ("file", redact(definition.source))


def _own_download(definition: ComponentDef, directory: Path) -> Pin | None:
    """A `method: helm` chart or `method: http` manifest that is not vendored."""
    vendored = vendored_copy(definition, directory)
    if vendored is None or vendored.is_dir():
        return None
    if definition.type == "helm":
        for field, meaning in (("source", "the chart repository URL"), ("path", "the chart name")):
            if not getattr(definition, field):
                raise StackyardError(
                    f"helm {definition.name!r} with method helm needs `{field}` ({meaning})",
                    file=definition.file, key=join_key(definition.key, field))
        return ("chart", definition.source, definition.path, definition.version)
    if not definition.source.lower().endswith((".yaml", ".yml")):
        raise StackyardError(
            f"static {definition.name!r} with method http needs the URL of a .yaml or "
            f".yml file, not {redact(definition.source)!r}",
            file=definition.file, key=join_key(definition.key, "source"))
    return ("file", definition.source)
