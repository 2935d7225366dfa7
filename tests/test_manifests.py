"""Helm output post-processing: documents, order, test hooks, namespace injection."""

from __future__ import annotations

import random

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
    documents, unknown = manifests.collect(templates, crds)
    assert [d.kind for d in documents] == [
        "CustomResourceDefinition", "Service", "Deployment", "Apple", "Zebra"]
    assert unknown == []


def hook(kind: str, name: str, hooks: str) -> str:
    return (f"kind: {kind}\nmetadata:\n  name: {name}\n  annotations:\n"
            f"    helm.sh/hook: {hooks!r}\n")


def test_hooks_come_after_the_ordinary_documents_in_install_order_as_helm_template() -> None:
    """helm template prints the release's manifests, then its hooks, each list sorted by
    kind (stable); hook types are compared lower-cased, a test hook is dropped (D8) and a
    hook of a type Helm does not know (Helm 2's crd-install) is left out."""
    templates = {
        "c/templates/a.yaml": hook("Job", "post", "post-install, Post-Upgrade") + "---\n"
                              + "kind: Deployment\nmetadata:\n  name: d\n",
        "c/templates/b.yaml": hook("ConfigMap", "pre", "pre-install") + "---\n"
                              + hook("CustomResourceDefinition", "old", "crd-install"),
        "c/templates/c.yaml": "kind: Service\nmetadata:\n  name: s\n  annotations:\n"
                              "    other: x\n---\n" + hook("Pod", "t", "Test") + "---\n"
                              + hook("Pod", "t2", " TEST-success") + "---\n"
                              + hook("Pod", "t3", "test-failure") + "---\n"
                              + hook("Secret", "s", "pre-delete,crd-install") + "---\n"
                              + hook("Secret", "empty", ""),
    }
    documents, unknown = manifests.collect(templates, [])
    assert [(d.kind, d.text.split("name: ")[1].split("\n")[0]) for d in documents] == [
        ("Service", "s"), ("Deployment", "d"), ("ConfigMap", "pre"), ("Job", "post")]
    assert [(d.source, d.hooks) for d in unknown] == [
        ("c/templates/b.yaml", "crd-install"), ("c/templates/c.yaml", "test-failure"),
        ("c/templates/c.yaml", "pre-delete,crd-install"), ("c/templates/c.yaml", "")]


def test_documents_are_trimmed_of_whitespace_as_helm_splits_them() -> None:
    """Helm's SplitManifests trims each document (strings.TrimSpace): a template's
    whitespace-only lines before or after a document are not part of it."""
    text = "  \n\napiVersion: v1\nkind: Service\nspec:\n  type: ClusterIP\n  \n      \n" \
           "---\n\n  \nkind: ConfigMap\nmetadata:\n  name: a\n   \n"
    documents = manifests.split_documents("t.yaml", text)
    assert [d.text for d in documents] == [
        "apiVersion: v1\nkind: Service\nspec:\n  type: ClusterIP",
        "kind: ConfigMap\nmetadata:\n  name: a"]


def test_a_document_whose_first_line_is_indented_is_invalid_once_trimmed_as_in_helm() -> None:
    with pytest.raises(manifests.InvalidManifest, match=r"t.yaml rendered invalid YAML"):
        manifests.split_documents("t.yaml", "kind: A\n---\n  kind: B\n  x: 1\n")


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


def test_a_reserialised_document_quotes_strings_as_go_yaml_does() -> None:
    """go-yaml v2 writes a string that would read as another type in double quotes."""
    [document] = manifests.split_documents(
        "t.yaml", "kind: A\nmetadata: {name: a, labels: {x: 'yes', y: 'on', z: '1.0'}}\n")
    assert manifests.inject_namespace(document, "ns") == (
        'kind: A\nmetadata:\n  labels:\n    x: "yes"\n    "y": "on"\n    z: "1.0"\n'
        "  name: a\n  namespace: ns")


