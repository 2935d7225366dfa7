"""Downloads in the store: Helm chart archives (extracted) and `method: http` manifests.

Each entry is named by what it is (repository, chart, version, sha256), so a path is known
from the lock alone, before anything is fetched; `fetch:` tasks fill in missing entries.
An entry is written in a temp folder beside it and renamed into place under a lock, and
only after its digest was checked: a store never holds a partial or unverified entry.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tarfile
from pathlib import Path
from typing import Any, NamedTuple

import xxhash

from ..atomic import fresh_temp_folder, write_atomic
from ..errors import StackyardError
from . import access, helm_repos
from .cache import cache_root
from .lockfile import ChartPin
from .locking import locked
from .redact import redact
from .store import SourceError


class Fetch(NamedTuple):
    """One store entry a render needs."""

    kind: str
    """`chart` or `file`."""
    source: str
    """The chart repository (`https://`, `oci://`) or the file's URL, as written."""
    name: str
    """The chart's name; empty for a file."""
    version: str
    """The chart's exact version; empty for a file."""
    digest: str
    """`sha256:<hex>` of the archive or the file."""
    token_variable: str = ""
    """The environment variable holding the source's token (from `access.yaml`)."""
    own: bool = False
    """The node's own content (a `method: helm` chart, a `method: http` file), not one of
    its chart's dependencies."""

    @property
    def label(self) -> str:
        """How messages and task names show it: credentials redacted."""
        if self.kind == "file":
            return redact(self.source)
        return f"{redact(self.source).rstrip('/')}/{self.name}@{self.version}"

    @property
    def path(self) -> Path:
        hexdigest = self.digest.partition(":")[2]
        if self.kind == "file":
            return cache_root() / "files" / hexdigest
        repository = xxhash.xxh3_64_hexdigest(redact(self.source).encode())
        return (cache_root() / "charts" / repository
                / f"{self.name}-{self.version}-{hexdigest[:16]}")

    @property
    def token(self) -> str | None:
        return access.token(self.token_variable)


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


def chart_fetch(repository: str, chart: str, pin: ChartPin, token_variable: str = "") -> Fetch:
    """The entry for a pinned chart. Names, versions and digests become parts of a store
    path, and an index or a lock file may say anything: they are checked first."""
    for what, value in (("chart name", chart), ("version", pin.version)):
        if not _SAFE_NAME.match(value):
            raise SourceError(f"{value!r} is not a valid {what} (from {redact(repository)})")
    if not _SHA256.match(pin.digest):
        raise SourceError(f"{pin.digest!r} is not a sha256 digest (chart {chart!r} "
                          f"{pin.version} from {redact(repository)})")
    return Fetch("chart", repository, chart, pin.version, pin.digest, token_variable)


def file_fetch(url: str, digest: str, token_variable: str = "") -> Fetch:
    if digest and not _SHA256.match(digest):
        raise SourceError(f"{digest!r} is not a sha256 digest (for {redact(url)})")
    return Fetch("file", url, "", "", digest, token_variable)


def ensure(fetch: Fetch) -> Path:
    """The entry's path, downloading it first when the store lacks it."""
    target = fetch.path
    if target.exists():
        return target
    with locked(target.parent / f"{target.name}.lock"):
        if target.exists():
            return target
        if fetch.kind == "file":
            from . import http  # urllib's import costs a no-op build ~30 ms

            write_atomic(target, _as_pinned(fetch, http.get(fetch.source, token=fetch.token)))
        else:
            _extract_chart(_as_pinned(fetch, _chart_archive(fetch)), target, fetch)
    return target


def ensure_all(fetches: tuple[Fetch, ...], where: dict[str, Any]) -> list[Path]:
    """Every entry a render reads (normally already there: its `fetch:` tasks ran first);
    errors name the definition's file and key (`where`)."""
    try:
        return [ensure(fetch) for fetch in fetches]
    except SourceError as err:
        raise StackyardError(str(err), **where) from None


def resolve_chart(repository: str, chart: str, constraint: str, token_variable: str
                  ) -> ChartPin:
    """The version of `chart` that `constraint` picks now, and its archive's digest."""
    if repository.startswith("oci://"):
        from . import oci

        pin, archive = oci.resolve(repository, chart, constraint, token_variable)
        fetch = chart_fetch(repository, chart, pin, token_variable)
        with locked(fetch.path.parent / f"{fetch.path.name}.lock"):
            if not fetch.path.exists():
                _extract_chart(archive, fetch.path, fetch)
        return pin
    from . import chartrepo

    url, token = _chart_repository(repository, token_variable)
    return chartrepo.resolve(url, chart, constraint, token)


