"""From Helm's rendered templates to one deterministic multi-document manifest.

Like `helm template --include-crds --skip-tests`: CRDs first, then documents in Helm's
install order (stable by template path), then Helm hooks in the same order; NOTES.txt,
test hooks and hooks of types Helm does not know dropped, each document trimmed of
surrounding whitespace, empty documents dropped, a list or scalar document an error as in
Helm (spec §5.2.5, without Fabrikate's stderr mix-in).
Namespace injection (spec §5.2.6) skips cluster-scoped kinds and edits text, not a re-dump.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from cachetools import LRUCache
from yaml._yaml import CParser

from .yamlio import ConfigLoader, dump_yaml

# Helm's install order of kinds; unknown kinds go last, sorted by kind name.
INSTALL_ORDER = (
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
    "PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
    "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
    "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
    "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
    "APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
)
_ORDER = {kind: index for index, kind in enumerate(INSTALL_ORDER)}

CLUSTER_SCOPED = frozenset({
    "Namespace", "Node", "PersistentVolume", "StorageClass", "PriorityClass", "ClusterRole",
    "ClusterRoleBinding", "CustomResourceDefinition", "APIService", "PodSecurityPolicy",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "CSIDriver", "CSINode",
    "RuntimeClass", "IngressClass", "VolumeAttachment", "ClusterIssuer",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "FlowSchema",
    "PriorityLevelConfiguration", "CertificateSigningRequest",
})
HOOK_TYPES = frozenset({
    "pre-install", "post-install", "pre-delete", "post-delete", "pre-upgrade", "post-upgrade",
    "pre-rollback", "post-rollback", "test", "test-success",
})
"""The `helm.sh/hook` types Helm 3 knows (`test-success` is Helm 2's name of `test`)."""
_TEST_HOOKS = frozenset({"test", "test-success"})
_SEPARATOR = re.compile(r"^---[ \t\r]*(?:#.*)?$", re.MULTILINE)
"""A `---` line; `\r` is whitespace as in Helm's SplitManifests, so CRLF templates split."""


@dataclass(frozen=True)
class Document:
    """One manifest: its text as rendered, and the parsed head Stackyard needs."""

    source: str
    text: str
    kind: str
    metadata_keys: frozenset[str] | None
    """The keys of a `metadata` mapping; None when the document has no such mapping."""
    metadata_line: int | None
    """Line (0-based) of the first key of a block-style `metadata` mapping in `text`."""
    hooks: str | None = None
    """The `helm.sh/hook` annotation; None when there is none."""

    @property
    def hook_types(self) -> frozenset[str]:
        """The hook's types as Helm reads them: split on commas, trimmed, lower-cased."""
        if self.hooks is None:
            return frozenset()
        return frozenset(hook.strip().lower() for hook in self.hooks.split(","))

    @property
    def is_unknown_hook(self) -> bool:
        """Helm skips such a document ('info: skipping unknown hook'), e.g. Helm 2's
        `crd-install`."""
        return self.hooks is not None and not self.hook_types <= HOOK_TYPES

    @property
    def is_test_hook(self) -> bool:
        return bool(self.hook_types & _TEST_HOOKS)


class InvalidManifest(ValueError):
    """A template rendered text that is not YAML, or a document that is not a mapping
    (Helm itself refuses such output)."""


_SPLIT_MEMO_BYTES = 32 * 2**20
_split_memo: LRUCache[tuple[str, str], tuple[Document, ...]] = LRUCache(
    maxsize=_SPLIT_MEMO_BYTES, getsizeof=lambda documents: 200 + sum(
        len(document.text) for document in documents))


def split_documents(source: str, text: str) -> tuple[Document, ...]:
    """The non-empty documents of one rendered template, in order.

    Most templates render the same text for many clusters (in a 100-cluster fleet, 14% of
    the outputs were distinct), so results are remembered by (template, text), up to
    32 MB of text per process. Raises InvalidManifest when the output is not valid YAML
    or a document is a list or a scalar.
    """
    key = (source, text)
    documents = _split_memo.get(key)
    if documents is None:
        documents = _split(source, text)
        _split_memo[key] = documents
    return documents


def _split(source: str, text: str) -> tuple[Document, ...]:
    try:
        _validate(text)
        documents = []
        for offset, piece in _pieces(text):
            stripped = piece.strip()  # Helm's SplitManifests: strings.TrimSpace
            if not stripped:
                continue
            if piece.lstrip("\r\n")[:1].isspace():  # an indented first line lost its indent
                _validate(stripped)
            document = _head_from_text(source, stripped)
            if document is _UNKNOWN:
                try:
                    document = _scan(source, stripped)
                except _NotAMapping as err:
                    line = text.count("\n", 0, offset + len(piece) - len(piece.lstrip()))
                    raise InvalidManifest(
                        f"{source} rendered {err.what} (line {line + err.line + 1}) where a "
                        "mapping, a Kubernetes object, was expected (helm template refuses "
                        f"it too); {err.advice}") from None
            if document is not None:
                documents.append(document)
        return tuple(documents)
    except yaml.YAMLError as err:
        raise InvalidManifest(f"{source} rendered invalid YAML{_describe(err)}") from err


def _pieces(text: str) -> Iterator[tuple[int, str]]:
    """The text between `---` lines, with its offset in `text` (as _SEPARATOR.split)."""
    start = 0
    for match in _SEPARATOR.finditer(text):
        yield start, text[start:match.start()]
        start = match.end()
    yield start, text[start:]


def yaml_problem(text: str) -> str | None:
    """What makes `text` invalid YAML (` (line N): problem`), or None when it is valid."""
    try:
        _validate(text)
    except yaml.YAMLError as err:
        return _describe(err)
    return None


def _describe(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    where = f" (line {mark.line + 1})" if mark else ""
    return f"{where}: {getattr(err, 'problem', None) or err}"


def _validate(text: str) -> None:
    """libyaml checks a template's whole output in C, without building Python objects."""
    validator = CParser(text)
    try:
        validator.raw_parse()
    finally:
        validator.dispose()


_UNKNOWN: Any = object()
_TOP_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*:(?:[ \t]|$)")
_KIND_LINE = re.compile(r"kind:[ \t]*([\"']?)([A-Za-z][A-Za-z0-9]*)\1[ \t]*(?:#.*)?$")
_CHILD_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_./-]*):(?:[ \t]|$)")


