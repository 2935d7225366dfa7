"""Output files are never seen half-written, and a killed writer litters only the scratch
folder in `.stackyard/`, which the next build clears."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from rules import atomic
from rules.atomic import fresh_temp_folder, remove_abandoned
from tests.doit_runner import (
    REPO,
    copy_example_fleet,
    doit,
    edit,
    install_dodo,
    other_file_system,
    snapshot,
    write,
)

SIZE = 4_000_000


def test_a_killed_writer_leaves_whole_files_and_temp_files_only_in_scratch(
        tmp_path: Path) -> None:
    out, scratch = tmp_path / "generated", tmp_path / "scratch"
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""\
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from rules.atomic import write_atomic
        count = 0
        while True:
            write_atomic({str(out)!r} + f"/f{{count % 5}}.yaml",
                         bytes([65 + count % 26]) * {SIZE}, {str(scratch)!r})
            count += 1
        """)])
    deadline = time.monotonic() + 30
    while len(list(out.glob("f*.yaml"))) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    writer.send_signal(signal.SIGKILL)
    writer.wait()

    names = sorted(os.listdir(out))
    assert names == [f"f{i}.yaml" for i in range(5)], names
    for name in names:  # each file is one whole write: its size, one letter throughout
        content = (out / name).read_bytes()
        assert len(content) == SIZE and content == content[:1] * SIZE
    leftovers = os.listdir(scratch)
    assert len(leftovers) <= 1
    assert remove_abandoned(scratch) == len(leftovers)
    assert os.listdir(scratch) == []


