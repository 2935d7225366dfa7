"""One test per row of the table in docs/config-layering.md (L1, L2, ...).

Every test builds a small stack from real files in its own `tmp_path` and plans one cluster
through the real planner, then looks at each node's merged config.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rules.definitions import load_environment
from rules.errors import StackyardError
from rules.model import PlanNode
from rules.plan import plan_cluster
from rules.workspace import Workspace
from tests.helpers import write_component, write_config, write_environment


def plan(root: Path, cluster: str = "c") -> dict[str, PlanNode]:
    """Plan `environments/<cluster>.yaml`; the nodes by path (`app`, `app/web`, ...)."""
    environment = load_environment(root / "environments" / f"{cluster}.yaml")
    return {n.node_path: n for n in plan_cluster(environment, Workspace.at(root)).nodes}


def environment(root: Path, layers: str, extra: str = "") -> Path:
    """A cluster `c` running the stack in `<root>/stack` with the given `layers:` list."""
    extra = textwrap.dedent(extra)
    return write_environment(root, "c", f"stack: ../stack\nlayers: {layers}\n{extra}")


def app_with_web(root: Path) -> tuple[Path, Path]:
    """Root `app` with one non-inline child `web` in `stack/web`; returns both folders."""
    stack, web = root / "stack", root / "stack" / "web"
    write_component(stack, """\
        name: app
        subcomponents:
          - name: web
            source: web
        """)
    write_component(web, "name: web\n")
    return stack, web


# ---------------------------------------------------------------- order of layers


def test_L1_environment_inline_config_beats_every_file(tmp_path: Path) -> None:
    stack, web = app_with_web(tmp_path)
    write_config(stack, "prod", "config: {replicas: 2}\n")
    write_config(stack, "common", """\
        config: {replicas: 1}
        subcomponents:
          web: {config: {tier: stack}}
        """)
    write_config(web, "prod", "config: {tier: web}\n")
    environment(tmp_path, "[prod]", """\
        config:
          config: {replicas: 5}
          subcomponents:
            web: {config: {tier: cluster}}
        """)

    nodes = plan(tmp_path)

    assert nodes["app"].config.values == {"replicas": 5}
    assert nodes["app/web"].config.values == {"tier": "cluster"}


def test_L2_root_layers_apply_in_the_environments_order(tmp_path: Path) -> None:
    stack, _ = app_with_web(tmp_path)
    write_config(stack, "east", "config: {region: east}\n")
    write_config(stack, "prod", "config: {region: prod, size: large}\n")
    environment(tmp_path, "[east, prod, staging]")  # no staging file anywhere: skipped

    values = plan(tmp_path)["app"].config.values

    assert values == {"region": "east", "size": "large"}


def test_L3_root_common_is_below_every_listed_layer(tmp_path: Path) -> None:
    stack, _ = app_with_web(tmp_path)
    write_config(stack, "common", "config: {replicas: 1, logLevel: info}\n")
    write_config(stack, "prod", "config: {replicas: 3}\n")
    environment(tmp_path, "[prod]")

    values = plan(tmp_path)["app"].config.values

    assert values == {"replicas": 3, "logLevel": "info"}


def test_L4_ancestors_beat_descendants(tmp_path: Path) -> None:
    stack, web = app_with_web(tmp_path)
    write_component(web, """\
        name: web
        subcomponents:
          - name: api
            source: api
        """)
    write_component(web / "api", "name: api\n")
    # the parent's lowest file (common) still beats the child's highest (prod)
    write_config(stack, "common", """\
        subcomponents:
          web:
            config: {replicas: 2}
            subcomponents:
              api: {config: {owner: app}}
        """)
    write_config(web, "prod", """\
        config: {replicas: 9, port: 80}
        subcomponents:
          api: {config: {owner: web, debug: true}}
        """)
    write_config(web / "api", "prod", "config: {owner: api, debug: false, port: 8080}\n")
    environment(tmp_path, "[prod]")

    nodes = plan(tmp_path)

    assert nodes["app/web"].config.values == {"replicas": 2, "port": 80}
    assert nodes["app/web/api"].config.values == {"owner": "app", "debug": True, "port": 8080}


def test_L5_a_nodes_own_layer_files_beat_its_own_common(tmp_path: Path) -> None:
    _, web = app_with_web(tmp_path)
    write_config(web, "common", "config: {replicas: 1, port: 80, zone: any}\n")
    write_config(web, "prod", "config: {replicas: 3, zone: prod}\n")
    write_config(web, "east", "config: {zone: east}\n")
    environment(tmp_path, "[east, prod]")

    values = plan(tmp_path)["app/web"].config.values

    assert values == {"replicas": 3, "port": 80, "zone": "east"}


# ---------------------------------------------------------------- merging values


def test_L6_maps_merge_key_by_key(tmp_path: Path) -> None:
    stack, web = app_with_web(tmp_path)
    write_config(stack, "common", """\
        subcomponents:
          web:
            config:
              image: {tag: "1.25"}
              resources: {limits: {cpu: 500m}}
        """)
    write_config(web, "common", """\
        config:
          image: {repository: nginx, tag: "1.24"}
          resources: {limits: {memory: 128Mi}, requests: {cpu: 100m}}
        """)
    environment(tmp_path, "[]")

    values = plan(tmp_path)["app/web"].config.values

    assert values == {
        "image": {"repository": "nginx", "tag": "1.25"},
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                      "requests": {"cpu": "100m"}},
    }


def test_L7_lists_concatenate_higher_first(tmp_path: Path) -> None:
    stack, web = app_with_web(tmp_path)
    write_config(stack, "common", "subcomponents: {web: {config: {hosts: [p]}}}\n")
    write_config(web, "prod", "config: {hosts: [cp]}\n")
    write_config(web, "common", "config: {hosts: [cc]}\n")
    environment(tmp_path, "[prod]")

    values = plan(tmp_path)["app/web"].config.values

    assert values == {"hosts": ["p", "cp", "cc"]}


def test_L8_first_non_null_scalar_wins_even_empty_false_or_zero(tmp_path: Path) -> None:
    _, web = app_with_web(tmp_path)
    write_config(web, "prod", 'config: {suffix: "", enabled: false, replicas: 0, port: 8080}\n')
    write_config(web, "common", 'config: {suffix: -web, enabled: true, replicas: 3, port: "80"}\n')
    environment(tmp_path, "[prod]")

    values = plan(tmp_path)["app/web"].config.values

    assert values == {"suffix": "", "enabled": False, "replicas": 0, "port": 8080}


def test_L9_null_never_wins(tmp_path: Path) -> None:
    stack, web = app_with_web(tmp_path)
    write_config(stack, "prod", "config: ~\n")  # a whole `config:` that is null
    write_config(stack, "common", "config: {replicas: 2}\n")
    write_config(web, "prod", """\
        config:
          tag: ~
          resources:
          probes: {path: /healthz}
        """)
    write_config(web, "common", """\
        config:
          tag: "1.0"
          resources: {cpu: 1}
          probes: ~
        """)
    environment(tmp_path, "[prod]")

    nodes = plan(tmp_path)

    assert nodes["app"].config.values == {"replicas": 2}
    assert nodes["app/web"].config.values == {
        "tag": "1.0", "resources": {"cpu": 1}, "probes": {"path": "/healthz"},
    }


@pytest.mark.parametrize(("higher", "lower", "kinds"), [
    ("{repository: nginx}", "[nginx]", "is a list here but a mapping"),
    ("[nginx]", "nginx:1.25", "is a scalar here but a list"),
])
def test_L10_higher_map_or_list_over_another_kind_is_an_error(
        tmp_path: Path, higher: str, lower: str, kinds: str) -> None:
    stack, web = app_with_web(tmp_path)
    write_config(stack, "common", f"subcomponents: {{web: {{config: {{image: {higher}}}}}}}\n")
    write_config(web, "common", f"config: {{image: {lower}}}\n")
    environment(tmp_path, "[]")

    with pytest.raises(StackyardError) as caught:
        plan(tmp_path)

    message = str(caught.value)
    assert message.startswith("stack/web/config/common.yaml: config.image: ")
    assert kinds in message
    assert "stack/config/common.yaml (subcomponents.web.config.image)" in message


def test_L11_higher_scalar_over_a_map_or_list_is_fine(tmp_path: Path) -> None:
    _, web = app_with_web(tmp_path)
    write_config(web, "prod", "config: {image: nginx:1.25, hosts: none}\n")
    write_config(web, "common", "config: {image: {repository: nginx}, hosts: [a, b]}\n")
    environment(tmp_path, "[prod]")

    values = plan(tmp_path)["app/web"].config.values

    assert values == {"image": "nginx:1.25", "hosts": "none"}


# ---------------------------------------------------------------- namespace, disabled, inline


def test_L12_namespace_and_inject_namespace_travel_as_a_pair(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    write_component(stack, """\
        name: app
        subcomponents:
          - {name: only-inject, type: static, path: m}
          - {name: only-namespace, type: static, path: m}
          - {name: both, type: static, path: m}
          - {name: lower-only, type: static, path: m}
        """)
    write_config(stack, "prod", """\
        subcomponents:
          only-inject: {injectNamespace: true}
          only-namespace: {namespace: edge}
          both: {namespace: edge, injectNamespace: true}
        """)
    write_config(stack, "common", """\
        subcomponents:
          only-inject: {namespace: web}
          only-namespace: {namespace: web, injectNamespace: true}
          both: {namespace: web}
          lower-only: {namespace: web, injectNamespace: true}
        """)
    environment(tmp_path, "[prod]")

    nodes = plan(tmp_path)

    def pair(name: str) -> tuple[str, bool]:
        config = nodes[f"app/{name}"].config
        return config.namespace, config.inject_namespace

    assert pair("only-inject") == ("web", False)  # the lone inject is lost
    assert pair("only-namespace") == ("edge", False)  # injection turned off
    assert pair("both") == ("edge", True)
    assert pair("lower-only") == ("web", True)


def test_L13_disabled_is_decided_by_the_highest_layer_mentioning_the_child(
        tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    write_component(stack, """\
        name: app
        subcomponents:
          - {name: web, source: web}
          - {name: api, type: static, path: m}
          - {name: jobs, type: static, path: m}
        """)
    write_component(stack / "web", """\
        name: web
        subcomponents:
          - {name: sidecar, type: static, path: m}
        """)
    write_config(stack, "prod", """\
        subcomponents:
          api: {config: {replicas: 2}}   # mentions api without `disabled`: enabled
          jobs: {disabled: false}        # re-enables
        """)
    write_config(stack, "common", """\
        subcomponents:
          web: {disabled: true}
          api: {disabled: true}
          jobs: {disabled: true}
        """)
    environment(tmp_path, "[prod]")

    nodes = plan(tmp_path)

    assert sorted(nodes) == ["app", "app/api", "app/jobs"]  # web and its subtree are gone


def test_L14_disabled_at_the_top_of_a_nodes_own_file_has_no_effect(tmp_path: Path) -> None:
    stack, web = app_with_web(tmp_path)
    write_config(stack, "common", "disabled: true\n")
    write_config(web, "common", "disabled: true\nconfig: {replicas: 1}\n")
    environment(tmp_path, "[]")

    nodes = plan(tmp_path)

    assert sorted(nodes) == ["app", "app/web"]
    assert nodes["app/web"].config.values == {"replicas": 1}


def test_L15_inline_child_gets_exactly_the_parents_entry_for_it(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    write_component(stack, """\
        name: app
        subcomponents:
          - {name: grafana, type: helm, path: charts/grafana}
          - {name: extras, type: static, path: m}
        """)
    write_config(stack, "prod", """\
        namespace: apps
        injectNamespace: true
        config: {replicas: 2}
        subcomponents:
          grafana: {config: {adminUser: admin}}
        """)
    write_config(stack, "common", """\
        subcomponents:
          grafana:
            namespace: monitoring
            config: {adminUser: root, persistence: {enabled: false}}
        """)
    environment(tmp_path, "[prod]")

    nodes = plan(tmp_path)

    grafana = nodes["app/grafana"].config
    assert grafana.values == {"adminUser": "admin", "persistence": {"enabled": False}}
    assert (grafana.namespace, grafana.inject_namespace) == ("monitoring", False)
    extras = nodes["app/extras"].config  # no entry at all: nothing of the parent's
    assert (extras.values, extras.namespace, extras.inject_namespace) == ({}, "", False)


# ---------------------------------------------------------------- YAML dialect


def test_L16_yaml_1_1_booleans_string_keys_and_string_timestamps(tmp_path: Path) -> None:
    stack, _ = app_with_web(tmp_path)
    write_config(stack, "common", """\
        config:
          a: y
          b: n
          c: on
          d: Off
          e: yes
          f: "y"
          released: 2020-01-01
          at: 2001-12-14t21:59:43.10-05:00
          version: 1.20
          1: one
          true: t
        """)
    environment(tmp_path, "[]")

    values = plan(tmp_path)["app"].config.values

    assert values == {
        "a": True, "b": False, "c": True, "d": False, "e": True, "f": "y",
        "released": "2020-01-01", "at": "2001-12-14t21:59:43.10-05:00", "version": 1.2,
        "1": "one", "true": "t",
    }


def test_L16_sexagesimal_looking_values_stay_strings(tmp_path: Path) -> None:
    stack, _ = app_with_web(tmp_path)
    write_config(stack, "common", "config: {ports: [22:22], backup: 1:30}\n")
    environment(tmp_path, "[]")

    values = plan(tmp_path)["app"].config.values

    assert values == {"ports": ["22:22"], "backup": "1:30"}


def test_L16_a_plain_equals_sign_is_a_string(tmp_path: Path) -> None:
    stack, _ = app_with_web(tmp_path)
    write_config(stack, "common", "config: {separator: =}\n")
    environment(tmp_path, "[]")

    values = plan(tmp_path)["app"].config.values

    assert values == {"separator": "="}


def test_L16_exponent_floats_without_a_dot_are_numbers(tmp_path: Path) -> None:
    stack, _ = app_with_web(tmp_path)
    write_config(stack, "common", "config: {maxBytes: 1e3, ratio: 1.5e3}\n")
    environment(tmp_path, "[]")

    values = plan(tmp_path)["app"].config.values

    assert values == {"maxBytes": 1000.0, "ratio": 1500.0}


GO_YAML_V2_SCALARS = {
    # strconv.ParseInt(text without underscores, 0, 64): prefixes in either case
    "0X1F": 31, "0o644": 420, "0O17": 15, "0B101": 5, "0x1F": 31, "0644": 420, "-0x1F": -31,
    "+12": 12, "1_000": 1000, "-_1": -1, "0_x1F": 31, "00": 0,
    "9223372036854775807": 2**63 - 1, "-9223372036854775808": -2**63,
    # then ParseUint, then a float of yamlStyleFloat's form that ParseFloat finds in range
    "18446744073709551615": 2**64 - 1, "18446744073709551616": 1.8446744073709552e19,
    "+9223372036854775808": 9.223372036854776e18, "08": 8.0, "0_8": 8.0, "1.": 1.0,
    "1_e_5": 100000.0, "-.5": -0.5, "1e-400": 0.0,
    "1e400": "1e400", "0x10000000000000000": "0x10000000000000000", "0o8": "0o8",
    "0x1.8p1": "0x1.8p1", "+Inf": "+Inf", "-.nan": "-.nan", "_1": "_1", "12e": "12e",
    # go-yaml's own binary fallback: 0b, then a signed binary number
    "0b-101": -5, "0B-101": "0B-101",
    # a leading dot: ParseFloat of the text as written (an underscore only between digits)
    ".5": 0.5, ".5_5": 0.55, "._5": "._5", ".5e_1": ".5e_1", ".5e400": ".5e400",
}


def test_L16_numbers_are_read_as_go_yaml_v2_reads_them(tmp_path: Path) -> None:
    """go-yaml v2 resolves a plain scalar with Go's strconv (base prefixes 0x, 0o, 0b in
    either case; out of range, a float or the text), not with YAML 1.1's patterns."""
    stack, _ = app_with_web(tmp_path)
    write_config(stack, "common", "config:\n" + "".join(
        f"  k{index}: {text}\n" for index, text in enumerate(GO_YAML_V2_SCALARS)))
    environment(tmp_path, "[]")

    values = plan(tmp_path)["app"].config.values

    read = {text: values[f"k{index}"] for index, text in enumerate(GO_YAML_V2_SCALARS)}
    assert {text: (type(value), value) for text, value in read.items()} == {
        text: (type(value), value) for text, value in GO_YAML_V2_SCALARS.items()}


