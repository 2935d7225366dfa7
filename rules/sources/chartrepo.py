"""Helm chart repositories over HTTP: `index.yaml` picks the version, the archive is
checked against the sha256 the index gives for it.

An index is read at most once per process per repository; once a chart is pinned in
`stacks.lock` and its archive is in the store, no index is read at all.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import yaml

from . import http
from .access import origin
from .artifacts import sha256
from .lockfile import ChartPin
from .redact import redact
from .store import SourceError
from .versions import newest_matching

_indexes: dict[str, dict[str, list[dict[str, Any]]]] = {}


def index_url(repository: str) -> str:
    return repository.rstrip("/") + "/index.yaml"


def _index(repository: str, token: str | None) -> dict[str, list[dict[str, Any]]]:
    """The repository's `entries`, checked for the shape Helm writes."""
    if repository not in _indexes:
        url = index_url(repository)
        try:
            data = yaml.load(http.get(url, token=token), Loader=yaml.CSafeLoader)
        except yaml.YAMLError as err:
            raise SourceError(f"{redact(url)} is not valid YAML: "
                              f"{' '.join(str(err).split())}") from None
        entries = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(entries, dict) or not all(
                isinstance(v, list) and all(isinstance(e, dict) for e in v)
                for v in entries.values()):
            raise SourceError(f"{redact(url)} is not a Helm repository index "
                              "(expected `entries`: chart name -> list of versions)")
        _indexes[repository] = entries
    return _indexes[repository]


def _release(repository: str, chart: str, version: str,
             token: str | None) -> dict[str, Any]:
    releases = _index(repository, token).get(chart)
    if not releases:
        raise SourceError(f"no chart {chart!r} in {redact(index_url(repository))}")
    for release in releases:
        if str(release.get("version")) == version:
            return release
    raise SourceError(f"chart {chart!r} has no version {version!r} in "
                      f"{redact(index_url(repository))}")


def resolve(repository: str, chart: str, constraint: str, token: str | None) -> ChartPin:
    """The newest version of `chart` matching `constraint`, and its archive's digest.

    An index entry without a digest (allowed by Helm) is pinned by downloading the archive.
    """
    releases = _index(repository, token).get(chart)
    if not releases:
        raise SourceError(f"no chart {chart!r} in {redact(index_url(repository))}")
    versions = [str(r.get("version")) for r in releases if r.get("version") is not None]
    version = newest_matching(versions, constraint)
    if version is None:
        wanted = f"version {constraint!r}" if constraint else "a stable version"
        raise SourceError(f"chart {chart!r} has no {wanted} in "
                          f"{redact(index_url(repository))} (it has: "
                          f"{', '.join(versions[:8])}{' ...' if len(versions) > 8 else ''})")
    digest = _release(repository, chart, version, token).get("digest")
    if isinstance(digest, str) and digest:
        return ChartPin(version, digest if ":" in digest else f"sha256:{digest}")
    archive = download(repository, chart, version, token)
    return ChartPin(version, sha256(archive))


def download(repository: str, chart: str, version: str, token: str | None) -> bytes:
    """The archive of `chart` at `version` (the caller checks it against its pin)."""
    release = _release(repository, chart, version, token)
    urls = release.get("urls")
    if not isinstance(urls, list) or not urls or not isinstance(urls[0], str):
        raise SourceError(f"chart {chart!r} {version} has no download URL in "
                          f"{redact(index_url(repository))}")
    url = urljoin(repository.rstrip("/") + "/", urls[0])
    http.refuse_other_schemes(url, f" (chart {chart!r} {version} in "
                                   f"{redact(index_url(repository))})")
    # like Helm without --pass-credentials: a token is for the repository's own scheme,
    # host and port (an `http://` archive of an `https://` repository would expose it)
    same_origin = origin(url) == origin(repository)
    return http.get(url, token=token if same_origin else None)
