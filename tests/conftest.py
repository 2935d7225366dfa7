"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules import errors


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own store, never the real ~/.cache, and is not frozen."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("STACKYARD_CACHE", str(folder))
    monkeypatch.delenv("STACKYARD_FROZEN", raising=False)
    return folder


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A warning is said once per process; each test must see its own."""
    monkeypatch.setattr(errors, "_said", set())