def _head_from_text(source: str, text: str) -> Document | None:
    """Kind and metadata keys of an ordinary block-style manifest, read from its lines.

    Rendered manifests put `kind:` and `metadata:` at column 0 and metadata's keys one
    indent deeper; reading that from the text costs a tenth of libyaml's event walk. The
    text was already validated. Anything unusual (flow style, quoted or complex keys,
    several `kind:` lines, a Helm hook annotation) returns _UNKNOWN: the event walk
    decides instead.
    """
    if "helm.sh/hook" in text:
        return _UNKNOWN
    lines = text.split("\n")
    if "\r" in text:  # CRLF line ends; a lone CR is a line break to libyaml, not here
        lines = [line.removesuffix("\r") for line in lines]
        if any("\r" in line for line in lines):
            return _UNKNOWN
    kind, kinds, metadata_at, keys_seen = "", 0, None, 0
    for index, line in enumerate(lines):
        if not line or line[0] in " \t#":
            continue
        if not _TOP_KEY.match(line):
            return _UNKNOWN
        keys_seen += 1
        if line.startswith("kind:"):
            match = _KIND_LINE.match(line)
            if match is None:
                return _UNKNOWN
            kind, kinds = match.group(2), kinds + 1
        elif line.startswith("metadata:"):
            if line.rstrip() != "metadata:":
                return _UNKNOWN
            metadata_at = index
    if keys_seen == 0:
        return None
    if kinds > 1:
        return _UNKNOWN
    if metadata_at is None:
        return Document(source, text, kind, None, None)
    keys: set[str] = set()
    indent, first_line = 0, None
    for index in range(metadata_at + 1, len(lines)):
        line = lines[index]
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        width = len(line) - len(stripped)
        if width == 0:
            break
        if first_line is None:
            indent, first_line = width, index
        if width < indent:
            return _UNKNOWN
        if width == indent:
            match = _CHILD_KEY.match(stripped)
            if match is None:
                return _UNKNOWN
            keys.add(match.group(1))
    if first_line is None:  # `metadata:` with nothing under it is null, not a mapping
        return Document(source, text, kind, None, None)
    return Document(source, text, kind, frozenset(keys), first_line)


