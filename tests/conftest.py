"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own store, never the real ~/.cache, and is not frozen."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("STACKYARD_CACHE", str(folder))
    monkeypatch.delenv("STACKYARD_FROZEN", raising=False)
    return folder
