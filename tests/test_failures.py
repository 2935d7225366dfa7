"""Bad input: a clear error naming file and key, a non-zero exit, previous output intact."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.doit_runner import (
    REPO,
    copy_example_fleet,
    doit,
    edit,
    install_dodo,
    snapshot,
    tmpfs,
    write,
)


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    root = copy_example_fleet(tmp_path / "fleet")
    assert doit(root).returncode == 0
    return root, snapshot(root / "generated")


def fails_cleanly(root: Path, before: dict[str, bytes], *expected: str) -> str:
    run = doit(root)
    message = run.stdout + run.stderr
    assert run.returncode != 0, message
    assert "Traceback" not in message, message
    for text in expected:
        assert text in message, message
    assert snapshot(root / "generated") == before, "previous output must stay intact"
    return message


def test_malformed_yaml_in_a_layer(built: tuple[Path, dict[str, bytes]]) -> None:
    root, before = built
    write(root / "stacks/platform/config/prod.yaml", "subcomponents:\n  web: [1\n")
    fails_cleanly(root, before, "stacks/platform/config/prod.yaml", "malformed YAML (line 3")


def test_an_alias_bomb_in_a_layer_is_refused(built: tuple[Path, dict[str, bytes]]) -> None:
    """Nine lines that aliases expand into a billion values: merging and digesting them
    would run out of memory, so the file is refused, as go-yaml (Fabrikate) refuses it."""
    root, before = built
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    write(root / "stacks/platform/config/prod.yaml", "\n".join(lines) + "\n")
    fails_cleanly(root, before, "stacks/platform/config/prod.yaml: YAML aliases expand 29 "
                  "values into 1,234,567,909")


@pytest.mark.parametrize(("value", "kind", "key"), [
    ("!!binary aGVsbG8=", "!!binary data", "labels.team"),
    ("!!set {a, b}", "a !!set", "labels.team"),
    ("[ok, !!binary aGVsbG8=]", "!!binary data", "labels.team[1]"),
])
def test_a_value_without_a_json_form(built: tuple[Path, dict[str, bytes]], value: str,
                                     kind: str, key: str) -> None:
    """Helm gets values as JSON; YAML's bytes and sets have no such form."""
    root, before = built
    path = root / "stacks/platform/config/common.yaml"
    edit(path, "team: platform", f"team: {value}")
    fails_cleanly(root, before,
                  f"stacks/platform/config/common.yaml: subcomponents.web.config.{key}: "
                  f"expected a string, number, boolean, null, list or mapping, got {kind}")


@pytest.mark.parametrize(("file", "old", "new", "expected"), [
    pytest.param("stacks/platform/config/common.yaml", "team: platform", "team: .nan",
                 ["stacks/platform/config/common.yaml: subcomponents.web.config.labels.team: "
                  "expected a finite number, got nan"], id="a-value-json-cannot-carry"),
    pytest.param("stacks/web/config/common.yaml",
                 "  image:\n    repository: nginx\n    tag: \"1.24\"\n", "  image: [nginx]\n",
                 ["stacks/web/config/common.yaml: config.image",
                  "stacks/platform/config/common.yaml (subcomponents.web.config.image)"],
                 id="map-against-list-names-both-files"),
    pytest.param("stacks/web/component.yaml", "hello-web", "hello-wbe",
                 ["stacks/web/component.yaml: path: no Helm chart at stacks/charts/hello-wbe"],
                 id="missing-chart-folder"),
    pytest.param("stacks/platform/component.yaml", "path: base", "path: bsae",
                 ["stacks/platform/component.yaml: subcomponents[0].path: static manifest "
                  "folder stacks/platform/bsae does not exist"],
                 id="missing-static-folder-names-the-entry"),
])
def test_one_bad_edit(built: tuple[Path, dict[str, bytes]], file: str, old: str, new: str,
                      expected: list[str]) -> None:
    """One edit to one file: an error naming file and key; the output stays as it was."""
    root, before = built
    edit(root / file, old, new)
    fails_cleanly(root, before, *expected)


