"""Incrementality, read from doit's own report of the tasks it executed."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rules.render_store import RenderStore
from tests.doit_runner import REPO, copy_example_fleet, doit, edit, install_dodo, snapshot, write


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """The bundled example fleet, copied and built once."""
    root = copy_example_fleet(tmp_path / "fleet")
    first = doit(root)
    assert first.returncode == 0, first.stdout + first.stderr
    assert len(first.renders) == 15
    return root


def test_nothing_changed_runs_nothing(fleet: Path) -> None:
    run = doit(fleet)
    assert run.returncode == 0
    assert run.executed == []


def test_a_no_op_build_writes_no_state(fleet: Path) -> None:
    """The file-digest memo was saved with its `changed` flag set, so it loaded changed and
    every no-op pickled and wrote it again; doit recorded the `render` group task on every
    run (a read-only checkout could not run a no-op)."""
    assert doit(fleet).executed == []  # the first build's outputs are known now
    state = {name: (fleet / ".stackyard" / name).read_bytes()
             for name in ("plans.sqlite3", "renders.sqlite3", "doit.sqlite3")}
    assert doit(fleet).executed == []
    assert {name: (fleet / ".stackyard" / name).read_bytes() for name in state} == state


def test_touching_every_input_runs_nothing(fleet: Path) -> None:
    for path in list((fleet / "stacks").rglob("*")) + list((fleet / "environments").rglob("*")):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    assert doit(fleet).executed == []


def test_one_clusters_inline_config_rerenders_that_node_only(fleet: Path) -> None:
    edit(fleet / "environments/prod-east.yaml", "cluster: prod-east", "cluster: prod-east-1")
    assert doit(fleet).executed == ["render:prod-east:platform/web", "prod-east"]


def test_a_shared_layer_rerenders_the_nodes_it_reaches_in_every_cluster(fleet: Path) -> None:
    edit(fleet / "stacks/logging/config/common.yaml", "port: 24224", "port: 24225")
    run = doit(fleet)
    # dev disables logging, so only the prod clusters' shippers are reached
    assert sorted(run.renders) == ["render:prod-east:platform/logging/shipper",
                                   "render:prod-west:platform/logging/shipper"]
    assert sorted(set(run.executed) - set(run.renders)) == ["prod-east", "prod-west"]


def test_a_region_layer_rerenders_only_clusters_in_that_region(fleet: Path) -> None:
    edit(fleet / "stacks/platform/config/west.yaml", "web.west.example.com", "www.west.example")
    assert doit(fleet).executed == ["render:prod-west:platform/web", "prod-west"]


def test_an_edit_in_a_copy_of_a_built_fleet_is_seen_there(fleet: Path, tmp_path: Path) -> None:
    """The copy's plan cache names the original's files, which are still there unchanged:
    they must not stand for the copy's own."""
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(fleet), str(copy)], check=True)
    edit(copy / "stacks/platform/config/west.yaml", "web.west.example.com", "www.west.example")
    assert doit(copy).executed == ["render:prod-west:platform/web", "prod-west"]
    assert "www.west.example" in (copy / "generated/prod-west/web/web.yaml").read_text()
    assert doit(fleet).executed == []


def test_a_comment_in_a_layer_changes_nothing(fleet: Path) -> None:
    path = fleet / "stacks/platform/config/prod.yaml"
    path.write_text("# reviewed\n" + path.read_text())
    assert doit(fleet).executed == []


def test_an_edit_with_its_mtime_restored_is_still_seen(fleet: Path) -> None:
    path = fleet / "stacks/web/config/common.yaml"
    before = path.stat()
    edit(path, "repository: nginx", "repository: nginx-unprivileged")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert sorted(doit(fleet).renders) == ["render:dev:platform/web",
                                           "render:prod-east:platform/web",
                                           "render:prod-west:platform/web"]


def test_inject_namespace_alone_rerenders_and_changes_the_output(fleet: Path) -> None:
    """The namespace stays `web`; only whether it is written into each object changes."""
    output = fleet / "generated/dev/web/web.yaml"
    assert output.read_text().count("  namespace: web\n") == 3
    edit(fleet / "stacks/platform/config/common.yaml", "injectNamespace: true",
         "injectNamespace: false")
    assert sorted(doit(fleet).renders) == ["render:dev:platform/web",
                                           "render:prod-east:platform/web",
                                           "render:prod-west:platform/web"]
    assert "namespace:" not in output.read_text()


def test_chart_template_change_rerenders_its_users_only(fleet: Path) -> None:
    template = fleet / "stacks/charts/log-shipper/templates/configmap.yaml"
    template.write_text(template.read_text() + "  extra: \"1\"\n")
    run = doit(fleet)
    assert sorted(run.renders) == ["render:prod-east:platform/logging/shipper",
                                   "render:prod-west:platform/logging/shipper"]


def test_one_cluster_on_the_command_line(fleet: Path) -> None:
    edit(fleet / "stacks/web/config/common.yaml", "repository: nginx",
         "repository: nginx-unprivileged")
    run = doit(fleet, "dev")
    assert run.executed == ["render:dev:platform/web", "dev"]
    assert "nginx-unprivileged" not in (fleet / "generated/prod-west/web/web.yaml").read_text()


