"""From Helm's rendered templates to one deterministic multi-document manifest.

Like `helm template --include-crds --skip-tests`: CRDs first, then documents in Helm's
install order (stable by template path), NOTES.txt and test hooks dropped, only
non-empty mapping documents kept (spec §5.2.5, without Fabrikate's stderr mix-in).
Namespace injection (spec §5.2.6) skips cluster-scoped kinds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

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
_TEST_HOOKS = frozenset({"test", "test-success", "test-failure"})
_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.MULTILINE)


@dataclass(frozen=True)
class Document:
    source: str
    text: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        kind = self.body.get("kind")
        return kind if isinstance(kind, str) else ""


def split_documents(source: str, text: str) -> list[Document]:
    """The non-empty mapping documents of one rendered template, in order."""
    documents = []
    for piece in _SEPARATOR.split(text):
        stripped = piece.strip("\n")
        if not stripped.strip():
            continue
        try:
            body = yaml.load(stripped, Loader=ConfigLoader)
        except yaml.YAMLError:
            body = None
        if isinstance(body, dict) and body:
            documents.append(Document(source, stripped, body))
    return documents


def _is_test_hook(document: Document) -> bool:
    metadata = document.body.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    hooks = annotations.get("helm.sh/hook") if isinstance(annotations, dict) else None
    if not isinstance(hooks, str):
        return False
    return any(hook.strip() in _TEST_HOOKS for hook in hooks.split(","))


def _order_key(document: Document) -> tuple[int, str]:
    index = _ORDER.get(document.kind)
    return (index, "") if index is not None else (len(_ORDER), document.kind)


def collect(templates: dict[str, str], crds: list[dict[str, str]]) -> list[Document]:
    """CRDs, then templates in Helm's install order; NOTES.txt and test hooks left out."""
    documents: list[Document] = []
    for crd in crds:
        documents.extend(split_documents(crd.get("filename") or crd["name"], crd["data"]))
    rendered: list[Document] = []
    for source in sorted(templates):
        if source.endswith("NOTES.txt"):
            continue
        rendered.extend(d for d in split_documents(source, templates[source])
                        if not _is_test_hook(d))
    rendered.sort(key=_order_key)
    return documents + rendered


def inject_namespace(document: Document, namespace: str) -> str:
    """Re-serialised document with `metadata.namespace` set where missing (spec §5.2.6)."""
    body = document.body
    metadata = body.get("metadata")
    if (isinstance(metadata, dict) and "namespace" not in metadata
            and document.kind not in CLUSTER_SCOPED):
        body = {**body, "metadata": {**metadata, "namespace": namespace}}
    return dump_yaml(body).rstrip("\n")


def join(documents: list[Document], namespace: str | None) -> bytes:
    """`---`, a `# Source:` line and the document, for each; namespace injected if given."""
    parts = []
    for document in documents:
        text = document.text if namespace is None else inject_namespace(document, namespace)
        parts.append(f"---\n# Source: {document.source}\n{text}\n")
    return "".join(parts).encode()