def test_a_reserialised_document_quotes_what_go_yaml_reads_as_a_number() -> None:
    """`1e3` is a float to go-yaml (and kubectl), though PyYAML's own pattern leaves it a
    string: written plain, a ConfigMap's value would become a number."""
    [document] = manifests.split_documents("t.yaml", "kind: ConfigMap\nmetadata: {name: a}\n"
                                           "data: {a: '1e3', b: '-1E-5', c: '0x1F', d: 'e3'}\n")
    assert manifests.inject_namespace(document, "ns") == (
        'data:\n  a: "1e3"\n  b: "-1E-5"\n  c: "0x1F"\n  d: e3\nkind: ConfigMap\nmetadata:\n'
        "  name: a\n  namespace: ns")


def test_a_reserialised_document_quotes_every_string_go_yaml_reads_as_a_number() -> None:
    """Base prefixes in either case, underscores anywhere after the first character, a
    signed binary after 0b: go-yaml v2 reads all of these as numbers."""
    numbers = ["0X1F", "0o644", "0B101", "1_000", "-_1", "0b-101", ".5_5", "0_8", "1._"]
    data = ", ".join(f"k{index}: '{text}'" for index, text in enumerate(numbers))
    [document] = manifests.split_documents(
        "t.yaml", f"kind: ConfigMap\nmetadata: {{name: a}}\ndata: {{{data}, s: 0x, t: _1}}\n")
    lines = manifests.inject_namespace(document, "ns").splitlines()
    assert lines[1:len(numbers) + 3] == [f'  k{index}: "{text}"'
                                         for index, text in enumerate(numbers)] + [
        "  s: 0x", "  t: _1"]


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
                piece = piece.strip()
                if not piece.strip():
                    continue
                fast = manifests._head_from_text(source, piece)
                if fast is manifests._UNKNOWN:
                    continue
                answered += 1
                assert fast == manifests._scan(source, piece), (source, piece[:200])
    assert answered > 100


def random_manifest(rng: random.Random) -> str:
    """A mapping document of the shapes templates produce, ordinary and odd: block and
    flow metadata, comments, quoted keys and kinds, indents of 2 or 4, annotations with a
    Helm hook, multi-line strings, anchors, lists, empty metadata."""
    pad = " " * rng.choice((2, 4))
    kind = rng.choice(("Deployment", "ConfigMap", "Namespace", "CustomThing"))
    kind_line = rng.choice((f"kind: {kind}", f'kind: "{kind}"', f"kind: '{kind}'",
                            f"kind: {kind}  # the kind", f'"kind": {kind}', f"kind:   {kind}"))
    keys = rng.sample(("name", "labels", "annotations", "namespace", "generateName"),
                      rng.randint(0, 4))
    entries = []
    for key in keys:
        if key == "labels":
            entries.append((f"{pad}labels:", f"{pad}{pad}app: web\n{pad}{pad}tier: \"x\""))
        elif key == "annotations":
            hook = rng.choice(("", f"{pad}{pad}helm.sh/hook: test-success",
                               f"{pad}{pad}\"helm.sh/hook\": pre-install,test"))
            entries.append((f"{pad}annotations:",
                            "\n".join(filter(None, (f"{pad}{pad}note: |", f"{pad}{pad}{pad}a",
                                                    f"{pad}{pad}{pad}b: c", hook)))))
        else:
            entries.append((f"{pad}{rng.choice((key, repr(key)))}: "
                            f"{rng.choice(('web', 'x-1', repr('a: b'), f'&{key} web'))}", ""))
    if not keys:
        metadata = rng.choice(("metadata:", "metadata: {}", "metadata: null", ""))
    elif rng.random() < 0.2:
        flow = ", ".join(f"{k}: v" for k in keys if k not in ("labels", "annotations"))
        metadata = f"metadata: {{{flow}}}"
    else:
        body = "\n".join("\n".join(filter(None, pair)) for pair in entries)
        comment = rng.choice(("", f"\n{pad}# a comment", "\n# top comment"))
        metadata = f"metadata:{rng.choice(('', '  # meta'))}{comment}\n{body}"
    spec = rng.choice(("spec:\n  replicas: 2", "data:\n  key: |\n    kind: Fake\n    x: 1",
                       "items: [1, 2]", "spec: {a: 1}", "rules:\n- apiGroups: ['']"))
    parts = [kind_line, metadata, spec, "apiVersion: v1"]
    rng.shuffle(parts)
    lead = rng.choice(("", "# Source: chart/templates/x.yaml\n"))
    return lead + "\n".join(part for part in parts if part)


