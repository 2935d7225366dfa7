"""Run the real `doit` on a fleet folder and read what it executed from its own report."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CHARTS = REPO.parent / "shared" / "testdata" / "helm-charts" / "stable"


@dataclass(frozen=True)
class DoitRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def executed(self) -> list[str]:
        """Tasks doit ran (it prints `.  <name>` for each; up-to-date ones are not handed to it)."""
        return [line[3:] for line in self.stdout.splitlines() if line.startswith(".  ")]

    @property
    def renders(self) -> list[str]:
        return [name for name in self.executed if name.startswith("render:")]


def doit(root: Path, *args: str, env: dict[str, str] | None = None,
         timeout: float = 600) -> DoitRun:
    """`python -m doit args...` in `root`, in `env` (default: this process's), failing
    the test when it has not finished after `timeout` seconds (a hang)."""
    result = subprocess.run(
        [sys.executable, "-m", "doit", *args], cwd=root, env=env, capture_output=True,
        text=True, check=False, timeout=timeout,
    )
    return DoitRun(result.returncode, result.stdout, result.stderr)


def install_dodo(root: Path) -> None:
    """The project's own dodo.py, copied as a user would into their monorepo."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dodo.py", root / "dodo.py")


def one_cluster_fleet(root: Path, *subcomponents: str) -> None:
    """A fleet with dodo.py: cluster `c1` on stack `s`, whose subcomponents are the given
    YAML mappings (flow style, `{name: k, type: helm, ...}`)."""
    install_dodo(root)
    write(root / "stacks/s/component.yaml", "name: s\nsubcomponents:\n"
          + "".join(f"  - {entry}\n" for entry in subcomponents))
    write(root / "environments/c1.yaml", "stack: ../stacks/s\n")


def git_stack_fleet(root: Path, url: str, path: str = "") -> Path:
    """A fleet with dodo.py: cluster `c1` on the stack at `path` of the git source `url`."""
    install_dodo(root)
    where = f", path: {path}" if path else ""
    write(root / "environments/c1.yaml", f"stack: {{source: '{url}', method: git{where}}}\n")
    return root


def copy_example_fleet(root: Path) -> Path:
    """The bundled example fleet (stacks/, environments/, dodo.py) copied to `root`."""
    shutil.copytree(REPO / "stacks", root / "stacks")
    shutil.copytree(REPO / "environments", root / "environments")
    install_dodo(root)
    return root


def edit(path: Path, old: str, new: str) -> None:
    """Replace `old` (which must be there) by `new` in the file at `path`."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_tree(root: Path, files: dict[str, str]) -> None:
    """Each `relative path: text` of `files`, written below `root`."""
    for relative, text in files.items():
        write(root / relative, text)


def link_chart(root: Path, name: str) -> Path:
    """A shared real chart, reachable from the fleet at `stacks/charts/<name>`."""
    target = root / "stacks" / "charts" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(SHARED_CHARTS / name, target_is_directory=True)
    return target


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` with its bytes, to prove output was (not) touched."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """`folder` as a tmpfs of `size` (a full disk), unmounted afterwards. Needs
    CAP_SYS_ADMIN: skipped where mounting is not allowed, failed there when
    STACKYARD_REQUIRE_MOUNT is set (.ci/run sets it when its own mount works)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                              str(folder)], capture_output=True, check=False)
    if mounted.returncode != 0:
        message = f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}"
        if os.environ.get("STACKYARD_REQUIRE_MOUNT"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextmanager
def other_file_system(near: Path) -> Iterator[Path]:
    """A new empty folder on another file system than `near`: in /dev/shm (a tmpfs on
    Linux), needing no privilege; a mounted tmpfs where /dev/shm is not another one."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and os.stat(shm).st_dev != os.stat(near).st_dev:
        folder = Path(tempfile.mkdtemp(dir=shm, prefix="stackyard-test-"))
        try:
            yield folder
        finally:
            shutil.rmtree(folder)
    else:
        with tmpfs(near / "other-file-system", "50m") as folder:
            yield folder