@pytest.mark.parametrize(("entry", "message"), [
    ("- name: ..\n    source: ../web", "'..' cannot be a component name"),
    ("- name: ../../stacks\n    source: ../web", "'../../stacks' cannot be a component name"),
    ("- source: ../web", "a component needs a name"),
    (f"- name: {'x' * 251}\n    source: ../web",
     "a component name of 251 bytes is too long: it names the file <name>.yaml, so it may "
     "have at most 250 bytes"),
])
def test_a_name_that_is_not_one_path_segment(built: tuple[Path, dict[str, bytes]],
                                             entry: str, message: str) -> None:
    """Names become output folders: `..` would write outside `generated/<cluster>/`."""
    root, before = built
    path = root / "stacks/platform/component.yaml"
    edit(path, "- name: web\n    source: ../web", entry)
    fails_cleanly(root, before, f"stacks/platform/component.yaml: subcomponents[1].name: "
                  f"{message}")
    assert sorted(p.name for p in (root / "generated").iterdir()) == sorted(
        f.stem for f in (root / "environments").iterdir())


def test_a_listed_file_whose_name_no_file_can_have_is_not_in_the_way(
        built: tuple[Path, dict[str, bytes]]) -> None:
    """A `provenance.json` from a build that failed on an over-long name (or edited by
    hand) lists it: the file was never written, so there is nothing to remove."""
    root, _ = built
    provenance = root / "generated/dev/provenance.json"
    data = json.loads(provenance.read_text())
    data["files"][f"{'x' * 300}.yaml"] = {"component": "platform/x", "type": "static",
                                          "digest": "0" * 32, "bytes": 1}
    provenance.write_text(json.dumps(data))

    assert doit(root).executed == ["dev"]
    assert f"{'x' * 300}.yaml" not in json.loads(provenance.read_text())["files"]
    provenance.write_text(json.dumps(data))
    assert doit(root, "clean", "dev").returncode == 0
    assert not (root / "generated/dev").exists()


def test_malformed_json_component(built: tuple[Path, dict[str, bytes]]) -> None:
    root, before = built
    (root / "stacks/web/component.yaml").unlink()
    write(root / "stacks/web/component.json", '{"name": "web", "type": "helm",}')
    fails_cleanly(root, before, "stacks/web/component.json", "malformed JSON")


def test_helm_template_error_names_chart_template_and_line(
        built: tuple[Path, dict[str, bytes]]) -> None:
    root, before = built
    template = root / "stacks/charts/hello-web/templates/service.yaml"
    template.write_text(template.read_text() + "  broken: {{ .Values.nope.deeper }}\n")
    fails_cleanly(root, before, "render:dev:platform/web", "stacks/charts/hello-web",
                  "hello-web/templates/service.yaml:13", "nope.deeper")


def test_failing_hook_shows_its_output(built: tuple[Path, dict[str, bytes]]) -> None:
    root, before = built
    path = root / "stacks/web/component.yaml"
    path.write_text(path.read_text() + "hooks:\n  before-generate:\n"
                    "    - echo preparing; echo 'disk full' >&2; exit 3\n")
    fails_cleanly(root, before, "stacks/web/component.yaml: hooks.before-generate",
                  "exit code 3", "preparing", "disk full")


@pytest.mark.parametrize(("folder", "problem"), [
    ("../wbe", "component folder stacks/wbe does not exist"),
    ("../charts", "component folder stacks/charts has no component.yaml or component.json"),
])
def test_subcomponent_folder_without_a_definition_names_the_entry(
        built: tuple[Path, dict[str, bytes]], folder: str, problem: str) -> None:
    root, before = built
    path = root / "stacks/platform/component.yaml"
    edit(path, "source: ../web", f"source: {folder}")
    fails_cleanly(root, before,
                  f"stacks/platform/component.yaml: subcomponents[1].source: {problem}")


def test_stack_folder_without_a_definition_names_the_environment(
        built: tuple[Path, dict[str, bytes]]) -> None:
    root, before = built
    write(root / "environments/dev.yaml", "stack: ../stacks/charts\n")
    fails_cleanly(root, before, "environments/dev.yaml: stack: component folder stacks/charts "
                  "has no component.yaml or component.json")