def test_temp_files_of_live_processes_are_kept(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    alive = subprocess.Popen(["sleep", "30"])
    try:
        another_writer = write(tmp_path / f".a.yaml.{alive.pid}-0badc0de.1.tmp", "writing")
        mine = write(tmp_path / f".b.yaml.{os.getpid()}-{atomic._RUN_TOKEN}.2.tmp", "writing")
        abandoned = write(tmp_path / f".c.yaml.{gone.pid}-0badc0de.7.tmp", "half")
        # a killed run in an earlier container that had this process's id
        earlier_namesake = write(tmp_path / f".d.yaml.{os.getpid()}-0badc0de.3.tmp", "half")
        unrelated = write(tmp_path / "notes.txt", "not a temp file")
        # a hook's private copy of a checkout (a folder), of a killed and of a live build
        abandoned_copy = write(tmp_path / f".hooks-c1.{gone.pid}-0badc0de.4.tmp/m/a.yaml",
                               "a: 1").parent.parent
        live_copy = write(tmp_path / f".hooks-c2.{alive.pid}-0badc0de.5.tmp/a.yaml", "a: 1")

        assert remove_abandoned(tmp_path) == 3
        assert another_writer.exists() and mine.exists() and unrelated.exists()
        assert live_copy.exists()
        assert not abandoned.exists() and not earlier_namesake.exists()
        assert not abandoned_copy.exists()
    finally:
        alive.kill()
        alive.wait()


def test_a_build_clears_temp_files_a_killed_build_left(tmp_path: Path) -> None:
    install_dodo(tmp_path)
    write(tmp_path / "stacks/s/component.yaml", "name: s\ntype: static\npath: m\n")
    write(tmp_path / "stacks/s/m/a.yaml", "kind: A\n")
    write(tmp_path / "environments/c1.yaml", "stack: ../stacks/s\n")
    gone = subprocess.Popen(["true"])
    gone.wait()
    left = write(tmp_path / f".stackyard/tmp/.s.yaml.{gone.pid}.3.tmp", "half a manifest")

    run = doit(tmp_path)

    assert run.returncode == 0, run.stdout + run.stderr
    assert not left.exists()
    assert os.listdir(tmp_path / ".stackyard/tmp") == [], "outputs were renamed out of it"
    assert sorted(os.listdir(tmp_path / "generated/c1")) == [
        "kustomization.yaml", "provenance.json", "s.yaml"]


def test_state_on_another_file_system_writes_output_beside_its_place(tmp_path: Path) -> None:
    """CI caches often mount `.stackyard/` elsewhere: a rename cannot cross file systems,
    so temp files go beside their targets then, and the build is the same."""
    root = copy_example_fleet(tmp_path / "fleet")
    with other_file_system(tmp_path) as volume:
        (root / ".stackyard").symlink_to(volume, target_is_directory=True)
        run = doit(root)
        assert run.returncode == 0, run.stdout + run.stderr
        assert len(run.renders) == 15
        assert not list((root / "generated").rglob("*.tmp"))
        assert list((volume / "tmp").iterdir()) == []  # made to compare file systems
        reference = copy_example_fleet(tmp_path / "reference")
        assert doit(reference).returncode == 0
        assert snapshot(root / "generated") == snapshot(reference / "generated")


def killed_writer(folder: Path, *targets: str) -> list[Path]:
    """The temp files a real writer process made in `folder` (for `targets`, as
    `write_atomic` names them beside a target) before it was killed by SIGKILL."""
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""\
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from rules.atomic import temp_name
        for target in {list(targets)!r}:
            folder, _, name = ({str(folder)!r} + "/" + target).rpartition("/")
            with open(folder + "/" + temp_name(name), "wb") as handle:
                handle.write(b"half a manifest")
        print("written", flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline() == "written\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    left = [path for target in targets
            for path in (folder / target).parent.glob(f".{Path(target).name}.{writer.pid}-*")]
    assert len(left) == len(targets)
    return left


def test_temp_files_a_killed_writer_left_beside_the_output_are_removed(tmp_path: Path) -> None:
    """With `.stackyard/` on another file system (a CI cache volume), temp files are
    written beside their targets in `generated/`: a killed writer's must not stay there
    to be committed. The next build of the cluster removes them, and so does `doit
    clean`; a user's file and a live writer's temp file stay."""
    root = copy_example_fleet(tmp_path)
    assert doit(root).returncode == 0
    output = root / "generated/prod-west"
    alive = subprocess.Popen(["sleep", "60"])
    try:
        users = [write(output / ".web.yaml.tmp", "mine"),
                 write(output / "web/.web.yaml.12-notes.1.tmp", "mine too"),
                 write(output / f"web/.web.yaml.{alive.pid}-0badc0de.1.tmp", "being written")]
        left = killed_writer(output, "web/web.yaml", "kustomization.yaml")
        edit(root / "stacks/platform/config/west.yaml", "web.west.example.com",
             "www.west.example.com")

        run = doit(root)

        assert run.returncode == 0, run.stdout + run.stderr
        assert run.renders == ["render:prod-west:platform/web"]
        assert not any(path.exists() for path in left)
        assert all(path.exists() for path in users)

        left = killed_writer(output, "logging/shipper.yaml", "provenance.json")
        cleaned = doit(root, "clean", "prod-west")
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        assert not any(path.exists() for path in left)
        assert sorted(str(p.relative_to(output)) for p in output.rglob("*") if p.is_file()
                      ) == sorted(str(p.relative_to(output)) for p in users)
    finally:
        alive.kill()
        alive.wait()


def test_stale_temp_folders_of_killed_processes_are_removed(tmp_path: Path) -> None:
    """An OCI pull or a chart copy killed by SIGKILL leaves its temp folder in a shared
    place; the next one removes those a day old, and nothing else."""
    day_old = time.time() - 86401
    for name in ("oci-killed", "oci-running", "other-killed"):
        (tmp_path / name / "inside").mkdir(parents=True)
    for name in ("oci-killed", "other-killed"):
        os.utime(tmp_path / name, (day_old, day_old))
    made = fresh_temp_folder(tmp_path, "oci-")
    assert sorted(p.name for p in tmp_path.iterdir() if p != made) == ["oci-running",
                                                                       "other-killed"]
    assert made.is_dir() and made.name.startswith("oci-")