def _scan(source: str, text: str) -> Document | None:
    """Read only a document's head (kind, metadata) from libyaml's events.

    The walk stops once `kind` and `metadata` are known: building whole manifests as
    Python objects would cost more than Helm's render. Anchors in the head fall back to a
    full parse.
    """
    parser = CParser(text)
    try:
        document = _read_head(source, text, iter(parser.get_event, None))
    except _NeedsFullParse:
        return _full_parse(source, text)
    finally:
        parser.dispose()
    if document is not None and "\r" in text.replace("\r\n", "\n"):
        # libyaml counts a lone CR as a line break: its line numbers are not text's lines
        return dataclasses.replace(document, metadata_line=None)
    return document


def _read_head(source: str, text: str, events: Iterator[yaml.Event]) -> Document | None:
    for event in events:
        if isinstance(event, yaml.DocumentStartEvent):
            break
    else:
        return None
    top = next(events)
    if isinstance(top, yaml.SequenceStartEvent):
        raise _NotAMapping("a YAML list", top.start_mark.line, "render each item as a "
                           "document of its own (`range` over the list, `---` before each)")
    if isinstance(top, yaml.ScalarEvent) and not _is_null(top):
        shown = top.value if len(top.value) <= 40 else top.value[:40] + "..."
        raise _NotAMapping(f"a scalar ({shown!r})", top.start_mark.line,
                           "render only Kubernetes objects, or make the text a YAML comment")
    if not isinstance(top, yaml.MappingStartEvent):
        return None
    kind, metadata, metadata_line, keys = "", None, None, 0
    for key in events:
        if isinstance(key, yaml.MappingEndEvent):
            break
        keys += 1
        value = next(events)
        if not isinstance(key, yaml.ScalarEvent) or isinstance(value, yaml.AliasEvent):
            raise _NeedsFullParse
        if key.value == "kind" and isinstance(value, yaml.ScalarEvent):
            kind = value.value
        elif key.value == "metadata" and isinstance(value, yaml.MappingStartEvent):
            metadata, first_key_line = _build_mapping(events)
            if not value.flow_style:
                metadata_line = first_key_line
        else:
            _skip(value, events)
        if kind and metadata is not None:
            break
    if keys == 0:
        return None
    return _document(source, text, kind, metadata, metadata_line)


def _document(source: str, text: str, kind: Any, metadata: Any, metadata_line: int | None
              ) -> Document:
    if not isinstance(metadata, dict):
        return Document(source, text, kind if isinstance(kind, str) else "", None, None)
    annotations = metadata.get("annotations")
    hooks = annotations.get("helm.sh/hook") if isinstance(annotations, dict) else None
    return Document(source, text, kind if isinstance(kind, str) else "",
                    frozenset(metadata), metadata_line, hooks if isinstance(hooks, str) else None)


class _NeedsFullParse(Exception):
    pass


class _NotAMapping(Exception):
    """A document that is a list or a scalar: what it is, the line (0-based, in the
    document) where it starts, and what to do."""

    def __init__(self, what: str, line: int, advice: str) -> None:
        super().__init__(what)
        self.what, self.line, self.advice = what, line, advice


def _is_null(event: yaml.ScalarEvent) -> bool:
    """An empty document, or one that is only `null` or `~`: no object, nothing to refuse."""
    return event.tag is None and event.implicit[0] and event.value in (
        "", "~", "null", "Null", "NULL")