# ---------------------------------------------------------------- the `layers:` list


def test_L17_common_may_not_be_listed(tmp_path: Path) -> None:
    app_with_web(tmp_path)
    env = environment(tmp_path, "[prod, common]")

    with pytest.raises(StackyardError) as caught:
        load_environment(env)

    assert "environments/c.yaml: layers[1]: " in str(caught.value)
    assert "`common` is always applied last" in str(caught.value)


def test_L18_a_layer_listed_twice_is_an_error(tmp_path: Path) -> None:
    app_with_web(tmp_path)
    env = environment(tmp_path, "[prod, east, prod]")

    with pytest.raises(StackyardError) as caught:
        load_environment(env)

    assert "environments/c.yaml: layers[2]: " in str(caught.value)
    assert "'prod' is listed twice" in str(caught.value)


def test_L19_a_layer_with_no_file_anywhere_in_the_stack_warns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack, web = app_with_web(tmp_path)
    write_config(stack, "prod", "config: {replicas: 2}\n")
    write_config(web, "east", "config: {zone: east}\n")  # only in a child folder: found
    environment(tmp_path, "[prod, east, prdo]")

    nodes = plan(tmp_path)

    warnings = capsys.readouterr().err
    assert "environments/c.yaml: layer 'prdo' has no config file" in warnings
    assert "'prod'" not in warnings
    assert "'east'" not in warnings
    assert nodes["app"].config.values == {"replicas": 2}


def test_L19_a_layer_used_only_beside_a_pointer_root_does_not_warn(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = tmp_path / "stack"
    write_component(stack, "name: infra\nmethod: git\nsource: https://example.com/infra.git\n")
    write_config(stack, "prod", "config: {replicas: 2}\n")
    write_component(stack / "components" / "infra", "name: infra-remote\n")
    environment(tmp_path, "[prod]")

    nodes = plan(tmp_path)

    assert nodes["infra-remote"].config.values == {"replicas": 2}  # the layer was used
    assert "has no config file" not in capsys.readouterr().err


def test_L20_config_for_a_subcomponent_that_does_not_exist_warns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack, _ = app_with_web(tmp_path)
    write_config(stack, "common", "subcomponents:\n  wbe: {config: {replicas: 2}}\n")
    environment(tmp_path, "[]", "config:\n  subcomponents:\n    api: {disabled: true}\n")

    nodes = plan(tmp_path)

    warnings = capsys.readouterr().err
    assert ("stack/config/common.yaml: subcomponents.wbe: 'app' has no subcomponent named "
            "'wbe'") in warnings
    assert "environments/c.yaml: config.subcomponents.api: " in warnings
    assert nodes["app/web"].config.values == {}
