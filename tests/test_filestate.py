"""The file-digest memo and folder digests (`rules/filestate.py`), on real files and through
real builds."""

from __future__ import annotations

import os
import pickle
import re
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest

from rules.filestate import RACY_NS, FileState, content_digest
from tests.doit_runner import copy_example_fleet, doit, edit, one_cluster_fleet, write


def chart(folder: Path) -> Path:
    """A minimal local chart with one template."""
    write(folder / "Chart.yaml", "apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    write(folder / "templates/cm.yaml",
          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n")
    return folder


def test_a_loop_of_links_is_an_error_naming_the_link_and_shared_links_work(
        tmp_path: Path) -> None:
    one_cluster_fleet(tmp_path, "{name: web, type: helm, path: ../charts/tiny}")
    templates = chart(tmp_path / "stacks/charts/tiny") / "templates"
    (templates / "a").symlink_to(".")  # two links back: the walk was exponential
    (templates / "b").symlink_to(".")
    run = doit(tmp_path, timeout=60)
    assert run.returncode != 0
    assert re.search(r"ERROR: stacks/charts/tiny/templates/[ab]: a link to "
                     "stacks/charts/tiny/templates, a folder that contains the link: a loop "
                     "of links", run.stderr), run.stderr
    # two links to one folder outside the loop are read twice, as Helm reads them
    for name in "ab":
        (templates / name).unlink()
        (templates / name).symlink_to("../../shared", target_is_directory=True)
    write(tmp_path / "stacks/charts/shared/extra.yaml",
          "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra-{{ .Template.Name | base }}\n")
    run = doit(tmp_path, timeout=60)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "generated/c1/web.yaml").read_text().count("name: extra-") == 2
    assert doit(tmp_path).executed == []


def test_file_names_that_are_not_utf8_are_digested_rendered_and_named_readably(
        tmp_path: Path) -> None:
    one_cluster_fleet(tmp_path, "{name: web, type: helm, path: ../charts/tiny}",
                      "{name: base, type: static, path: base}")
    chart(tmp_path / "stacks/charts/tiny")
    base = os.fsencode(tmp_path / "stacks/s/base")
    os.makedirs(base)
    for name, text in ((b"caf\xe9.yaml", b"kind: A\n"), ("caf\u9000.yaml".encode(), b"kind: B\n"),
                       (b"bad\xff.yaml", b"a: [\n")):
        with open(os.path.join(base, name), "wb") as handle:
            handle.write(text)
    with open(os.fsencode(tmp_path / "stacks/charts/tiny/templates") + b"/notes\xe9.txt",
              "wb") as handle:
        handle.write(b"# not a manifest\n")  # rendered, as Helm renders every template
    run = doit(tmp_path)
    assert run.returncode == 0, run.stderr
    assert "stacks/s/base/bad\\xff.yaml: not valid YAML" in run.stderr
    # in the order of the names' bytes, as Fabrikate (Go) lists a folder: caf\xe9 first
    assert (tmp_path / "generated/c1/base.yaml").read_bytes() == \
        b"---\na: [\n\n---\nkind: A\n\n---\nkind: B\n\n"
    assert doit(tmp_path).executed == []


def test_a_chart_at_the_repository_root_becomes_up_to_date(tmp_path: Path) -> None:
    """Its folder holds `.stackyard/` and `generated/` (rewritten by each build) and `.git`:
    none of them is chart content."""
    one_cluster_fleet(tmp_path)
    write(tmp_path / "environments/c1.yaml", "stack: ..\n")
    write(tmp_path / "component.yaml", "name: root\ntype: helm\npath: .\n")
    chart(tmp_path)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    assert doit(tmp_path).renders == ["render:c1:root"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "built"], check=True)
    assert doit(tmp_path).executed == []
    assert doit(tmp_path).executed == []
    write(tmp_path / "templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\n"
          "metadata:\n  name: other\n")
    assert doit(tmp_path).renders == ["render:c1:root"]
    # stacks.lock, which builds rewrite, is no chart content either
    write(tmp_path / "stacks.lock", "sources: []\n")
    assert doit(tmp_path).executed == []