def test_missing_stack_folder(built: tuple[Path, dict[str, bytes]]) -> None:
    root, before = built
    write(root / "environments/dev.yaml", "stack: ../stacks/platfrom\n")
    fails_cleanly(root, before, "environments/dev.yaml: stack", "does not exist")


def test_cycle_between_stacks(built: tuple[Path, dict[str, bytes]]) -> None:
    root, before = built
    path = root / "stacks/logging/component.yaml"
    path.write_text(path.read_text() + "  - name: again\n    source: ../platform\n")
    fails_cleanly(root, before, "stacks/logging/component.yaml: subcomponents[2]", "cycle")


def test_a_failing_cluster_does_not_stop_the_others(built: tuple[Path, dict[str, bytes]]) -> None:
    root, before = built
    template = root / "stacks/charts/hello-web/templates/service.yaml"
    annotated = template.read_text().replace("spec:", "  annotations: {rev: \"2\"}\nspec:")
    template.write_text('{{- if .Values.failHere }}{{ fail "asked to fail" }}{{ end }}\n'
                        + annotated)
    write(root / "stacks/platform/config/west.yaml",
          "subcomponents:\n  web:\n    config:\n      failHere: true\n")
    run = doit(root, "--continue")
    assert run.returncode != 0
    # on stderr, with the summary: a CI job may send stdout's list of tasks to a file
    assert "asked to fail" in run.stderr and "asked to fail" not in run.stdout, run.stdout
    assert "TaskFailed - taskid:render:prod-west:platform/web" in run.stderr
    assert ".  render:prod-west:platform/web" in run.stdout
    after = snapshot(root / "generated")
    for cluster, changed in (("prod-west", False), ("prod-east", True), ("dev", True)):
        key = f"{cluster}/web/web.yaml"
        assert (after[key] != before[key]) is changed, cluster
    assert {k: v for k, v in after.items() if k.startswith("prod-west/")} == \
        {k: v for k, v in before.items() if k.startswith("prod-west/")}


def test_unknown_layer_and_unknown_type_warn(built: tuple[Path, dict[str, bytes]]) -> None:
    root, _ = built
    write(root / "environments/dev.yaml", "stack: ../stacks/platform\nlayers: [dve]\n")
    path = root / "stacks/platform/component.yaml"
    edit(path, "type: static", "type: statik")
    run = doit(root)
    assert run.returncode == 0
    assert "environments/dev.yaml: layer 'dve' has no config file" in run.stderr
    assert "stacks/platform/component.yaml: subcomponents[0].type: unknown type 'statik'" \
        in run.stderr
    assert (root / "generated/dev/base.yaml").read_bytes() == b""


@pytest.mark.parametrize("name", ["list", "lock", "fetch"])
def test_a_cluster_named_like_a_doit_command_or_task(built: tuple[Path, dict[str, bytes]],
                                                     name: str) -> None:
    root, before = built
    write(root / f"environments/{name}.yaml", "stack: ../stacks/platform\n")
    fails_cleanly(root, before, f"environments/{name}.yaml", "name of a doit command")


def test_a_yml_environment_or_a_folder_is_ignored_with_a_warning(
        built: tuple[Path, dict[str, bytes]]) -> None:
    root, _ = built
    write(root / "environments/staging.yml", "stack: ../stacks/platform\n")
    write(root / "environments/eu/paris.yaml", "stack: ../../stacks/platform\n")
    run = doit(root)
    assert run.returncode == 0
    assert "environments/staging.yml: ignored: environment files end in .yaml or .json" \
        in run.stderr
    assert ("environments/eu: ignored: a folder; each cluster is one file directly in "
            "environments/") in run.stderr
    assert sorted(p.name for p in (root / "generated").iterdir()) == [
        "dev", "prod-east", "prod-west"]


