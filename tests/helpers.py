"""File-writing helpers for tests that build small stacks in a temporary folder.

Text is dedented, so tests can write YAML as indented triple-quoted strings.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from tests.doit_runner import write


def write_file(path: Path, text: str) -> Path:
    """Write `text` (dedented) to `path`, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def write_component(folder: Path, text: str, *, name: str = "component.yaml") -> Path:
    """`<folder>/component.yaml` (or `name`, e.g. "component.json")."""
    return write_file(folder / name, text)


def write_config(folder: Path, layer: str, text: str, *, suffix: str = ".yaml") -> Path:
    """`<folder>/config/<layer>.yaml`: one config layer file of the component in `folder`."""
    return write_file(folder / "config" / f"{layer}{suffix}", text)


def write_environment(root: Path, cluster: str, text: str) -> Path:
    """`<root>/environments/<cluster>.yaml`; a `stack:` in it is relative to that folder."""
    return write_file(root / "environments" / f"{cluster}.yaml", text)


def files_containing(folder: Path, text: str) -> list[Path]:
    """The files below `folder` holding `text`: where a secret leaked to."""
    return [p for p in folder.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def git(repo: Path, *args: str) -> str:
    """`git -C repo args...` with a test identity; its stripped stdout."""
    result = subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c",
                             "user.email=t@example.com", *args],
                            check=True, capture_output=True, text=True)
    return result.stdout.strip()


def commit(repo: Path, files: dict[str, str]) -> str:
    """Write `files` into the repository and commit them; returns the commit."""
    for name, text in files.items():
        write(repo / name, text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "change")
    return git(repo, "rev-parse", "HEAD")


def make_repo(path: Path, files: dict[str, str]) -> str:
    """A new repository with one commit on `main`; returns its file:// URL."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    commit(path, files)
    return f"file://{path}"
