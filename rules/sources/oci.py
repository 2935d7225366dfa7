"""Helm charts in OCI registries: `source: oci://host/path`, `path: <chart>`.

The Helm SDK speaks the registry protocol, but it is a Go library and the Go runtime must
not start in doit's main process before doit forks its `-n` workers; so every registry
call runs in a short-lived child process (`python -m rules.sources.oci_worker`). Such a
call happens only when a chart is pinned or downloaded, never on a build that has both.

A registry on localhost or 127.0.0.1 is spoken to over plain HTTP (as a local test or
mirror registry is); `STACKYARD_OCI_PLAIN_HTTP=1` does so for every registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from .lockfile import ChartPin
from .redact import redact
from .store import SourceError, cache_root
from .versions import newest_matching

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def plain_http(repository: str) -> bool:
    if os.environ.get("STACKYARD_OCI_PLAIN_HTTP", "") not in ("", "0"):
        return True
    return urlsplit(repository).hostname in _LOCAL_HOSTS


def _reference(repository: str, chart: str) -> str:
    return f"{repository.rstrip('/')}/{chart}"


def _worker(*args: str) -> str:
    """Run one registry call in a child process; its error becomes a SourceError."""
    result = subprocess.run([sys.executable, "-m", "rules.sources.oci_worker", *args],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        raise SourceError(redact(detail))
    return result.stdout


def resolve(repository: str, chart: str, constraint: str) -> tuple[ChartPin, bytes]:
    """The newest tag matching `constraint`, pinned by its archive's sha256, and the
    archive (pulled to compute that digest; the caller keeps it for the fetch task)."""
    reference = _reference(repository, chart)
    try:
        tags = json.loads(_worker("tags", reference, str(int(plain_http(repository)))))
    except SourceError as err:
        raise SourceError(f"cannot list the versions of {redact(reference)}: {err}") from None
    version = newest_matching(tags, constraint)
    if version is None:
        wanted = f"version {constraint!r}" if constraint else "a stable version"
        raise SourceError(f"{redact(reference)} has no {wanted} (it has: "
                          f"{', '.join(tags[:8]) or 'no versions'})")
    from .artifacts import sha256

    archive = download(repository, chart, version)
    return ChartPin(version, sha256(archive)), archive


def download(repository: str, chart: str, version: str) -> bytes:
    """The archive of `chart` at `version` (the caller checks it against its pin)."""
    reference = _reference(repository, chart)
    scratch = cache_root() / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=scratch, prefix="oci-"))
    try:
        try:
            _worker("pull", reference, version, str(folder),
                    str(int(plain_http(repository))))
        except SourceError as err:
            raise SourceError(f"cannot pull {redact(reference)} {version}: {err}") from None
        archives = list(folder.glob("*.tgz"))
        if len(archives) != 1:
            raise SourceError(f"pulling {redact(reference)} {version} gave no chart archive")
        archive = archives[0].read_bytes()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return archive
