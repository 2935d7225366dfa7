"""Reading component files and environment files as Fabrikate does, and rejecting bad input.

Every error must name the file and, where there is one, the key path inside it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rules.definitions import environment_files, load_component, load_environment
from rules.errors import StackyardError, display_path
from rules.model import MergedConfig, PlanNode
from rules.plan import plan_cluster
from rules.renderers import REGISTRY, renderer_for
from rules.workspace import Workspace
from rules.yamlio import load_config_layer
from tests.doit_runner import doit, install_dodo, write
from tests.helpers import write_component, write_config, write_environment


def plan(root: Path, layers: str = "[]") -> dict[str, PlanNode]:
    """Plan a cluster `c` running `<root>/stack`; the nodes by path."""
    env = write_environment(root, "c", f"stack: ../stack\nlayers: {layers}\n")
    return {n.node_path: n for n in plan_cluster(load_environment(env), Workspace.at(root)).nodes}


def shown(folder: Path, file: str) -> str:
    """How a message names `folder/file` (relative when it is below the working folder)."""
    return display_path(folder / file)


def error_of(action: object, *args: object) -> str:
    """The message of the StackyardError that `action(*args)` raises."""
    with pytest.raises(StackyardError) as caught:
        action(*args)  # type: ignore[operator]
    return str(caught.value)


# ---------------------------------------------------------------- finding and reading the file


def test_component_yaml_wins_over_component_json(tmp_path: Path) -> None:
    write_component(tmp_path, "name: from-yaml\n")
    write_component(tmp_path, '{"name": "from-json"}', name="component.json")

    assert load_component(tmp_path).name == "from-yaml"


def test_component_json_is_read_when_there_is_no_yaml(tmp_path: Path) -> None:
    write_component(tmp_path, '{"name": "web", "type": "helm", "path": "chart"}',
                    name="component.json")

    component = load_component(tmp_path)

    assert (component.name, component.type, component.path) == ("web", "helm", "chart")
    assert component.file == tmp_path / "component.json"


def test_component_yml_is_not_recognised(tmp_path: Path) -> None:
    write_component(tmp_path, "name: web\n", name="component.yml")

    message = error_of(load_component, tmp_path)

    assert message == (f"component folder {display_path(tmp_path)} has no component.yaml or "
                       "component.json (a component.yml is not read: rename it)")


def test_unknown_keys_are_ignored_with_a_warning_that_suggests_the_key_meant(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt `layers` or `namespace` changes the output silently unless it is said."""
    (tmp_path / "stack").mkdir()
    write_component(tmp_path / "stack", "name: app\nsubcomponets: []\n")
    write_config(tmp_path / "stack", "prod", "namepsace: web\nreplicaCount: 3\n")
    env = write_environment(tmp_path, "d", "stack: ../stack\nlayer: [prod]\n")

    nodes = plan(tmp_path, "[prod]")
    load_environment(env)

    warnings = capsys.readouterr().err
    assert (f"{shown(tmp_path / 'stack', 'component.yaml')}: unknown key(s) subcomponets "
            "(did you mean `subcomponents`?) ignored") in warnings
    assert (f"{shown(tmp_path / 'stack', 'config/prod.yaml')}: unknown key(s) namepsace "
            "(did you mean `namespace`?), replicaCount ignored (values belong under "
            "`config:`)") in warnings
    assert (f"{shown(tmp_path, 'environments/d.yaml')}: unknown key(s) layer (did you mean "
            "`layers`?) ignored") in warnings
    assert nodes["app"].config == MergedConfig(values={}, namespace="", inject_namespace=False)


