"""Helm output post-processing: documents, order, test hooks, namespace injection."""

from __future__ import annotations

import pytest
import yaml

from rules import manifests
from rules.renderers import helm
from tests.doit_runner import SHARED_CHARTS


def test_documents_are_split_and_empty_or_comment_only_pieces_dropped() -> None:
    text = "# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n" \
           "---\n\n---\nkind: Secret\nmetadata: {name: b}\n"
    documents = manifests.split_documents("t.yaml", text)
    assert [(d.kind, d.metadata_keys) for d in documents] == [
        ("ConfigMap", frozenset({"name"})), ("Secret", frozenset({"name"}))]


def test_invalid_yaml_is_an_error_naming_the_template() -> None:
    text = "kind: A\nmetadata:\n  name: a\n---\nnot: [valid\n"
    with pytest.raises(manifests.InvalidManifest, match=r"c/t.yaml rendered invalid YAML"):
        manifests.split_documents("c/t.yaml", text)


def test_install_order_crds_first_unknown_kinds_last_by_name() -> None:
    templates = {
        "c/templates/a.yaml": "kind: Deployment\nmetadata:\n  name: d\n---\n"
                              "kind: Zebra\nmetadata:\n  name: z\n",
        "c/templates/b.yaml": "kind: Service\nmetadata:\n  name: s\n---\n"
                              "kind: Apple\nmetadata:\n  name: y\n",
        "c/templates/NOTES.txt": "kind: NotAManifest\n",
        "c/templates/tests/t.yaml": "kind: Pod\nmetadata:\n  name: t\n  annotations:\n"
                                    "    helm.sh/hook: test-success\n",
    }
    crds = [{"name": "x", "filename": "crds/x.yaml",
             "data": "kind: CustomResourceDefinition\nmetadata:\n  name: x\n"}]
    kinds = [d.kind for d in manifests.collect(templates, crds)]
    assert kinds == ["CustomResourceDefinition", "Service", "Deployment", "Apple", "Zebra"]


def test_injection_edits_text_and_keeps_comments_and_order() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n    # the name\n    name: a\n" \
           "data:\n  b: '1'\n"
    [document] = manifests.split_documents("t.yaml", text)
    injected = manifests.inject_namespace(document, "logging")
    assert injected == ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n    # the name\n"
                        "    namespace: logging\n    name: a\ndata:\n  b: '1'")


def test_injection_keeps_an_existing_namespace_and_skips_cluster_scoped_kinds() -> None:
    text = "kind: Role\nmetadata:\n  name: r\n  namespace: other\n---\n" \
           "kind: ClusterRole\nmetadata:\n  name: c\n"
    for document in manifests.split_documents("t.yaml", text):
        assert manifests.inject_namespace(document, "ns") == document.text


def test_flow_style_metadata_is_reserialised_with_the_namespace() -> None:
    [document] = manifests.split_documents("t.yaml", "kind: A\nmetadata: {name: a}\n")
    assert yaml.safe_load(manifests.inject_namespace(document, "ns")) == {
        "kind": "A", "metadata": {"name": "a", "namespace": "ns"}}


def test_anchors_fall_back_to_a_full_parse() -> None:
    text = "x: &m {name: a}\nkind: A\nmetadata: *m\n"
    [document] = manifests.split_documents("t.yaml", text)
    assert document.metadata_keys == frozenset({"name"})


def test_unusual_namespace_is_quoted() -> None:
    [document] = manifests.split_documents("t.yaml", "kind: A\nmetadata:\n  name: a\n")
    assert "  namespace: \"yes\"" in manifests.inject_namespace(document, "yes")


def test_join_prefixes_each_document_with_its_source() -> None:
    documents = manifests.split_documents("c/t.yaml", "kind: A\nmetadata:\n  name: a\n")
    assert manifests.join(documents, None) == b"---\n# Source: c/t.yaml\nkind: A\n" \
                                              b"metadata:\n  name: a\n"


def test_the_line_reader_agrees_with_libyaml_on_every_shared_chart() -> None:
    """The fast path must give what the event walk gives, wherever it answers at all."""
    engine = helm.engine()
    answered = 0
    for chart_dir in sorted(SHARED_CHARTS.iterdir()):
        if chart_dir.name == "cert-manager":
            continue  # needs its file:// dependency built; covered in test_renderers
        with engine.Chart.load(chart_dir) as chart:
            rendered = chart.render({}, name="x", namespace="ns")
        for source, text in rendered.items():
            for piece in manifests._SEPARATOR.split(text):
                piece = piece.strip("\n")
                if not piece.strip():
                    continue
                fast = manifests._head_from_text(source, piece)
                if fast is manifests._UNKNOWN:
                    continue
                answered += 1
                assert fast == manifests._scan(source, piece), (source, piece[:200])
    assert answered > 100