@pytest.mark.parametrize("stored", [False, True])
def test_an_input_edited_during_the_build_fails_that_cluster_and_the_next_run_catches_up(
        tmp_path: Path, stored: bool) -> None:
    """A render whose cluster plan came from the cache plans it again; if an input changed
    after doit started, that plan no longer matches the task, and the render stops with a
    message instead of writing output the plan cache would then call current. A render
    already stored is not planned again: the cluster is written as planned when the run
    started, and the next run renders the edit."""
    root = tmp_path / "fleet"
    install_dodo(root)
    shutil.copytree(REPO / "stacks/charts/hello-web", root / "stacks/charts/hello-web")
    write(root / "stacks/s/component.yaml",
          "name: s\nhooks:\n  before-generate: [sh edit.sh]\n"
          "subcomponents:\n  - {name: web, type: helm, path: ../charts/hello-web}\n")
    write(root / "stacks/s/edit.sh",  # edits c2's layer while c1 renders, when asked to
          "if [ -f ../../edit-now ]; then\n"
          "  printf 'subcomponents:\\n  web:\\n    config:\\n      replicaCount: 7\\n'"
          " > config/c2.yaml\n"
          "fi\n")
    for cluster, replicas in (("c1", 2), ("c2", 3)):
        write(root / f"stacks/s/config/{cluster}.yaml",
              f"subcomponents:\n  web:\n    config:\n      replicaCount: {replicas}\n")
        write(root / f"environments/{cluster}.yaml", f"stack: ../stacks/s\nlayers: [{cluster}]\n")
    assert doit(root).returncode == 0
    before = snapshot(root / "generated")
    assert b"replicas: 3" in before["c2/web.yaml"]
    assert doit(root, "forget", "--all").returncode == 0  # all run; no plan made anew
    if not stored:
        for database in (root / ".stackyard").glob("renders.sqlite3*"):
            database.unlink()
    write(root / "edit-now", "")

    run = doit(root, "--continue")
    message = run.stdout + run.stderr
    assert (run.returncode != 0) is not stored, message
    assert ("c2: s/web: the inputs of c2 changed while doit was running" in message) \
        is not stored, message
    assert "Traceback" not in message, message
    assert snapshot(root / "generated") == before

    (root / "edit-now").unlink()
    again = doit(root)
    assert again.returncode == 0, again.stdout + again.stderr
    assert b"replicas: 7" in snapshot(root / "generated")["c2/web.yaml"]


def test_a_file_in_the_way_of_an_output_folder(built: tuple[Path, dict[str, bytes]]) -> None:
    """Someone left a file where a component's output folder goes: that cluster fails
    with the path, the others are written, and the next build after removing it heals."""
    root, _ = built
    folder = root / "generated/prod-east/web"
    shutil.rmtree(folder)
    folder.write_text("in the way\n")
    edit(root / "stacks/platform/config/common.yaml", "team: platform", "team: web-team")
    run = doit(root, "--continue")
    report = run.stdout + run.stderr
    assert run.returncode != 0 and "Traceback" not in report
    assert ("prod-east: cannot write generated/prod-east/web: a file is in the way of this "
            "folder") in report, report
    assert 'team: "web-team"' in (root / "generated/prod-west/web/web.yaml").read_text()
    folder.unlink()
    healed = doit(root)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert 'team: "web-team"' in (root / "generated/prod-east/web/web.yaml").read_text()


def test_a_chart_dependency_with_no_repository_and_not_vendored(
        built: tuple[Path, dict[str, bytes]]) -> None:
    root, before = built
    chart = root / "stacks/charts/hello-web/Chart.yaml"
    chart.write_text(chart.read_text() + "dependencies:\n- name: redis\n  version: 1.0.0\n")
    fails_cleanly(root, before, "stacks/web/component.yaml: chart stacks/charts/hello-web "
                  "needs dependencies that are not in its charts/ folder and not from an "
                  "http(s):// or oci:// repository or a repository alias: redis (no "
                  "repository); vendor them")


def test_a_link_to_nowhere_in_a_static_folder_fails_that_render(
        built: tuple[Path, dict[str, bytes]]) -> None:
    root, before = built
    (root / "stacks/platform/base/99-gone.yaml").symlink_to(root / "nowhere.yaml")
    fails_cleanly(root, before,
                  "dev: platform/base: stacks/platform/base/99-gone.yaml: No such file or "
                  "directory")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "small", "300k") as folder:
        yield folder