def test_a_key_written_twice_is_said_and_the_last_one_counts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As go-yaml decoded it for Fabrikate, but said: one of the two was likely meant."""
    write_component(tmp_path / "stack", "name: app\ntype: static\npath: a\npath: b\n")
    write_config(tmp_path / "stack", "common", "config:\n  base: &b {n: 1}\n"
                 "  web: {<<: *b, n: 2}\n  replicaCount: 1\n  replicaCount: 9\n")

    app = plan(tmp_path, "[east]\nlayers: [west]")["app"]

    warnings = capsys.readouterr().err
    for file, line, key in [("component.yaml", 4, "path"), ("config/common.yaml", 5,
                                                            "replicaCount")]:
        assert (f"{shown(tmp_path / 'stack', file)}: line {line}: key {key!r} is written "
                "twice in one mapping; the last one counts, as in Fabrikate") in warnings
    assert (f"{shown(tmp_path, 'environments/c.yaml')}: line 3: key 'layers' is written "
            "twice") in warnings
    assert "'n'" not in warnings  # a key over one merged in by `<<` is no duplicate
    write_component(tmp_path / "j", '{"name": "j", "name": "k"}', name="component.json")
    assert load_component(tmp_path / "j").name == "k"
    assert (f"{shown(tmp_path / 'j', 'component.json')}: key 'name' is written twice in one "
            "object; the last one counts") in capsys.readouterr().err
    assert app.definition.path == "b"
    assert app.config.values == {"base": {"n": 1}, "web": {"n": 2}, "replicaCount": 9}


def test_only_the_first_yaml_document_is_read_and_a_later_one_is_said(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """go-yaml v2's Unmarshal (Fabrikate) reads a file's first document: an empty one after
    a trailing `---` is no error and no warning; one that holds anything (even malformed
    YAML) is ignored with a warning naming its line."""
    stack = tmp_path / "stack"
    write_component(stack, "name: app\ntype: static\npath: m\n---\n")
    write_config(stack, "common", "config: {n: 1}\n---\n# nothing\n---\nconfig: {n: 2}\n")
    write_config(stack, "prod", "namespace: web\n---\nconfig: [broken\n")
    write_environment(tmp_path, "c", "stack: ../stack\nlayers: [prod]\n---\n")
    nodes = {n.node_path: n for n in plan_cluster(load_environment(
        tmp_path / "environments/c.yaml"), Workspace.at(tmp_path)).nodes}

    assert nodes["app"].config.values == {"n": 1}
    assert nodes["app"].config.namespace == "web"
    warnings = capsys.readouterr().err.splitlines()
    assert [w.split(": ", 1)[1].rpartition("stack/")[2] for w in warnings] == [
        "config/prod.yaml: line 2: a later YAML document (after `---` or `...`) is ignored: "
        "Fabrikate read only a file's first document, and so does Stackyard; move what it "
        "holds into the first one, or delete it",
        "config/common.yaml: line 4: a later YAML document (after `---` or `...`) is ignored: "
        "Fabrikate read only a file's first document, and so does Stackyard; move what it "
        "holds into the first one, or delete it"]


def test_an_unknown_method_is_read_as_local_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_component(tmp_path, "name: s\ntype: static\nmethod: ftp\npath: m\n")

    assert load_component(tmp_path).method == "ftp"

    assert (f"{shown(tmp_path, 'component.yaml')}: method: unknown method 'ftp' is read as "
            "`local`, as Fabrikate read it (known: git, helm, http, local)"
            ) in capsys.readouterr().err


@pytest.mark.parametrize("method", ["Helm", "GIT", "LOCAL", "Http"])
def test_a_method_in_another_case_is_read_as_local_with_a_warning_that_says_why(
        tmp_path: Path, method: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Fabrikate compares `method` case-sensitively, so `Helm` was a local chart; only a
    static component's `http` is read in any case (no warning for that one)."""
    write_component(tmp_path / "h", f"name: h\ntype: helm\nmethod: {method}\npath: c\n")
    write_component(tmp_path / "s", f"name: s\ntype: static\nmethod: {method.upper()}\n"
                    "source: https://example.com/a.yaml\n")

    assert load_component(tmp_path / "h").method == method
    load_component(tmp_path / "s")

    warnings = capsys.readouterr().err.splitlines()
    expected = (f"{shown(tmp_path / 'h', 'component.yaml')}: method: unknown method "
                f"{method!r} is read as `local`, as Fabrikate read it (known: git, helm, http, "
                f"local); Fabrikate compares methods case-sensitively: write `{method.lower()}`")
    assert expected in warnings[0]
    assert len(warnings) == (1 if method == "Http" else 2)


def test_a_json_layer_beside_a_yaml_one_is_ignored_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_component(tmp_path / "stack", "name: app\n")
    write_config(tmp_path / "stack", "prod", "config: {from: yaml}\n")
    (tmp_path / "stack/config/prod.json").write_text('{"config": {"from": "json"}}')

    app = plan(tmp_path, "[prod]")["app"]

    assert app.config.values == {"from": "yaml"}
    assert (f"{shown(tmp_path / 'stack', 'config/prod.json')}: ignored: config/prod.yaml is "
            "read instead, as Fabrikate read it") in capsys.readouterr().err