def test_the_line_reader_and_the_event_walk_agree_with_a_full_parse() -> None:
    """Both fast readers of a document's head, against yaml.safe_load, on 3,000 seeded
    documents; the line reader may decline (_UNKNOWN), never answer differently."""
    rng = random.Random(20261130)
    answered = 0
    for _ in range(3000):
        text = random_manifest(rng)
        body = yaml.safe_load(text)
        metadata = body.get("metadata")
        annotations = (metadata or {}).get("annotations") if isinstance(metadata, dict) else {}
        truth = (body["kind"], frozenset(metadata) if isinstance(metadata, dict) else None,
                 (annotations or {}).get("helm.sh/hook"))
        scanned = manifests._scan("t.yaml", text)
        assert (scanned.kind, scanned.metadata_keys, scanned.hooks) == truth, text
        fast = manifests._head_from_text("t.yaml", text)
        if fast is not manifests._UNKNOWN:
            answered += 1
            assert fast == scanned, text
    assert answered > 250, "the line reader should answer for the ordinary documents"


def test_a_crlf_document_reads_and_takes_its_namespace_as_in_lf() -> None:
    """CRLF templates (Helm splits them, `\\r` is whitespace to it): the same head from
    both readers as the LF text, and the inserted namespace line ends in CRLF too."""
    rng = random.Random(20261201)
    for _ in range(1000):
        text = random_manifest(rng)
        [lf] = manifests.split_documents("t.yaml", text)
        [crlf] = manifests.split_documents("t.yaml", text.replace("\n", "\r\n"))
        assert (crlf.kind, crlf.metadata_keys, crlf.metadata_line, crlf.hooks) == (
            lf.kind, lf.metadata_keys, lf.metadata_line, lf.hooks), text
        injected = manifests.inject_namespace(lf, "ns")
        if injected == lf.text or lf.metadata_line is not None:  # kept or edited as text
            injected = injected.replace("\n", "\r\n")
        assert manifests.inject_namespace(crlf, "ns") == injected, text


def test_a_lone_carriage_return_makes_the_namespace_a_reserialisation() -> None:
    """libyaml counts a lone CR as a line break, so its line numbers are not the text's
    lines: inserting at one would put the namespace in the wrong place."""
    [document] = manifests.split_documents("t.yaml", "kind: A\rmetadata:\r  name: a\n"
                                           "  labels:\r    x: b\n")
    assert document.metadata_line is None
    assert yaml.safe_load(manifests.inject_namespace(document, "ns")) == {
        "kind": "A", "metadata": {"name": "a", "namespace": "ns", "labels": {"x": "b"}}}


@pytest.mark.parametrize(("text", "message"), [
    ("kind: A\nmetadata:\n  name: a\n---\n# extra\n- kind: B\n- kind: C\n",
     r"c/t.yaml rendered a YAML list \(line 6\) where a mapping, a Kubernetes object, was "
     r"expected \(helm template refuses it too\); render each item as a document"),
    ("\n---\n\"just a string\"\n",
     r"c/t.yaml rendered a scalar \('just a string'\) \(line 3\) where a mapping"),
    ("kind: A\r\n---\r\n- a\r\n", r"rendered a YAML list \(line 3\)"),
])
def test_a_list_or_scalar_document_is_an_error_naming_the_template_and_line(
        text: str, message: str) -> None:
    """Helm reads each document's head into a struct and fails on anything but a mapping;
    dropping the document would drop its objects silently."""
    with pytest.raises(manifests.InvalidManifest, match=message):
        manifests.split_documents("c/t.yaml", text)


def test_empty_null_and_comment_only_documents_are_still_skipped() -> None:
    text = "---\n# only a comment\n---\nnull\n---\n~\n---\n\n---\nkind: A\n"
    assert [d.kind for d in manifests.split_documents("c/t.yaml", text)] == ["A"]