@pytest.mark.parametrize("folder", ["sub", ".git"])
def test_a_new_empty_folder_in_a_static_folder_fails_the_next_build_as_a_clean_one(
        tmp_path: Path, folder: str) -> None:
    """A static folder may hold only files: an empty sub-folder (or a `.git` one) that
    appears must change the folder's digest, not leave the stored render in place."""
    one_cluster_fleet(tmp_path, "{name: m, type: static, path: m}")
    write(tmp_path / "stacks/s/m/a.yaml", "a: 1\n")
    assert doit(tmp_path).renders == ["render:c1:s", "render:c1:s/m"]
    (tmp_path / "stacks/s/m" / folder).mkdir()
    run = doit(tmp_path)
    assert run.returncode != 0
    assert f"contains a sub-folder {folder!r}" in run.stdout + run.stderr


def test_a_renamed_chart_file_renders_again_under_its_new_name(tmp_path: Path) -> None:
    """Same bytes under another name: Helm names the template in `# Source:`."""
    one_cluster_fleet(tmp_path, "{name: web, type: helm, path: ../charts/tiny}")
    templates = chart(tmp_path / "stacks/charts/tiny") / "templates"
    assert doit(tmp_path).renders == ["render:c1:s", "render:c1:s/web"]
    output = tmp_path / "generated/c1/web.yaml"
    assert "# Source: tiny/templates/cm.yaml\n" in output.read_text()
    (templates / "cm.yaml").rename(templates / "configmap.yaml")
    assert doit(tmp_path).renders == ["render:c1:s/web"]
    assert "# Source: tiny/templates/configmap.yaml\n" in output.read_text()


def test_the_executable_bit_of_a_file_changes_the_folder_digest(tmp_path: Path) -> None:
    """A hook or a chart may run or ship the file: its mode is content."""
    files = FileState()
    script = write(tmp_path / "run.sh", "echo hi\n")
    plain = files.tree_digest(tmp_path)
    script.chmod(0o755)
    assert files.tree_digest(tmp_path) != plain
    script.chmod(0o644)
    assert files.tree_digest(tmp_path) == plain


def test_what_a_git_folder_holds_is_no_content_but_the_folder_is(tmp_path: Path) -> None:
    files = FileState()
    write(tmp_path / "a.yaml", "a: 1\n")
    bare = files.tree_digest(tmp_path)
    (tmp_path / ".git").mkdir()
    with_git = files.tree_digest(tmp_path)
    write(tmp_path / ".git/HEAD", "ref: refs/heads/main\n")
    assert bare != with_git == files.tree_digest(tmp_path)


def test_a_chart_at_the_repository_root_with_a_file_dependency_renders(
        tmp_path: Path) -> None:
    """Its copy with the dependency placed in charts/ leaves out what the digest leaves
    out: copying `.stackyard/` into `.stackyard/charts/` never ended."""
    one_cluster_fleet(tmp_path)
    write(tmp_path / "environments/c1.yaml", "stack: ..\n")
    write(tmp_path / "component.yaml", "name: root\ntype: helm\npath: .\n")
    chart(tmp_path)
    chart(tmp_path / "deps/inner").joinpath("Chart.yaml").write_text(
        "apiVersion: v2\nname: inner\nversion: 0.2.0\n")
    write(tmp_path / "Chart.yaml", "apiVersion: v2\nname: tiny\nversion: 0.1.0\n"
          "dependencies:\n- {name: inner, version: 0.2.0, repository: 'file://deps/inner'}\n")
    run = doit(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "generated/c1/root.yaml").read_text().count("kind: ConfigMap") == 2
    assert doit(tmp_path).executed == []