def _skip(start: yaml.Event, events: Iterator[yaml.Event]) -> None:
    """Consume the rest of a node whose start event was just read."""
    depth = int(isinstance(start, yaml.CollectionStartEvent))
    while depth:
        event = next(events)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _build_mapping(events: Iterator[yaml.Event]) -> tuple[dict[str, Any], int | None]:
    """A small mapping (metadata) with string scalars; the line of its first key."""
    result: dict[str, Any] = {}
    first_line = None
    for key in events:
        if isinstance(key, yaml.MappingEndEvent):
            return result, first_line
        if not isinstance(key, yaml.ScalarEvent):
            raise _NeedsFullParse
        if first_line is None:
            first_line = key.start_mark.line
        value = next(events)
        if isinstance(value, yaml.ScalarEvent):
            result[key.value] = value.value
        elif isinstance(value, yaml.MappingStartEvent):
            result[key.value] = _build_mapping(events)[0]
        elif isinstance(value, yaml.SequenceStartEvent):
            _skip(value, events)
            result[key.value] = []
        else:
            raise _NeedsFullParse
    raise _NeedsFullParse


def _full_parse(source: str, text: str) -> Document | None:
    body = yaml.load(text, Loader=ConfigLoader)
    if not isinstance(body, dict) or not body:
        return None
    return _document(source, text, body.get("kind"), body.get("metadata"), None)


def _order_key(document: Document) -> tuple[int, str]:
    index = _ORDER.get(document.kind)
    return (index, "") if index is not None else (len(_ORDER), document.kind)


def collect(templates: dict[str, str], crds: list[dict[str, str]]
            ) -> tuple[list[Document], list[Document]]:
    """(CRDs, then ordinary documents in Helm's install order, then hooks in that order;
    the hooks of unknown types, which are left out), as `helm template --include-crds
    --skip-tests` prints them. NOTES.txt and test hooks are left out too."""
    documents: list[Document] = []
    for crd in crds:
        documents.extend(split_documents(crd.get("filename") or crd["name"], crd["data"]))
    ordinary: list[Document] = []
    hooks: list[Document] = []
    unknown: list[Document] = []
    for source in sorted(templates):
        if source.endswith("NOTES.txt"):
            continue
        for document in split_documents(source, templates[source]):
            if document.hooks is None:
                ordinary.append(document)
            elif document.is_unknown_hook:
                unknown.append(document)
            elif not document.is_test_hook:
                hooks.append(document)
    ordinary.sort(key=_order_key)
    hooks.sort(key=_order_key)
    return documents + ordinary + hooks, unknown


_PLAIN_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def inject_namespace(document: Document, namespace: str) -> str:
    """The document with `metadata.namespace` added where missing (spec §5.2.6).

    The line is inserted into the document's text, so formatting and comments survive;
    only a flow-style `metadata` makes the document re-serialised.
    """
    if (document.metadata_keys is None or "namespace" in document.metadata_keys
            or document.kind in CLUSTER_SCOPED):
        return document.text
    plain = _PLAIN_NAME.match(namespace) and namespace not in _YAML_WORDS
    value = namespace if plain else json.dumps(namespace)
    lines = document.text.split("\n")
    if document.metadata_line is not None:
        first = lines[document.metadata_line]
        indent = first[: len(first) - len(first.lstrip(" "))]
        if indent:
            # a CRLF document stays CRLF (its last line has no line end to look at)
            end = "\r" if lines[document.metadata_line - 1].endswith("\r") else ""
            lines.insert(document.metadata_line, f"{indent}namespace: {value}{end}")
            return "\n".join(lines)
    body = yaml.load(document.text, Loader=ConfigLoader)
    body["metadata"] = {**body["metadata"], "namespace": namespace}
    return dump_yaml(body).rstrip("\n")


def join(documents: list[Document], namespace: str | None) -> bytes:
    """`---`, a `# Source:` line and the document, for each; namespace injected if given."""
    parts = []
    for document in documents:
        text = document.text if namespace is None else inject_namespace(document, namespace)
        parts.append(f"---\n# Source: {document.source}\n{text}\n")
    return "".join(parts).encode()