def test_generator_overrides_type_with_a_deprecation_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_component(tmp_path, """\
        name: app
        subcomponents:
          - {name: old, type: static, generator: helm, path: chart}
          - {name: plain, type: static, generator: "", path: m}
        """)

    old, plain = load_component(tmp_path).subcomponents

    assert (old.type, plain.type) == ("helm", "static")
    warnings = capsys.readouterr().err
    assert "component.yaml: subcomponents[0].generator: deprecated alias of `type`" in warnings
    assert "subcomponents[1]" not in warnings


def test_empty_or_missing_type_is_a_container(tmp_path: Path) -> None:
    write_component(tmp_path, """\
        name: app
        type: ""
        subcomponents:
          - {name: a, source: a}
          - {name: b, type: ~, source: b}
        """)

    app = load_component(tmp_path)

    assert [c.type for c in (app, *app.subcomponents)] == ["component"] * 3
    assert not any(c.inline for c in (app, *app.subcomponents))


def test_unknown_type_warns_and_renders_empty_as_an_inline_node(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = tmp_path / "stack"
    write_component(stack, """\
        name: app
        subcomponents:
          - {name: web, source: web}
        """)
    write_component(stack / "web", """\
        name: web
        subcomponents:
          - {name: kust, type: kustomize, path: overlay}
        """)

    node = plan(tmp_path)["app/web/kust"]

    assert node.definition.inline
    assert node.physical_dir == stack / "web"  # the parent's folder
    assert str(node.output) == "web/kust.yaml"  # the parent's output folder
    assert "web/component.yaml: subcomponents[0].type: unknown type 'kustomize' renders an " \
           "empty manifest" in capsys.readouterr().err
    renderer = renderer_for(node.definition.type) or REGISTRY["component"]
    assert renderer.render(node, Workspace.at(tmp_path)) == b""


def test_repositories_is_ignored_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_component(tmp_path, """\
        name: app
        type: helm
        path: chart
        repositories:
          stable: https://charts.helm.sh/stable
        """)

    app = load_component(tmp_path)

    assert "component.yaml: repositories: deprecated and ignored" in capsys.readouterr().err
    assert (app.name, app.type, app.path) == ("app", "helm", "chart")


def test_scalars_in_a_component_file_stay_as_written(tmp_path: Path) -> None:
    write_component(tmp_path, """\
        name: on
        type: helm
        version: 1.20
        branch: 007
        path: 2020-01-01
        """)

    app = load_component(tmp_path)

    assert (app.name, app.version, app.branch, app.path) == ("on", "1.20", "007", "2020-01-01")


def test_yaml_merge_keys_apply_in_a_component_file(tmp_path: Path) -> None:
    write_component(tmp_path, """\
        name: s
        subcomponents:
          - &base {name: a, type: static, path: m, version: 1.10}
          - <<: *base
            name: b
        """)

    a, b = load_component(tmp_path).subcomponents

    assert (b.name, b.type, b.path, b.version) == ("b", "static", "m", "1.10")
    assert a.name == "a"


def test_inline_and_non_inline_entries(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    write_component(stack, """\
        name: app
        subcomponents:
          - {name: base, type: static, path: base}
          - {name: simple-service, source: services/istio}
        """)
    write_component(stack / "services" / "istio", "name: istio\ntype: static\npath: m\n")

    nodes = plan(tmp_path)

    base, service = nodes["app/base"], nodes["app/simple-service"]
    assert base.definition.inline
    assert (base.physical_dir, str(base.output)) == (stack, "base.yaml")
    assert not load_component(stack).subcomponents[1].inline
    # a pointer entry: its folder and entry name place it, its loaded file's name names the file
    assert service.definition.type == "static"
    assert service.physical_dir == stack / "services" / "istio"
    assert str(service.output) == "simple-service/istio.yaml"


def test_hooks_are_parsed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_component(tmp_path, """\
        name: app
        hooks:
          before-generate: [./fetch.sh, "", echo done]
          after-generate: ~
          after-install: []
          before-install: [curl -sL https://example.com/chart.tgz | tar xz]
          on-deploy: [echo nope]
        """)

    app = load_component(tmp_path)

    assert app.hook("before-generate") == ("./fetch.sh", "echo done")
    assert app.hook("after-generate") == ()
    # install hooks are never run (D18): not kept, so they cannot stop renders being shared
    assert app.hooks == (("before-generate", ("./fetch.sh", "echo done")),)
    said = capsys.readouterr().err
    assert "component.yaml: hooks.on-deploy: unknown hook ignored" in said
    assert ("component.yaml: hooks.before-install: not run: Stackyard has no install step, "
            "sources are fetched while planning (D18 in docs/fabrikate-compat.md)") in said
    assert "hooks.after-install" not in said  # nothing to run


def test_a_hook_that_is_a_scalar_instead_of_a_list_is_an_error(tmp_path: Path) -> None:
    write_component(tmp_path, """\
        name: app
        subcomponents:
          - name: web
            type: static
            hooks:
              before-generate: ./fetch.sh
        """)

    message = error_of(load_component, tmp_path)

    assert message == (f"{shown(tmp_path, 'component.yaml')}: "
                       "subcomponents[0].hooks.before-generate: "
                       "expected a list of shell commands, got str './fetch.sh'")


# ---------------------------------------------------------------- bad component files


@pytest.mark.parametrize(("file", "text", "expected"), [
    ("component.yaml", "name: app\nsubcomponents:\n  - name: web\n    source: [web\n",
     "component.yaml: malformed YAML (line 5, column 1)"),
    ("config/common.yaml", "config:\n  image: {tag: 1\nnamespace: web\n",
     "config/common.yaml: malformed YAML (line 3, column 10)"),
])
def test_malformed_yaml_names_the_file_and_line(
        tmp_path: Path, file: str, text: str, expected: str) -> None:
    stack = tmp_path / "stack"
    write_component(stack, "name: app\n")
    write_component(stack, text, name=file)

    assert f"stack/{expected}" in error_of(plan, tmp_path)


def test_malformed_json_names_the_file_and_line(tmp_path: Path) -> None:
    write_component(tmp_path, '{\n  "name": "web",\n}\n', name="component.json")

    message = error_of(load_component, tmp_path)

    assert message.startswith(f"{shown(tmp_path, 'component.json')}: "
                              "malformed JSON (line 3, column 1)")


@pytest.mark.parametrize(("file", "text", "expected"), [
    ("component.yaml", "# nothing yet\n", "the component file is empty; expected a mapping"),
    ("component.yaml", "- name: web\n", "expected a mapping, got a list"),
    ("component.yaml", "name: app\nsubcomponents:\n  web: {source: web}\n",
     "subcomponents: expected a list of components, got a mapping"),
    ("component.yaml", "name: app\nsubcomponents:\n  - {name: base}\n  - web\n",
     "subcomponents[1]: expected a mapping, got str 'web'"),
    # Fabrikate's JSON decoding refused it; taken as text, `1.10` would be "1.1"
    ("component.json", '{"name": "s", "subcomponents": [{"name": "x", "method": "git", '
                       '"source": "https://h/x.git", "version": 1.10}]}',
     "subcomponents[0].version: expected a string, got float 1.1 (put it in quotes)"),
], ids=["empty", "a-list", "subcomponents-a-mapping", "entry-a-string", "json-number"])
def test_a_component_file_of_the_wrong_shape_is_an_error(
        tmp_path: Path, file: str, text: str, expected: str) -> None:
    write_component(tmp_path, text, name=file)

    message = error_of(load_component, tmp_path)

    assert message == f"{shown(tmp_path, file)}: {expected}"


def test_duplicate_subcomponent_names_are_an_error(tmp_path: Path) -> None:
    write_component(tmp_path, """\
        name: app
        subcomponents:
          - {name: web, source: web}
          - {name: base, type: static}
          - {name: web, type: helm}
        """)

    message = error_of(load_component, tmp_path)

    assert message.startswith(f"{shown(tmp_path, 'component.yaml')}: subcomponents: "
                              "two subcomponents are named 'web' "
                              "(subcomponents[0] and subcomponents[2])")


@pytest.mark.parametrize("entry", ["{name: back, source: ..}", "{name: itself}"])
def test_a_non_inline_subcomponent_pointing_at_an_ancestor_is_a_cycle(
        tmp_path: Path, entry: str) -> None:
    stack = tmp_path / "stack"
    write_component(stack, "name: app\nsubcomponents:\n  - {name: web, source: web}\n")
    write_component(stack / "web", f"name: web\nsubcomponents:\n  - {entry}\n")

    message = error_of(plan, tmp_path)

    assert message.startswith(f"{shown(stack, 'web/component.yaml')}: subcomponents[0]: "
                              "subcomponent ")
    assert "is one of its own ancestors (a cycle)" in message


# ---------------------------------------------------------------- bad environment and config


def test_a_missing_stack_folder_is_an_error(tmp_path: Path) -> None:
    env = write_environment(tmp_path, "c", "stack: ../stacks/nope\nlayers: []\n")

    message = error_of(load_environment, env)

    missing = display_path(tmp_path / "stacks" / "nope")
    assert message == f"{display_path(env)}: stack: stack folder {missing} does not exist"


@pytest.mark.parametrize(("content", "expected"), [
    (b"stack: ../stack\nlayers: [prod, no]\n",
     "layers[1]: expected a layer name, got bool False; put the name in quotes"),
    (b"stack: ../stack\nconfig:\n\tx: 1\n", "malformed YAML (line 3, column 1): found "
     "character that cannot start any token (a tab: YAML indents with spaces)"),
    ("stack: ../stack\n".encode("utf-16"), "not UTF-8 text: byte 0xff on line 1 cannot be "
     "decoded (it looks like UTF-16); save the file as UTF-8"),
])
def test_environment_file_mistakes_say_what_to_do(tmp_path: Path, content: bytes,
                                                  expected: str) -> None:
    write_component(tmp_path / "stack", "name: s\n")
    env = write_environment(tmp_path, "c", "")
    env.write_bytes(content)

    assert error_of(load_environment, env) == f"{display_path(env)}: {expected}"


def test_aliases_may_repeat_an_anchor_but_not_explode(tmp_path: Path) -> None:
    """A few repeats through anchors, and a `&` in a string, are ordinary YAML; aliases
    that expand 45 values into four million are refused, naming the file."""
    layer = tmp_path / "common.yaml"
    layer.write_text('base: &b {url: "h?a=1&b=2"}\ncopy: *b\nmerged: {<<: *b, x: 1}\n')
    assert load_config_layer(layer) == {"base": {"url": "h?a=1&b=2"},
                                        "copy": {"url": "h?a=1&b=2"},
                                        "merged": {"url": "h?a=1&b=2", "x": 1}}
    wide = "".join(f"k{i}: &k{i} [*k{i - 1}, *k{i - 1}]\n" for i in range(1, 21))
    layer.write_text(f"k0: &k0 x\n{wide}")

    assert error_of(load_config_layer, layer) == (
        f"{display_path(layer)}: YAML aliases expand 45 values into 4,194,303; repeat less "
        "through anchors (`&name`, `*name`)")


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_nested_thousands_deep_is_an_error_not_a_traceback(
        tmp_path: Path, suffix: str) -> None:
    layer = tmp_path / f"common{suffix}"
    layer.write_text('{"a": ' * 3000 + "1" + "}" * 3000 if suffix == ".json" else
                     "".join(f"{'  ' * level}k:\n" for level in range(600)) + "  " * 600 + "v")

    assert error_of(load_config_layer, layer) == (
        f"{display_path(layer)}: mappings and lists nested too deeply to read (Python's "
        "recursion limit; a few hundred levels are read)")


def test_json_keys_written_twice_are_found_in_a_big_object(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    layer = tmp_path / "common.json"
    keys = ", ".join(f'"k{i}": {i}' for i in range(20000))
    layer.write_text(f'{{"config": {{{keys}, "k7": "again"}}}}')

    assert load_config_layer(layer)["config"]["k7"] == "again"
    assert "key 'k7' is written twice in one object" in capsys.readouterr().err


def test_a_byte_order_mark_is_read_past_in_yaml_and_json(tmp_path: Path) -> None:
    """Some Windows editors start UTF-8 files with one; YAML allowed it, JSON did not."""
    write_component(tmp_path / "stack", "name: s\n")
    (tmp_path / "environments").mkdir()
    for name, text in (("c.json", '{"stack": "../stack"}'), ("d.yaml", "stack: ../stack\n")):
        env = tmp_path / "environments" / name
        env.write_bytes(b"\xef\xbb\xbf" + text.encode())
        assert load_environment(env).stack_dir == tmp_path / "stack"


def test_a_stack_that_names_a_file_says_to_name_its_folder(tmp_path: Path) -> None:
    write_component(tmp_path / "stacks" / "s", "name: s\n")
    env = write_environment(tmp_path, "c", "stack: ../stacks/s/component.yaml\n")

    message = error_of(load_environment, env)

    shown_file = display_path(tmp_path / "stacks" / "s" / "component.yaml")
    assert message == (f"{display_path(env)}: stack: {shown_file} is a file; `stack:` names "
                       f"the stack's folder (here {display_path(tmp_path / 'stacks' / 's')})")


def test_layers_that_is_not_a_list_is_an_error(tmp_path: Path) -> None:
    write_component(tmp_path / "stack", "name: app\n")
    env = write_environment(tmp_path, "c", "stack: ../stack\nlayers: prod\n")

    message = error_of(load_environment, env)

    assert message == f"{display_path(env)}: layers: expected a list of layer names, got str 'prod'"


@pytest.mark.parametrize(("text", "key"), [
    ("namespace: {name: web}\n", "namespace"),
    ("subcomponents:\n  web:\n    namespace: {name: web}\n", "subcomponents.web.namespace"),
])
def test_a_namespace_that_is_a_mapping_is_an_error(tmp_path: Path, text: str, key: str) -> None:
    stack = tmp_path / "stack"
    write_component(stack, "name: app\nsubcomponents:\n  - {name: web, type: static}\n")
    write_config(stack, "common", text)

    message = error_of(plan, tmp_path)

    assert message == (f"{shown(stack, 'config/common.yaml')}: {key}: "
                       "expected a string, got a mapping")


def test_a_namespace_is_the_text_as_written_and_values_keep_their_types(
        tmp_path: Path) -> None:
    """go-yaml filled Fabrikate's string field `namespace` with the text written."""
    stack = tmp_path / "stack"
    write_component(stack, "name: app\nsubcomponents:\n  - {name: web, type: helm}\n"
                           "  - {name: db, type: helm}\n")
    write_config(stack, "common", "namespace: 1.10\nsubcomponents:\n"
                                  "  web: {namespace: 0x1F, config: {namespace: 1.10, on: no}}\n")
    write_environment(tmp_path, "c", "stack: ../stack\nconfig:\n"
                                     "  subcomponents: {db: {namespace: no}}\n")

    nodes = {n.node_path: n for n in plan_cluster(
        load_environment(tmp_path / "environments/c.yaml"), Workspace.at(tmp_path)).nodes}

    assert nodes["app"].config.namespace == "1.10"
    assert nodes["app/web"].config.namespace == "0x1F"
    assert nodes["app/web"].config.values == {"namespace": 1.1, "on": False}
    assert nodes["app/db"].config.namespace == "no"


def test_inject_namespace_must_be_a_real_boolean(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    write_component(stack, "name: app\nsubcomponents:\n  - {name: web, type: static}\n")
    write_config(stack, "prod", "namespace: web\ninjectNamespace: yes\n")  # YAML 1.1: true
    write_config(stack, "common", 'subcomponents:\n  web: {injectNamespace: "yes"}\n')

    message = error_of(plan, tmp_path, "[prod]")

    assert message == (f"{shown(stack, 'config/common.yaml')}: subcomponents.web.injectNamespace: "
                       "expected true or false, got str 'yes'")


# ---------------------------------------------------------------- output files


def test_two_nodes_writing_the_same_file_is_an_error(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    write_component(stack, "name: app\nsubcomponents:\n  - {name: app, type: static, path: m}\n")

    message = error_of(plan, tmp_path)

    assert message == (f"{shown(stack, 'component.yaml')}: subcomponents[0]: components 'app' and "
                       "'app/app' would both write generated/c/app.yaml; rename one of them")


def test_a_file_where_another_node_needs_a_folder_is_an_error(tmp_path: Path) -> None:
    """Inline `x` writes x.yaml; a non-inline `x.yaml` writes into the folder x.yaml/."""
    stack = tmp_path / "stack"
    write_component(stack, "name: app\nsubcomponents:\n  - {name: x, type: static, path: m}\n"
                    "  - {name: x.yaml, source: sub}\n")
    write_component(stack / "sub", "name: z\ntype: static\npath: m\n")

    message = error_of(plan, tmp_path)

    assert message == (f"{shown(stack, 'component.yaml')}: subcomponents[0]: component 'app/x' "
                       "would write generated/c/x.yaml, which component 'app/x.yaml' needs "
                       "as a folder; rename one of them")


@pytest.mark.parametrize(("text", "key"), [
    ("name: kustomization\n", "name"),
    ("name: app\nsubcomponents:\n  - {name: kustomization, type: static}\n", "subcomponents[0]"),
])
def test_a_component_named_kustomization_at_the_output_root_is_an_error(
        tmp_path: Path, text: str, key: str) -> None:
    stack = tmp_path / "stack"
    write_component(stack, text)

    message = error_of(plan, tmp_path)

    assert message.startswith(f"{shown(stack, 'component.yaml')}: {key}: component ")
    assert "would write kustomization.yaml, which Stackyard writes itself" in message


def test_a_component_named_kustomization_below_the_root_is_fine(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    write_component(stack, "name: app\nsubcomponents:\n  - {name: web, source: web}\n")
    write_component(stack / "web", "name: kustomization\n")

    assert str(plan(tmp_path)["app/web"].output) == "web/kustomization.yaml"


@pytest.mark.parametrize("name", ["kustomization.yaml", "provenance.json"])
def test_a_folder_named_as_a_file_stackyard_writes_is_an_error(tmp_path: Path,
                                                                name: str) -> None:
    stack = tmp_path / "stack"
    write_component(stack, f"name: app\nsubcomponents:\n  - {{name: {name}, source: web}}\n")
    write_component(stack / "web", "name: web\ntype: static\n")

    message = error_of(plan, tmp_path)

    assert f"would write {name}/web.yaml, which Stackyard writes itself" in message


def test_an_environments_folder_without_clusters_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "environments").mkdir()
    write_environment(tmp_path, "draft", "stack: ../stack\n").rename(
        tmp_path / "environments/draft.yml")

    assert environment_files(tmp_path / "environments") == []

    assert (f"{shown(tmp_path, 'environments')}: no clusters: add one file per cluster, "
            "<cluster>.yaml, with its `stack:`") in capsys.readouterr().err


def test_hidden_files_in_environments_are_no_clusters(tmp_path: Path) -> None:
    """An editor's lock (`.#c1.yaml`, a link to nowhere) or a hidden copy stops nothing."""
    write_environment(tmp_path, "c1", "stack: ../stack\n")
    (tmp_path / "environments/.#c1.yaml").symlink_to("user@host.1234:1700000000")
    write_environment(tmp_path, ".c2", "stack: ../stack\n")

    assert environment_files(tmp_path / "environments") == [tmp_path / "environments/c1.yaml"]


def test_a_non_ascii_name_in_an_ascii_locale_is_an_error_not_a_traceback(
        tmp_path: Path) -> None:
    """Under LC_ALL=C without Python's UTF-8 mode, file names are ASCII: a component named
    `wéb` cannot be written, and the error says how to run instead."""
    root = tmp_path / "fleet"
    install_dodo(root)
    write(root / "stacks/s/component.yaml",
          "name: s\nsubcomponents:\n- {name: wéb, type: static, path: m}\n")
    write(root / "stacks/s/m/a.yaml", "kind: A\n")
    write(root / "environments/c1.yaml", "stack: ../stacks/s\n")
    run = doit(root, env={**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0"})
    assert run.returncode != 0
    assert run.stderr.startswith("ERROR: stacks/s/component.yaml: subcomponents[0].name: "
                                 "'w\\xe9b' cannot be a file name in this process: its file "
                                 "names are ascii; run doit in a UTF-8 locale"), run.stderr


def test_a_cluster_name_must_be_ascii(tmp_path: Path) -> None:
    write_environment(tmp_path, "prod-zürich", "stack: ../stacks/s\n")
    with pytest.raises(StackyardError, match="start with an ASCII letter or digit and may "
                                             "only use ASCII letters"):
        load_environment(tmp_path / "environments" / "prod-zürich.yaml")