def changed_ago(info: os.stat_result, seconds: float) -> os.stat_result:
    """`info` as `os.stat` gives it once the file's last change is `seconds` in the past
    (ctime cannot be set, and waiting for it costs seconds)."""
    shift = int(seconds * 1e9)
    return os.stat_result(tuple(info), {"st_mtime_ns": info.st_mtime_ns - shift,
                                        "st_ctime_ns": info.st_ctime_ns - shift})


def test_an_edit_in_the_tick_a_file_was_hashed_in_is_seen(tmp_path: Path) -> None:
    """On coarse timestamps (ext3, HFS+, FAT: whole seconds; any file system within one
    clock tick), a same-size edit in the tick the file was hashed in leaves inode, size,
    mtime and ctime as they were: only the content tells. The stat taken before the edit
    stands for the one such a file system gives after it."""
    path = write(tmp_path / "values.yaml", "replicas: 1\n")
    name, unchanged = os.fspath(path), os.stat(path)
    files = FileState()
    assert files._digest(name, unchanged) == content_digest(b"replicas: 1\n")
    path.write_bytes(b"replicas: 2\n")
    assert files._digest(name, unchanged) == content_digest(b"replicas: 2\n")
    saved = pickle.loads(pickle.dumps(files))  # the memo as the next run loads it
    assert saved._digest(name, unchanged) == content_digest(b"replicas: 2\n")
    assert name not in files.digests


def test_a_file_whose_change_is_past_the_tick_is_read_once(tmp_path: Path) -> None:
    """Once its change is RACY_NS in the past, the digest is remembered by the stat: no-op
    runs read nothing (an edit with the same stat, which no clock then gives, goes unread)."""
    path = write(tmp_path / "values.yaml", "replicas: 1\n")
    name, old = os.fspath(path), changed_ago(os.stat(path), RACY_NS / 1e9 + 1)
    files = FileState()
    assert files._digest(name, old) == content_digest(b"replicas: 1\n")
    path.write_bytes(b"replicas: 2\n")
    saved = pickle.loads(pickle.dumps(files))
    assert saved._digest(name, old) == content_digest(b"replicas: 1\n")
    assert saved.digests[name] == ((old.st_ino, old.st_size, old.st_mtime_ns,
                                    old.st_ctime_ns), content_digest(b"replicas: 1\n"))


def saved_state(root: Path) -> tuple[FileState, list[str]]:
    """The file-digest memo and the paths of the parsed files, as the plan cache holds them."""
    with closing(sqlite3.connect(root / ".stackyard/plans.sqlite3")) as database:
        (memo,) = database.execute("select data from entries where name = ?",
                                   ("\0files",)).fetchone()
        parsed = [path for (path,) in database.execute("select path from layers")]
    return pickle.loads(memo), parsed


def test_the_memo_and_parsed_files_forget_what_the_fleet_no_longer_reads(
        tmp_path: Path) -> None:
    root = copy_example_fleet(tmp_path / "a")
    time.sleep(RACY_NS / 1e9)  # the copy is then old enough to be remembered
    assert doit(root).returncode == 0
    time.sleep(RACY_NS / 1e9)  # and the output
    assert doit(root).executed == []
    quota = os.fspath(root / "stacks/platform/base/10-quota.yaml")
    east = os.fspath(root / "generated/prod-east/web/web.yaml")
    assert {quota, east} <= saved_state(root)[0].digests.keys()
    os.unlink(quota)
    edit(root / "stacks/platform/config/dev.yaml", "\n", "\n# a comment\n")
    assert doit(root, "dev").returncode == 0  # a partial run keeps the other clusters' outputs
    files, _ = saved_state(root)
    assert quota not in files.digests
    assert east in files.digests
    size = len(files.digests)
    for name in "bcd":  # a CI runner that checks out to a new path each job
        moved = tmp_path / name
        root.rename(moved)
        root = moved
        assert doit(root).returncode == 0
        files, parsed = saved_state(root)
        assert len(files.digests) <= size
        assert all(path.startswith(f"{root}{os.sep}") for path in files.digests)
        assert parsed
        assert all(path.startswith(f"{root}{os.sep}") for path in parsed)
