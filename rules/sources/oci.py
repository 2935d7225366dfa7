"""Helm charts in OCI registries: `source: oci://host/path`, `path: <chart>`.

The Helm SDK speaks the registry protocol, but it is a Go library and the Go runtime must
not start in doit's main process before doit forks its `-n` workers; so every registry
call runs in a short-lived child process (`python -m rules.sources.oci_worker`). Such a
call happens only when a chart is pinned or downloaded, never on a build that has both.

A registry on localhost or 127.0.0.1 is spoken to over plain HTTP (as a local test or
mirror registry is); `STACKYARD_OCI_PLAIN_HTTP=1` does so for every registry.

Logins: a token from `access.yaml` (`<user>:<password>`, a registry needs both) or
credentials in the URL reach the child on its stdin; without them the child uses the
user's own `docker login` / `helm registry login` credentials, as Helm does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from urllib.parse import unquote, urlsplit

from ..atomic import fresh_temp_folder
from . import access
from .cache import cache_root
from .lockfile import ChartPin
from .redact import redact
from .store import SourceError
from .versions import newest_matching

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def plain_http(repository: str) -> bool:
    if os.environ.get("STACKYARD_OCI_PLAIN_HTTP", "") not in ("", "0"):
        return True
    return urlsplit(repository).hostname in _LOCAL_HOSTS


def _reference(repository: str, chart: str) -> str:
    """`oci://host/path/chart`, without credentials written into the URL."""
    parts = urlsplit(repository)
    host = parts.netloc.rpartition("@")[2]
    return f"oci://{host}{parts.path.rstrip('/')}/{chart}"


def login(repository: str, token_variable: str) -> dict[str, str] | None:
    """Who to log in to the registry as: the `access.yaml` token, else the URL's user
    info; None leaves it to the user's Docker / Helm registry logins."""
    parts = urlsplit(repository)
    secret = access.token(token_variable)
    origin = f"the token in {token_variable}"
    if secret is None and parts.username is not None:
        secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        origin = f"the credentials in {redact(repository)}"
    if secret is None:
        return None
    user, colon, password = secret.partition(":")
    if not (user and colon and password):
        raise SourceError(f"{origin} is not `<user>:<password>`: an OCI registry login needs "
                          "both (e.g. `AWS:<password>` for ECR, any user name and a token "
                          "for GHCR)")
    return {"registry": parts.netloc.rpartition("@")[2], "username": user,
            "password": password}


def _worker(*args: str, credentials: dict[str, str] | None = None) -> str:
    """Run one registry call in a child process; its error becomes a SourceError. A login
    goes through the child's stdin: never its arguments, environment or a file."""
    result = subprocess.run([sys.executable, "-m", "rules.sources.oci_worker", *args],
                            input=json.dumps(credentials) if credentials else "",
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        raise SourceError(redact(detail))
    return result.stdout


def resolve(repository: str, chart: str, constraint: str, token_variable: str
            ) -> tuple[ChartPin, bytes]:
    """The newest tag matching `constraint`, pinned by its archive's sha256, and the
    archive (pulled to compute that digest; the caller keeps it for the fetch task)."""
    reference = _reference(repository, chart)
    credentials = login(repository, token_variable)
    try:
        tags = json.loads(_worker("tags", reference, str(int(plain_http(repository))),
                                  credentials=credentials))
    except SourceError as err:
        raise SourceError(f"cannot list the versions of {redact(reference)}: {err}") from None
    version = newest_matching(tags, constraint)
    if version is None:
        wanted = f"version {constraint!r}" if constraint else "a stable version"
        raise SourceError(f"{redact(reference)} has no {wanted} (it has: "
                          f"{', '.join(tags[:8]) or 'no versions'})")
    from .artifacts import sha256

    archive = download(repository, chart, version, token_variable)
    return ChartPin(version, sha256(archive)), archive


def download(repository: str, chart: str, version: str, token_variable: str) -> bytes:
    """The archive of `chart` at `version` (the caller checks it against its pin)."""
    reference = _reference(repository, chart)
    credentials = login(repository, token_variable)
    scratch = cache_root() / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    folder = fresh_temp_folder(scratch, "oci-")
    try:
        try:
            _worker("pull", reference, version, str(folder),
                    str(int(plain_http(repository))), credentials=credentials)
        except SourceError as err:
            raise SourceError(f"cannot pull {redact(reference)} {version}: {err}") from None
        archives = list(folder.glob("*.tgz"))
        if len(archives) != 1:
            raise SourceError(f"pulling {redact(reference)} {version} gave no chart archive")
        archive = archives[0].read_bytes()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return archive