def test_a_full_disk_stops_with_messages_not_tracebacks(small_disk: Path) -> None:
    root = copy_example_fleet(small_disk / "fleet")
    run = doit(root)
    report = run.stdout + run.stderr
    assert run.returncode != 0
    assert "Traceback" not in report, report
    assert "database or disk is full" in report or "No space left on device" in report
    # room again: the next run finishes the build
    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
    again = doit(root)
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(p.name for p in (root / "generated").iterdir()) == [
        "dev", "prod-east", "prod-west"]
    assert doit(root).executed == []


@pytest.mark.parametrize(("make", "what"), [
    (lambda file: file.symlink_to(file.parent / "missing.yaml"),
     "a link to nowhere, or a loop of links"),
    (lambda file: file.mkdir(), "a folder"),
])
def test_a_cluster_file_that_cannot_be_read_is_no_deleted_cluster(
        built: tuple[Path, dict[str, bytes]], make: object, what: str) -> None:
    """An unchecked-out link must not read as a deleted environment, whose output goes."""
    root, before = built
    file = root / "environments/prod-west.yaml"
    file.unlink()
    make(file)  # type: ignore[operator]
    fails_cleanly(root, before, f"environments/prod-west.yaml: cluster 'prod-west' cannot be "
                                f"read: this is {what}")


def _replace_with_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _loop(path: Path) -> None:
    """`path` becomes a link to a link back to it."""
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    path.symlink_to(path.with_name(path.name + "-other"))
    path.with_name(path.name + "-other").symlink_to(path)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda root: _replace_with_folder(root / ".stackyard/doit.sqlite3"),
     ".stackyard/doit.sqlite3: a folder where doit keeps its state file; move it away"),
    (lambda root: _loop(root / "stacks/web/component.yaml"),
     "subcomponents[1].source: component folder stacks/web has no component.yaml"),
    (lambda root: _loop(root / "stacks/platform/config"),
     "stacks/platform/config: cannot list the layer files: Too many levels of symbolic links"),
    (lambda root: write(root / "stacks/web/component.yaml", "name: web\nx: &a {k: *a}\n"),
     "stacks/web/component.yaml: malformed YAML (line 2, column 4): an alias refers to a "
     "collection that contains it"),
], ids=["state-folder", "component-loop", "config-loop", "alias-loop"])
def test_damaged_state_and_inputs_fail_with_a_message(
        built: tuple[Path, dict[str, bytes]], damage: object, message: str) -> None:
    """Found by trying them: each was a Python traceback before."""
    root, before = built
    damage(root)  # type: ignore[operator]
    fails_cleanly(root, before, message)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda root: (root / ".stackyard").write_text("not a folder"),
     "ERROR: .stackyard: cannot make Stackyard's state folder: File exists"),
    (lambda root: (root / "generated").write_text("not a folder"),
     "generated: cannot use it as the output folder: Not a directory"),
], ids=["state-is-a-file", "output-is-a-file"])
def test_a_file_where_a_folder_belongs_fails_with_a_message(
        tmp_path: Path, damage: object, message: str) -> None:
    root = copy_example_fleet(tmp_path / "fleet")
    damage(root)  # type: ignore[operator]
    run = doit(root)
    assert run.returncode != 0 and "Traceback" not in run.stdout + run.stderr, run.stderr
    assert message in run.stdout + run.stderr, run.stdout + run.stderr


def test_a_negative_process_count_is_refused(built: tuple[Path, dict[str, bytes]]) -> None:
    root, _ = built
    edit(root / "stacks/platform/config/west.yaml", "web.west.example.com", "www.example.com")
    run = doit(root, "-n", "-1")
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stderr
    assert "-n -1: the number of processes must be at least 1" in run.stdout + run.stderr


def test_lock_named_after_a_cluster_says_how_to_run_both(
        built: tuple[Path, dict[str, bytes]]) -> None:
    """`lock` takes the rest of the command line as pins, so it runs first and alone;
    doit itself said only 'Invalid parameter: "lock"'."""
    root, before = built
    run = doit(root, "dev", "lock")
    assert run.returncode != 0
    assert run.stderr == ("ERROR: `lock` runs on its own, first on the command line (what "
                          "follows it names pins): run `doit lock`, then `doit dev`\n")
    assert snapshot(root / "generated") == before