def test_a_deleted_output_file_is_restored_without_rendering(fleet: Path) -> None:
    target = fleet / "generated/prod-west/logging/shipper.yaml"
    expected = target.read_bytes()
    target.unlink()
    run = doit(fleet)
    assert run.executed == ["prod-west"]
    assert target.read_bytes() == expected


def test_a_pattern_that_names_no_task_is_an_error(fleet: Path) -> None:
    """doit would run nothing and exit 0: a typo in CI would pass unnoticed."""
    for command in (("render:prod-eest:*",), ("clean", "render:prod-eest:*")):
        run = doit(fleet, *command)
        assert run.returncode != 0 and run.executed == []
        assert "no task matches 'render:prod-eest:*' (`doit list --all` lists them)" \
            in run.stderr, run.stderr
    fine = doit(fleet, "render:prod-east:*", "prod-*")
    assert fine.returncode == 0 and fine.executed == [], fine.stderr


def test_doit_info_on_a_name_that_is_no_task_is_an_error_not_a_traceback(fleet: Path) -> None:
    run = doit(fleet, "info", "render:prod-east:platform/wbe")
    assert run.returncode != 0
    assert run.stderr.strip() == ("ERROR: 'render:prod-east:platform/wbe' is not a task; did "
                                  "you mean 'render:prod-east:platform/web'? (`doit list --all` "
                                  "lists them)"), run.stderr
    assert doit(fleet, "info", "render:prod-east:platform/web").returncode == 0


def test_info_takes_no_pattern_and_a_typo_gets_a_suggestion(fleet: Path) -> None:
    """doit's own answers were a traceback (`info` with a pattern) and 'Invalid parameter'."""
    for command in ("info", "forget", "list", "ignore"):
        run = doit(fleet, command, "render:prod-east:*")
        assert run.returncode != 0
        assert run.stderr.strip() == (f"ERROR: 'render:prod-east:*': `doit {command}` takes "
                                      "exact task names, not patterns (`doit list --all` "
                                      "lists them)"), run.stderr
    run = doit(fleet, "PROD-EAST")
    assert run.stderr.strip() == ("ERROR: 'PROD-EAST' is not a task; did you mean "
                                  "'prod-east'? (`doit list --all` lists them)"), run.stderr
    for command in (("prod-easst",), ("forget", "prod-easst"), ("list", "prod-easst")):
        run = doit(fleet, *command)
        assert run.returncode != 0 and run.executed == []
        assert run.stderr.strip() == ("ERROR: 'prod-easst' is not a task; did you mean "
                                      "'prod-east'? (`doit list --all` lists them)"), run.stderr


def test_another_state_file_on_the_command_line_is_doit_s_to_read(fleet: Path) -> None:
    """Pruning reads Stackyard's own state file; with `--db-file`, doit decides from that
    file alone, as it does for any dodo (a new file: every task runs once)."""
    before = snapshot(fleet / "generated")
    other = ("--db-file", ".stackyard/other.sqlite3")
    first = doit(fleet, *other)
    assert first.returncode == 0, first.stderr
    assert len(first.renders) == 15 and len(first.executed) == 18
    assert snapshot(fleet / "generated") == before
    assert doit(fleet, *other).executed == []
    assert doit(fleet).executed == []


def test_always_execute_runs_every_task(fleet: Path) -> None:
    """`doit -a` promises every task, up to date or not: nothing may be left out."""
    before = snapshot(fleet / "generated")
    run = doit(fleet, "-a")
    assert run.returncode == 0, run.stderr
    assert len(run.renders) == 15 and len(run.executed) == 18
    assert "15 renders (15 found in the store), 3 clusters written" in run.stderr
    assert snapshot(fleet / "generated") == before
    assert doit(fleet).executed == []


def test_forget_makes_a_task_run_again(fleet: Path) -> None:
    assert doit(fleet, "forget", "render:dev:platform/web").returncode == 0
    assert doit(fleet).renders == ["render:dev:platform/web"]


def test_forget_makes_a_cluster_task_run_again(fleet: Path) -> None:
    assert doit(fleet, "forget", "dev").returncode == 0
    assert doit(fleet).executed == ["dev"]
    assert doit(fleet).executed == []


def test_list_and_info_see_up_to_date_tasks(fleet: Path) -> None:
    listing = doit(fleet, "list", "--all")
    assert "render:prod-east:platform/logging/shipper" in listing.stdout
    info = doit(fleet, "info", "render:prod-east:platform/web")
    assert info.returncode == 0
    assert "up-to-date" in info.stdout


def test_disabling_a_component_removes_its_files(fleet: Path) -> None:
    write(fleet / "environments/prod-west.yaml", "stack: ../stacks/platform\nlayers: [west, prod]\n"
          "config:\n  subcomponents:\n    logging: {disabled: true}\n")
    mine = fleet / "generated/prod-west/logging/notes.txt"
    mine.write_text("not written by stackyard")
    run = doit(fleet)
    assert run.executed == ["prod-west"]
    folder = fleet / "generated/prod-west"
    assert not (folder / "logging/shipper.yaml").exists()
    assert mine.exists(), "files the tool did not write are left alone"
    assert "logging/" not in (folder / "kustomization.yaml").read_text()


