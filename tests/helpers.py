"""File-writing helpers for tests that build small stacks in a temporary folder.

Text is dedented, so tests can write YAML as indented triple-quoted strings.
"""

from __future__ import annotations

import textwrap
from pathlib import Path


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