def _chart_repository(repository: str, token_variable: str) -> tuple[str, str | None]:
    """The URL of an HTTP chart repository and its token: an alias (`@stable`) is looked up
    in Helm's `repositories.yaml`, whose login serves when `access.yaml` gives none."""
    token = access.token(token_variable)
    if not helm_repos.is_alias(repository):
        return repository, token
    named = helm_repos.lookup(repository)
    return named.url, token or named.login


def download_file(url: str, token_variable: str) -> str:
    """Download a manifest to pin it: kept in the store (its fetch task then has nothing
    to do); returns its digest."""
    from . import http

    body = http.get(url, token=file_fetch(url, "", token_variable).token)
    digest = sha256(body)
    target = file_fetch(url, digest).path
    if not target.exists():
        write_atomic(target, body)
    return digest


def _chart_archive(fetch: Fetch) -> bytes:
    if fetch.source.startswith("oci://"):
        from . import oci

        return oci.download(fetch.source, fetch.name, fetch.version, fetch.token_variable)
    from . import chartrepo

    url, token = _chart_repository(fetch.source, fetch.token_variable)
    return chartrepo.download(url, fetch.name, fetch.version, token)


def _as_pinned(fetch: Fetch, body: bytes) -> bytes:
    """`body`, when its sha256 is the one `stacks.lock` pins: one check for charts from
    either kind of repository and for files."""
    if sha256(body) != fetch.digest:
        raise SourceError(f"{fetch.label} has digest {sha256(body)}, but stacks.lock pins "
                          f"{fetch.digest} (it changed since it was locked; `doit lock` pins "
                          "the new content). A damaged download fails the same way: run again")
    return body


def sha256(data: bytes) -> str:
    """How indexes and the lock name content: `sha256:<hex>`."""
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


MAX_CHART_BYTES = 100 * 1024 * 1024
"""Helm refuses a chart whose files hold more than this in all (`MaxDecompressedChartSize`)."""
MAX_CHART_FILE_BYTES = 5 * 1024 * 1024
"""... or any one file larger than this (`MaxDecompressedFileSize`)."""


def _extract_chart(archive: bytes, target: Path, fetch: Fetch) -> None:
    """The archive's one top folder (the chart) becomes `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = fresh_temp_folder(target.parent, f".{target.name}.", 0)  # under its lock
    try:
        # members are read one at a time and each is checked before its data is
        # decompressed: a huge file is refused before it costs anything
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            total = 0
            for member in tar:
                total += _checked_size(member, total, fetch)
                # "data" as a second guard: a link pointing out of the chart would let a
                # render read this machine
                tar.extract(member, staging, filter="data")
        charts = [p for p in staging.iterdir() if (p / "Chart.yaml").is_file()]
        if len(charts) != 1:
            raise SourceError(f"{fetch.label}: the archive does not hold one chart folder")
        os.replace(charts[0], target)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise SourceError(f"{fetch.label}: cannot unpack the archive: {err}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _checked_size(member: tarfile.TarInfo, total: int, fetch: Fetch) -> int:
    """The bytes `member` adds to the chart, once it is known to be safe to extract. A chart
    holds only files and folders: `filter="data"` alone let links nested past PATH_MAX
    write outside the store (CVE-2025-4517), so no link is taken, nor a name that is
    absolute or climbs with `..`; and Helm's own size limits hold."""
    problem = ""
    if member.name.startswith("/") or ".." in member.name.split("/"):
        problem = (f"member {member.name!r} leaves the chart folder (an absolute name or a "
                   "'..' part)")
    elif member.issym() or member.islnk():
        problem = (f"member {member.name!r} is a {'symbolic' if member.issym() else 'hard'} "
                   f"link to {member.linkname!r}")
    elif member.isdir():
        return 0
    elif not member.isreg() or member.issparse():
        problem = (f"member {member.name!r} is not a regular file (a device, a fifo or a "
                   "sparse file)")
    elif member.size > MAX_CHART_FILE_BYTES:
        problem = (f"member {member.name!r} has {member.size} bytes; Helm refuses a chart "
                   f"file over {MAX_CHART_FILE_BYTES} bytes (5 MiB)")
    elif total + member.size > MAX_CHART_BYTES:
        problem = (f"its files pass {MAX_CHART_BYTES} bytes at member {member.name!r}; Helm "
                   "refuses a chart over 100 MiB")
    if problem:
        raise SourceError(f"{fetch.label}: refusing its chart archive ({fetch.digest}): "
                          f"{problem}. A chart archive holds only files and folders, within "
                          "Helm's limits: this one is broken or hostile, do not use it")
    return member.size