@pytest.mark.parametrize("kind", ["process", "thread"])
def test_parallel_build_matches_serial(fleet: Path, kind: str) -> None:
    serial = snapshot(fleet / "generated")
    shutil.rmtree(fleet / "generated")
    shutil.rmtree(fleet / ".stackyard")
    run = doit(fleet, "-n", "2", "-P", kind)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(run.renders) == 15
    assert snapshot(fleet / "generated") == serial


def test_dodo_is_reusable_in_another_folder(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "monorepo"
    write(other / "stacks/only/component.yaml", "name: only\ntype: static\npath: manifests\n")
    write(other / "stacks/only/manifests/a.yaml", "kind: ConfigMap\n")
    write(other / "environments/solo.yaml", "stack: ../stacks/only\n")
    install_dodo(other)
    run = doit(other)
    assert run.returncode == 0, run.stderr
    assert (other / "generated/solo/only.yaml").read_bytes() == b"---\nkind: ConfigMap\n\n"


@pytest.mark.parametrize("direction", ["file to folder", "folder to file"])
def test_a_component_renamed_into_its_old_files_place_is_written(tmp_path: Path,
                                                                 direction: str) -> None:
    """Inline `x` writes x.yaml; non-inline `x.yaml` writes x.yaml/inner.yaml. The old
    file (or folder) stood where the new one goes, and every build failed on it."""
    root = tmp_path / "fleet"
    write(root / "stacks/s/m/a.yaml", "kind: A\n")
    write(root / "stacks/x/m/b.yaml", "kind: B\n")
    write(root / "stacks/x/component.yaml", "name: inner\ntype: static\npath: m\n")
    write(root / "environments/c1.yaml", "stack: ../stacks/s\n")
    install_dodo(root)
    inline = "name: s\nsubcomponents:\n  - {name: x, type: static, path: m}\n"
    folder = "name: s\nsubcomponents:\n  - {name: x.yaml, source: ../x}\n"
    first, second = (inline, folder) if direction == "file to folder" else (folder, inline)
    write(root / "stacks/s/component.yaml", first)
    assert doit(root).returncode == 0
    write(root / "stacks/s/component.yaml", second)
    run = doit(root)
    assert run.returncode == 0, run.stdout + run.stderr
    expected = "x.yaml/inner.yaml" if second == folder else "x.yaml"
    assert (root / "generated/c1" / expected).is_file()
    assert doit(root).executed == []


def test_a_dodo_in_a_sub_folder_names_files_from_the_repository_root(
        tmp_path: Path) -> None:
    """README: a `rules/` package at the root is avoided with `doit -f ci/dodo.py`; doit
    then runs in ci/, and messages named files by absolute paths."""
    root = tmp_path / "monorepo"
    write(root / "stacks/only/component.yaml", "name: only\ntype: static\npath: manifests\n")
    write(root / "stacks/only/config/common.yaml", "config: [not, a, mapping]\n")
    write(root / "environments/solo.yaml", "stack: ../stacks/only\n")
    readme_line = "ROOT = Path(__file__).absolute().parent.parent.resolve()"
    assert f"`{readme_line}`" in (REPO / "README.md").read_text()
    dodo = (REPO / "dodo.py").read_text()
    write(root / "ci/dodo.py", re.sub(r"(?m)^ROOT = .*$", readme_line, dodo))
    run = doit(root, "-f", "ci/dodo.py")
    assert run.returncode != 0
    assert run.stderr.startswith("ERROR: stacks/only/config/common.yaml: config: "), run.stderr


def test_a_linked_dodo_builds_the_repository_it_is_in(tmp_path: Path) -> None:
    """Many repositories may link one shared dodo.py: each build writes its own repository,
    not the one the link points to."""
    shared, linked = tmp_path / "shared", tmp_path / "linked"
    for root in (shared, linked):
        write(root / "stacks/only/component.yaml",
              "name: only\ntype: static\npath: manifests\n")
        write(root / "stacks/only/manifests/cm.yaml", f"kind: ConfigMap\n# {root.name}\n")
        write(root / "environments/solo.yaml", "stack: ../stacks/only\n")
    install_dodo(shared)
    (linked / "dodo.py").symlink_to(shared / "dodo.py")
    run = doit(linked)
    assert run.returncode == 0, run.stderr
    assert "# linked" in (linked / "generated/solo/only.yaml").read_text()
    assert not (shared / "generated").exists()


def test_info_explains_which_layer_and_key_changed(fleet: Path) -> None:
    edit(fleet / "stacks/platform/config/west.yaml", "web.west.example.com", "www.west.example")
    info = doit(fleet, "info", "render:prod-west:platform/web")
    assert info.returncode == 1, "doit info exits 1 for a task that is not up to date"
    assert ('config.ingress.host changed from "web.west.example.com" to "www.west.example", '
            "set in stacks/platform/config/west.yaml (subcomponents.web.config.ingress.host)"
            ) in info.stdout


def test_info_tells_a_number_from_a_boolean(fleet: Path) -> None:
    """`1` and `true` are equal in Python but not in the values Helm is given."""
    edit(fleet / "stacks/platform/config/dev.yaml", "replicaCount: 1", "replicaCount: true")
    info = doit(fleet, "info", "render:dev:platform/web")
    assert ('config.replicaCount changed from 1 to true, set in stacks/platform/config/dev.yaml'
            in info.stdout), info.stdout


def test_info_explains_added_and_removed_keys_and_shortens_long_lists(fleet: Path) -> None:
    web = fleet / "stacks/platform/config/west.yaml"
    edit(web, "        region: west\n", "".join(f"        z{i}: {i}\n" for i in range(13)))
    info = doit(fleet, "info", "render:prod-west:platform/web").stdout
    assert 'config.labels.region is no longer set (was "west")' in info
    assert ("config.labels.z0 is now set to 0, set in stacks/platform/config/west.yaml "
            "(subcomponents.web.config.labels.z0)") in info
    assert "config.labels.z12 is now set to 12" in info  # sorted as text: z0, z1, z10...
    assert "z9 is now set" not in info and "... and 2 more changes" in info
    doit(fleet, "forget", "render:prod-west:platform/web")
    forgotten = doit(fleet, "info", "render:prod-west:platform/web").stdout
    assert ("the render is out of date (doit has no record of its last run: it failed, was "
            "ignored or forgotten; compared with generated/prod-west/web/web.yaml):"
            ) in forgotten, forgotten
    assert 'config.labels.region is no longer set (was "west")' in forgotten
    shutil.rmtree(fleet / "generated/prod-west")
    assert "no earlier render is recorded (first build, a new component" in doit(
        fleet, "info", "render:prod-west:platform/web").stdout


def test_info_names_the_layer_whose_part_of_a_list_changed(fleet: Path) -> None:
    """Lists join across layers: the highest layer holding the list is not the one changed."""
    config = fleet / "stacks/platform/config"
    west, prod = config / "west.yaml", config / "prod.yaml"
    edit(west, "        region: west\n", "        region: west\n      args: [a]\n")
    edit(prod, "      replicaCount: 3\n", "      replicaCount: 3\n      args: [low-1]\n")
    assert doit(fleet).returncode == 0
    edit(prod, "[low-1]", "[low-2]")
    info = doit(fleet, "info", "render:prod-west:platform/web").stdout
    assert ('config.args[1] changed from "low-1" to "low-2", set in '
            "stacks/platform/config/prod.yaml (subcomponents.web.config.args[0])") in info, info
    edit(prod, "[low-2]", "[low-2, low-3]")
    info = doit(fleet, "info", "render:prod-west:platform/web").stdout
    assert ('config.args changed from ["a", "low-1"] to ["a", "low-2", "low-3"], the list '
            "joining stacks/platform/config/west.yaml (subcomponents.web.config.args), "
            "stacks/platform/config/prod.yaml (subcomponents.web.config.args)") in info, info


def test_info_shows_where_long_values_differ(fleet: Path) -> None:
    west = fleet / "stacks/platform/config/west.yaml"
    flags = ", ".join(f"--flag-number-{i}=on" for i in range(6))
    edit(west, "        region: west\n", f"        region: west\n      args: [{flags}]\n")
    assert doit(fleet).returncode == 0
    edit(west, "--flag-number-5=on]", "--flag-number-5=on, --flag-number-6=on]")
    info = doit(fleet, "info", "render:prod-west:platform/web").stdout
    assert ('config.args changed from ..."--flag-number-5=on"] to ..."--flag-number-5=on", '
            '"--flag-number-6=on"], set in stacks/platform/config/west.yaml') in info, info


@pytest.mark.parametrize(("layer", "old", "new", "task", "reasons"), [
    # `""` wins over a lower layer's value (spec §3.4): it is the cause, not the lower one
    ("east", "        region: east\n", '        region: east\n        team: ""\n', "prod-east",
     ['config.labels.team changed from "platform" to "", set in stacks/platform/config/'
      "east.yaml (subcomponents.web.config.labels.team)"]),
    # injectNamespace comes with the namespace of the layer that sets one (spec §3.5)
    ("west", "  web:\n", "  web:\n    namespace: web-west\n", "prod-west",
     ['namespace changed from "web" to "web-west", set in stacks/platform/config/west.yaml '
      "(subcomponents.web.namespace)",
      "injectNamespace changed from true to false, taken with the namespace set in "
      "stacks/platform/config/west.yaml (subcomponents.web.namespace)"]),
])
def test_info_names_the_layer_that_decides_a_value(fleet: Path, layer: str, old: str, new: str,
                                                   task: str, reasons: list[str]) -> None:
    edit(fleet / f"stacks/platform/config/{layer}.yaml", old, new)
    info = doit(fleet, "info", f"render:{task}:platform/web").stdout
    for reason in reasons:
        assert reason in info, info


def test_info_after_a_failed_render_says_what_changed_since_the_written_one(fleet: Path) -> None:
    """doit drops the record of a task that failed: the output folder still says which
    render it holds."""
    template = fleet / "stacks/charts/hello-web/templates/service.yaml"
    template.write_text('{{- if .Values.boom }}{{ fail "boom" }}{{ end }}\n'
                        + template.read_text())
    assert doit(fleet).returncode == 0
    edit(fleet / "stacks/platform/config/west.yaml", "        region: west\n",
         "        region: west\n      boom: true\n")
    assert doit(fleet).returncode != 0
    info = doit(fleet, "info", "render:prod-west:platform/web").stdout
    assert "(doit has no record of its last run: it failed" in info, info
    assert "config.boom is now set to true, set in stacks/platform/config/west.yaml" in info


def test_info_on_a_cluster_names_a_provenance_only_change(fleet: Path) -> None:
    """The two layers set different keys: reordering them changes no render."""
    edit(fleet / "environments/prod-east.yaml", "layers: [east, prod]", "layers: [prod, east]")
    info = doit(fleet, "info", "prod-east").stdout
    assert ('generated/prod-east/ is out of date (provenance.json to update: layers '
            '["east", "prod", "common"] -> ["prod", "east", "common"])') in info, info
    assert doit(fleet).executed == ["prod-east"]


def test_info_explains_a_chart_change(fleet: Path) -> None:
    template = fleet / "stacks/charts/log-shipper/templates/configmap.yaml"
    template.write_text(template.read_text() + "  extra: \"1\"\n")
    write(fleet / "stacks/charts/log-shipper/templates/NOTES.txt", "new\n")
    (fleet / "stacks/charts/log-shipper/templates/daemonset.yaml").unlink()
    (fleet / "stacks/charts/log-shipper/values.yaml").chmod(0o755)
    info = doit(fleet, "info", "render:prod-east:platform/logging/shipper")
    assert ("the content of stacks/charts/log-shipper changed: templates/NOTES.txt added, "
            "templates/configmap.yaml changed, templates/daemonset.yaml removed, "
            "values.yaml made executable") in info.stdout, info.stdout
    cluster = doit(fleet, "info", "prod-east")
    assert "generated/prod-east/ is out of date (to write: logging/shipper.yaml)" \
        in cluster.stdout


def test_info_names_a_changed_definition_field_and_an_input_no_longer_read(
        fleet: Path) -> None:
    shutil.copytree(fleet / "stacks/charts/hello-web", fleet / "stacks/charts/hello-web-2")
    edit(fleet / "stacks/web/component.yaml", "../charts/hello-web", "../charts/hello-web-2")
    edit(fleet / "stacks/platform/component.yaml", "    path: base\n",
         "    path: base\n    version: v2\n")
    web = doit(fleet, "info", "render:dev:platform/web").stdout
    assert ("        stacks/web/component.yaml: top level: `path` changed from "
            '"../charts/hello-web" to "../charts/hello-web-2"\n'
            "        now reads stacks/charts/hello-web-2\n"
            "        no longer reads stacks/charts/hello-web (args=[], kwargs={})") in web, web
    base = doit(fleet, "info", "render:dev:platform/base").stdout
    assert ("        stacks/platform/component.yaml: subcomponents[0]: `version` changed from "
            '"" to "v2" (args=[], kwargs={})') in base, base


def test_a_removed_environment_retires_its_output(fleet: Path) -> None:
    (fleet / "environments/prod-west.yaml").unlink()
    mine = fleet / "generated/prod-west/notes.txt"
    mine.write_text("not written by stackyard")
    run = doit(fleet)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.executed == ["retire:prod-west"]
    assert sorted(p.name for p in (fleet / "generated/prod-west").rglob("*")) == ["notes.txt"]
    assert doit(fleet).executed == []


@pytest.mark.parametrize("damage", ['{"files": ', '{"files": 5}', '{"files": {"a": 1}}',
                                    '<<<<<<< HEAD\n{"files": {}}\n=======\n'])
def test_a_damaged_provenance_file_stops_the_cluster_until_restored(
        fleet: Path, damage: str) -> None:
    """It says which files Stackyard wrote: without it, files of a removed component
    would stay in the output for ever. A clear error; deleting the folder recovers."""
    before = snapshot(fleet / "generated")
    (fleet / "environments/dev.yaml").write_text(
        (fleet / "environments/dev.yaml").read_text() + "config: {subcomponents: {web: "
        "{disabled: true}}}\n")
    (fleet / "generated/dev/provenance.json").write_text(damage)
    damaged = snapshot(fleet / "generated")
    for command in ((), ("info", "dev"), ("clean", "dev")):
        run = doit(fleet, *command)
        assert run.returncode != 0
        assert ("generated/dev/provenance.json: not the provenance file this tool writes (a "
                "merge conflict? a hand edit?), so which files it wrote before is unknown; "
                "restore it from git, or delete the folder generated/dev/ (a build writes it "
                "anew while its cluster has an environment file)") in run.stdout + run.stderr, \
            run.stdout + run.stderr
    assert snapshot(fleet / "generated") == damaged
    shutil.rmtree(fleet / "generated/dev")
    run = doit(fleet)
    assert run.returncode == 0, run.stdout + run.stderr
    after = snapshot(fleet / "generated")
    assert "dev/web/web.yaml" in before and "dev/web/web.yaml" not in after
    assert after["dev/base.yaml"] == before["dev/base.yaml"]


def test_names_in_provenance_outside_the_folder_are_never_removed(
        fleet: Path, tmp_path: Path) -> None:
    """provenance.json is committed, so anyone may edit it: what it names is removed only
    inside the cluster's folder, not through a link."""
    outside = tmp_path / "precious.yaml"
    outside.write_text("keep\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/also.yaml").write_text("keep\n")
    os.symlink(tmp_path / "elsewhere", fleet / "generated/dev/link")
    provenance = fleet / "generated/dev/provenance.json"
    data = json.loads(provenance.read_text())
    for name in (str(outside), "../../../precious.yaml", "link/also.yaml"):
        data["files"][name] = {"component": "x", "type": "static", "digest": "d", "bytes": 5}
    provenance.write_text(json.dumps(data))
    run = doit(fleet)
    assert run.returncode == 0, run.stdout + run.stderr
    assert outside.read_text() == "keep\n"
    assert (tmp_path / "elsewhere/also.yaml").read_text() == "keep\n"
    assert run.executed == ["dev"] and str(outside) not in provenance.read_text()


def test_a_damaged_doit_state_is_started_again(fleet: Path) -> None:
    """doit itself stops with a traceback on it; the renders are still in the store."""
    before = snapshot(fleet / "generated")
    (fleet / ".stackyard/doit.sqlite3").write_bytes(b"this is not a database" * 100)
    run = doit(fleet)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ignoring unreadable doit state" in run.stderr and "Traceback" not in run.stderr
    assert len(run.renders) == 15  # every task runs once more, its render found stored
    assert snapshot(fleet / "generated") == before
    assert doit(fleet).executed == []


def test_a_damaged_plan_cache_is_rebuilt(fleet: Path) -> None:
    (fleet / ".stackyard/plans.sqlite3").write_bytes(b"this is not a database" * 100)
    run = doit(fleet)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ignoring unreadable plan cache" in run.stderr
    assert run.renders == [], "the renders are still current: only the plan was rebuilt"
    assert doit(fleet).stderr == ""


def test_a_damaged_render_store_is_rebuilt(fleet: Path) -> None:
    for suffix in ("-wal", "-shm"):
        (fleet / f".stackyard/renders.sqlite3{suffix}").unlink(missing_ok=True)
    (fleet / ".stackyard/renders.sqlite3").write_bytes(b"this is not a database" * 100)
    before = snapshot(fleet / "generated")
    (fleet / "generated/dev/web/web.yaml").unlink()
    run = doit(fleet)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ignoring a damaged render store" in run.stderr
    # no output can be checked against renders that are gone: all render again, and the
    # folders are written back as they were
    assert len(run.renders) == 15
    assert snapshot(fleet / "generated") == before
    assert doit(fleet).executed == []


def _clean_build(fleet: Path, where: Path) -> dict[str, bytes]:
    """What a build of `fleet`'s inputs from nothing writes to generated/."""
    shutil.copytree(fleet, where, ignore=shutil.ignore_patterns(".stackyard", "generated"))
    run = doit(where)
    assert run.returncode == 0, run.stdout + run.stderr
    return snapshot(where / "generated")


def _store_in_one_file(fleet: Path) -> Path:
    """The render store with its write-ahead log moved into the main file and gone."""
    database = fleet / ".stackyard/renders.sqlite3"
    connection = sqlite3.connect(database)
    connection.execute("pragma wal_checkpoint(truncate)").fetchall()
    connection.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    return database


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_a_render_store_cut_short_is_started_again(
        fleet: Path, tmp_path: Path, workers: list[str]) -> None:
    """A cache tool that cut the file short: damage SQLite finds in a query, not at open.
    Every build failed with a traceback until the user deleted the file."""
    database = _store_in_one_file(fleet)
    os.truncate(database, database.stat().st_size // 2)
    edit(fleet / "stacks/platform/config/west.yaml", "web.west.example.com", "www.west.example")

    run = doit(fleet, *workers)

    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert run.stderr.count("warning: .stackyard/renders.sqlite3: ignoring a damaged render "
                            "store (database disk image is malformed)") == 1, run.stderr
    assert len(run.renders) == 15
    assert snapshot(fleet / "generated") == _clean_build(fleet, tmp_path / "clean")
    again = doit(fleet)
    assert again.executed == [] and again.stderr == "", again.stdout + again.stderr


def test_a_damaged_render_store_is_not_deleted_under_a_running_build(fleet: Path) -> None:
    """Another process holds the build lock (a build, or the main process of `doit -n`
    whose worker finds the damage): deleting the file would lose what that one writes."""
    database = _store_in_one_file(fleet)
    database.write_bytes(b"this is not a database" * 100)
    with open(fleet / ".stackyard/build.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        info = doit(fleet, "info", "render:dev:platform/web")
    assert info.returncode != 0 and "Traceback" not in info.stderr, info.stdout + info.stderr
    assert (".stackyard/renders.sqlite3: cannot use a damaged render store (file is not a "
            "database): another Stackyard process is using it; once it has finished, delete "
            "renders.sqlite3 (and its -wal and -shm files) and build again") in info.stderr
    assert database.read_bytes() == b"this is not a database" * 100


@pytest.mark.parametrize("change", [
    "alter table rendered add column extra text",
    "alter table fingerprints add column extra text",
    "alter table listings add column extra text",
    "pragma user_version = 99",
])
def test_a_render_store_of_another_version_is_started_again(
        fleet: Path, tmp_path: Path, change: str) -> None:
    """A CI cache restored from a branch on another Stackyard: every render failed ('table
    rendered has 4 columns but 3 values were supplied'), or a traceback."""
    database = _store_in_one_file(fleet)
    with sqlite3.connect(database) as connection:
        connection.execute(change)
    connection.close()
    edit(fleet / "stacks/platform/config/west.yaml", "web.west.example.com", "www.west.example")

    run = doit(fleet)

    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stderr.count("warning: .stackyard/renders.sqlite3: ignoring a render store of "
                            "another Stackyard version") == 1, run.stderr
    assert snapshot(fleet / "generated") == _clean_build(fleet, tmp_path / "clean")
    again = doit(fleet)
    assert again.executed == [] and again.stderr == "", again.stdout + again.stderr


@pytest.mark.parametrize("name", ["doit.sqlite3", "plans.sqlite3", "renders.sqlite3"])
def test_a_state_file_this_user_cannot_open_is_a_clear_error(fleet: Path, name: str) -> None:
    """A CI cache restored by another user under umask 077 (owner only, mode 0600): doit
    stopped with its traceback ('unable to open database file'). As root, the file goes to
    another user and the build runs without root's right to open any file."""
    database = fleet / ".stackyard" / name
    command = [sys.executable, "-m", "doit"]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop root's file access")
        os.chown(database, 65534, 65534)
        os.chmod(database, 0o600)
        drop = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", *command]
    else:
        os.chmod(database, 0)
    run = subprocess.run(command, cwd=fleet, capture_output=True, text=True, check=False,
                         timeout=600)
    assert run.returncode != 0 and "Traceback" not in run.stderr, run.stdout + run.stderr
    assert f"ERROR: .stackyard/{name}: cannot open" in run.stderr, run.stderr
    assert f"unable to open database file: .stackyard/{name} belongs to " in run.stderr
    assert "read and write it (chown or chmod), or delete it" in run.stderr


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_the_sqlite3_files_alone_are_a_whole_cache(tmp_path: Path, workers: list[str]) -> None:
    """A CI cache of `.stackyard/*.sqlite3` kept the render store without its write-ahead
    log, where the renders were (SQLite moves them into the file when the last connection
    closes, and none was closed): every render was made again."""
    fleet = copy_example_fleet(tmp_path / "fleet")
    assert doit(fleet, *workers).returncode == 0
    restored = tmp_path / "restored"
    shutil.copytree(fleet, restored, ignore=shutil.ignore_patterns(".stackyard", "generated"))
    (restored / ".stackyard").mkdir()
    for database in (fleet / ".stackyard").glob("*.sqlite3"):
        shutil.copy(database, restored / ".stackyard")

    run = doit(restored)

    assert run.returncode == 0, run.stdout + run.stderr
    assert run.executed == ["dev", "prod-east", "prod-west"], run.stdout + run.stderr
    assert snapshot(restored / "generated") == snapshot(fleet / "generated")


def test_a_render_missing_from_the_store_is_out_of_date_when_named(fleet: Path) -> None:
    """doit's record alone does not make a render current: the output task reads the
    render from the store, so a deleted store must bring it back, also for a named task
    (which keeps doit's own check)."""
    for suffix in ("", "-wal", "-shm"):
        (fleet / f".stackyard/renders.sqlite3{suffix}").unlink(missing_ok=True)
    info = doit(fleet, "info", "render:dev:platform/web")
    assert info.returncode == 1, info.stdout + info.stderr
    assert "the render is out of date:\n        no earlier render is recorded" in info.stdout
    run = doit(fleet, "render:dev:platform/web")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.executed == ["render:dev:platform/web"]
    assert "up-to-date" in doit(fleet, "info", "render:dev:platform/web").stdout


def test_unused_renders_are_dropped_once_they_pile_up_and_their_space_given_back(
        fleet: Path) -> None:
    path = fleet / ".stackyard/renders.sqlite3"
    store = RenderStore(path)
    used = store.count()
    for index in range(2 * used + 101):
        store.put(f"old-{index:04d}", b"---\nkind: Old\n" + b"#" * 100_000,
                  json.dumps({"inputs": {"stacks/old": f"tree-{index}"}}))
    store.put_listings("old", {f"tree-{index}": {"a.yaml": "0\0x"} for index in range(3)})
    listed = {digest for (digest,) in sqlite3.connect(path).execute("select digest from listings")}
    assert {"tree-0", "tree-1", "tree-2"} < listed
    assert store.count() > 2 * used + 100
    assert path.stat().st_size > 5_000_000
    assert doit(fleet).executed == []
    assert RenderStore(path).count() == used
    assert path.stat().st_size < 1_000_000
    # the listings of folders only dropped renders read go with them; the others stay
    kept = {digest for (digest,) in sqlite3.connect(path).execute("select digest from listings")}
    assert kept == listed - {"tree-0", "tree-1", "tree-2"} and kept, kept


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o644), (0o077, 0o600)])
def test_output_files_are_readable_by_all_unless_the_umask_says_otherwise(
        fleet: Path, umask: int, mode: int) -> None:
    """Mode 0644 less the umask: what the GitOps agent or a reviewer reads is readable, and
    a private umask is respected."""
    shutil.rmtree(fleet / "generated")
    before = os.umask(umask)  # doit inherits it
    try:
        run = doit(fleet)
    finally:
        os.umask(before)
    assert run.executed == ["dev", "prod-east", "prod-west"], run.stdout + run.stderr
    written = [p for p in (fleet / "generated").rglob("*") if p.is_file()]
    assert {"kustomization.yaml", "provenance.json", "web.yaml"} <= {p.name for p in written}
    assert {oct(p.stat().st_mode & 0o777) for p in written} == {oct(mode)}


def test_doit_clean_removes_a_clusters_output(fleet: Path) -> None:
    run = doit(fleet, "clean", "dev")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout == "dev - executing 'Python: remove what Stackyard wrote in generated/dev/'\n"
    assert not (fleet / "generated/dev").exists()
    assert (fleet / "generated/prod-east/kustomization.yaml").is_file()
    assert doit(fleet).executed == ["dev"], "the renders are still in the store"


@pytest.mark.parametrize(("file", "old", "new"), [
    ("web/web.yaml", "replicas: 3", "replicas: 9"),
    ("kustomization.yaml", "- base.yaml", "- bAse.yaml"),
    ("provenance.json", '"type": "static"', '"type": "STATIC"'),
])
def test_a_hand_edit_of_the_output_is_repaired_without_rendering(
        fleet: Path, file: str, old: str, new: str) -> None:
    """Same size, so only the content tells; the renders are stored, so nothing renders."""
    before = snapshot(fleet / "generated")
    edit(fleet / "generated/prod-west" / file, old, new)

    run = doit(fleet)

    assert run.returncode == 0, run.stdout + run.stderr
    assert run.executed == ["prod-west"]
    assert snapshot(fleet / "generated") == before
    assert doit(fleet).executed == []


def test_a_render_store_of_an_earlier_version_gets_fingerprints(fleet: Path) -> None:
    """Renders stored before they had fingerprints get them when first needed."""
    database = fleet / ".stackyard/renders.sqlite3"
    connection = sqlite3.connect(database)
    with connection:
        connection.execute("drop table fingerprints")
        connection.execute("pragma user_version = 0")  # from before the store had one
    connection.close()
    before = snapshot(fleet / "generated")

    run = doit(fleet)

    assert run.returncode == 0 and run.executed == [], run.stdout + run.stderr
    assert snapshot(fleet / "generated") == before
    connection = sqlite3.connect(database)
    assert connection.execute("select count(*) from fingerprints").fetchone() == \
        connection.execute("select count(*) from rendered").fetchone()
    connection.close()


def test_provenance_follows_a_change_that_leaves_every_render_as_it_was(fleet: Path) -> None:
    """Pointing a cluster at a copy of its stack and back changes no render, but
    provenance.json names the stack: the output must still be what a fresh build writes."""
    shutil.copytree(fleet / "stacks/platform", fleet / "stacks/platform-v2")
    environment = fleet / "environments/dev.yaml"
    original = environment.read_text()
    environment.write_text(original.replace("stacks/platform", "stacks/platform-v2"))
    assert doit(fleet).returncode == 0
    assert '"stack": "stacks/platform-v2"' in (fleet / "generated/dev/provenance.json").read_text()
    environment.write_text(original)
    run = doit(fleet)
    assert run.returncode == 0 and run.renders == [], run.stdout + run.stderr
    kept = snapshot(fleet / "generated")
    shutil.rmtree(fleet / ".stackyard")
    shutil.rmtree(fleet / "generated")
    assert doit(fleet).returncode == 0
    assert snapshot(fleet / "generated") == kept


def test_a_revert_leaves_doit_s_records_agreeing_with_the_build(fleet: Path) -> None:
    """A→B→A: the renders of A are still in the store, so nothing runs Helm, but each
    render task goes to doit so that its record is A's again (`doit info` said "run" for
    ever, and a render with hooks did not run its hooks)."""
    environment = fleet / "environments/prod-east.yaml"
    original = environment.read_text()
    environment.write_text(original.replace("layers: [east, prod]", "layers: []"))
    assert doit(fleet).returncode == 0
    environment.write_text(original)
    run = doit(fleet)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "render:prod-east:platform/web" in run.executed
    assert "found in the store" in run.stderr
    info = doit(fleet, "info", "render:prod-east:platform/web")
    assert info.returncode == 0 and "up-to-date" in info.stdout, info.stdout
    assert doit(fleet).executed == []


def test_an_option_after_a_task_name_is_doits_to_refuse(fleet: Path) -> None:
    """`-v 2` after a task name: doit says the option is not one of the task's; the value
    `2` is not a mistyped task name."""
    run = doit(fleet, "dev", "-v", "2")
    assert run.returncode != 0 and run.executed == []
    assert "option -v not recognized" in run.stderr and "not a task" not in run.stderr, \
        run.stderr


def test_info_on_lock_says_why_it_always_runs(fleet: Path) -> None:
    info = doit(fleet, "info", "lock")
    assert ("- `doit lock` asks every pinned source for its newest commit or version"
            in info.stdout), info.stdout
