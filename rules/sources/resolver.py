"""Sources for the planner: git refs, chart versions and downloads pinned by the lock.

A git (source, ref) is resolved and its files are fetched while planning (the plan reads
definitions from them). A chart or a `method: http` file is only pinned while planning
(version and sha256, from the repository index or one download): its path in the store
follows from the pin, and a `fetch:` task downloads it before the renders that read it.
Anything missing from the lock is resolved and added to it, unless `STACKYARD_FROZEN=1`:
then it is an error and nothing is fetched.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any

from ..errors import StackyardError, join_key
from ..model import ComponentDef
from . import access, artifacts
from .access import AccessTokens, repository_access_files
from .artifacts import Fetch
from .lockfile import ChartPin, LockFile
from .redact import redact, was_redacted
from .store import SourceError, Store

Pin = tuple[str, ...]
"""What a plan used, as the lock records it: ("git", source, ref), ("chart", repository,
chart, constraint) or ("file", url) -> the commit, `version digest`, or digest."""


def ref_of(entry: ComponentDef) -> str:
    """Fabrikate: `version` wins, then `branch`, else the default branch (HEAD)."""
    return entry.version or entry.branch or "HEAD"


def frozen() -> bool:
    return os.environ.get("STACKYARD_FROZEN", "").lower() not in ("", "0", "false", "no", "off")


class Sources:
    """One per planning run; the lock file is read once and rewritten when a pin is added.

    `records_pins=False` (commands that only look: `doit list`, `info`, `forget`, `clean`)
    resolves what is not pinned for this run only and leaves `stacks.lock` as it is: the
    next build resolves it again and records it.
    """

    def __init__(self, root: Path, store: Store | None = None,
                 records_pins: bool = True) -> None:
        self.store = store or Store()
        self.lock = LockFile.load(root)
        self.records_pins = records_pins
        self.checkouts: dict[Path, tuple[str, str]] = {}
        """Stored checkout -> (source as shown, commit): what a user knows it by."""
        self.access = AccessTokens(root)
        self.store.token_for = lambda url: access.token(self.token_variable(url))

    def directory(self, entry: ComponentDef) -> Path:
        """`<checkout of source at ref>/<path>`; errors name the entry's file and key."""
        ref = ref_of(entry)
        where = {"file": entry.file, "key": entry.key or "source"}
        described = f"{entry.name!r} ({redact(entry.source)} at {ref})"
        if not entry.source:
            raise StackyardError(f"git component {entry.name!r} has no source",
                                 file=entry.file, key=join_key(entry.key, "source"))
        try:
            commit = self._commit(entry.source, ref)
            root = self.store.checkout(entry.source, commit)
            self.checkouts[root] = (redact(entry.source), commit)
        except SourceError as err:
            raise StackyardError(f"git source of {described}: {err}", **where) from None
        directory = Path(os.path.normpath(root / entry.path.lstrip("/")))
        if not directory.is_relative_to(root):
            raise StackyardError(f"path {entry.path!r} of {described} leaves the repository",
                                 file=entry.file, key=join_key(entry.key, "path"))
        if not directory.is_dir():
            raise StackyardError(f"path {entry.path!r} does not exist in {described}",
                                 file=entry.file, key=join_key(entry.key, "path"))
        return directory

    def fetch(self, request: Pin) -> Fetch:
        """The store entry for ("chart", repository, chart, constraint) or ("file", url)."""
        kind, *key = request
        return self.chart(*key) if kind == "chart" else self.file(*key)

    def chart(self, repository: str, chart: str, constraint: str) -> Fetch:
        """A chart from an HTTP repository or OCI registry, pinned (not yet downloaded)."""
        variable = self.token_variable(repository)
        pin = self.lock.chart(repository, chart, constraint)
        if pin is not None:
            return artifacts.chart_fetch(repository, chart, pin, variable)
        self._refuse_when_frozen(f"chart {chart!r} version {constraint or '(newest)'!r}")
        pin = artifacts.resolve_chart(repository, chart, constraint, variable)
        fetch = artifacts.chart_fetch(repository, chart, pin, variable)  # checked, then kept
        self.lock.pin_chart(repository, chart, constraint, pin)
        self._record()
        return fetch

    def file(self, url: str) -> Fetch:
        """A manifest to download; pinning it downloads it once, into the store."""
        digest = self.lock.file(url)
        if digest is None:
            self._refuse_when_frozen(f"{redact(url)!r}")
            digest = artifacts.download_file(url, self.token_variable(url))
            self.lock.pin_file(url, digest)
            self._record()
        return artifacts.file_fetch(url, digest, self.token_variable(url))

    def token_variable(self, url: str) -> str:
        """The environment variable an `access.yaml` names for `url`, or ''."""
        return self.access.variable(url)

    def pinned(self, pin: Pin) -> str | None:
        """The lock's current value for a pin a plan recorded (see `Pin`)."""
        kind, *key = pin
        if kind == "git":
            return self.lock.commit(*key)
        if kind == "chart":
            chart = self.lock.chart(*key)
            return None if chart is None else f"{chart.version} {chart.digest}"
        return self.lock.file(*key)

    def _commit(self, url: str, ref: str) -> str:
        pinned = self.lock.commit(url, ref)
        if pinned is not None:
            return pinned
        self._refuse_when_frozen(repr(ref))
        commit = self.store.resolve(url, ref)
        self.lock.pin_commit(url, ref, commit)
        self._record()
        return commit

    def _record(self) -> None:
        if self.records_pins:
            self.lock.save()

    def _refuse_when_frozen(self, what: str) -> None:
        if frozen():
            raise SourceError(f"{what} is not pinned in {self.lock.path.name} and "
                              "STACKYARD_FROZEN is set; run a build without it to pin it")

    def read_every_access_file(self, root: Path) -> None:
        """Re-locking plans nothing, so it reads every `access.yaml` of the repository."""
        for file in repository_access_files(root):
            self.access.register(file)

    def relock(self, only: tuple[str, ...] = ()) -> list[str]:
        """Re-resolve every pin (or those whose description contains one of `only`) to the
        newest commit, chart version or file content; saves the lock and returns one line
        per pin that moved (`<description>: <old> -> <new>`).

        A source recorded with redacted credentials cannot be asked again: its pin is
        dropped, and the next build resolves it (with the URL as written) afresh.
        """
        git = {key: f"{key[0]} {key[1]}" for key in self.lock.pins}
        charts = {key: " ".join(filter(None, key)) for key in self.lock.charts}
        chosen = _chosen(only, {
            **{git[key]: key for key in self.lock.pins},
            **{charts[key]: (key[0], key[1], f"{key[0].rstrip('/')}/{key[1]}")
               for key in self.lock.charts},
            **{url: (url,) for url in self.lock.files}}, self.lock.path)
        moved = []
        try:
            for (url, ref), old in sorted(self.lock.pins.items()):
                if git[(url, ref)] not in chosen:
                    continue
                new = None if was_redacted(url) else self.store.resolve(url, ref)
                if new != old:
                    moved.append(f"{git[(url, ref)]}: {old[:12]} -> {(new or 'dropped')[:12]}")
                    self._repin(self.lock.pins, (url, ref), new)
            for (repository, chart, constraint), pin in sorted(self.lock.charts.items()):
                what = charts[(repository, chart, constraint)]
                if what not in chosen:
                    continue
                variable = self.token_variable(repository)
                fresh = None if was_redacted(repository) else artifacts.resolve_chart(
                    repository, chart, constraint, variable)
                if fresh is not None:
                    artifacts.chart_fetch(repository, chart, fresh, variable)  # checks it
                if fresh != pin:
                    moved.append(f"{what}: {_chart_pin(pin, fresh)} -> "
                                 f"{'dropped' if fresh is None else _chart_pin(fresh, pin)}")
                    self._repin(self.lock.charts, (repository, chart, constraint), fresh)
            for url, digest in sorted(self.lock.files.items()):
                if url not in chosen:
                    continue
                fresh_digest = None if was_redacted(url) else artifacts.download_file(
                    url, self.token_variable(url))
                if fresh_digest != digest:
                    moved.append(f"{url}: {digest[:19]} -> {(fresh_digest or 'dropped')[:19]}")
                    self._repin(self.lock.files, url, fresh_digest)
        except SourceError as err:
            raise StackyardError(str(err), file=self.lock.path) from None
        if moved:
            self.lock.save()
        return moved

    @staticmethod
    def _repin(pins: dict[Any, Any], key: object, value: object | None) -> None:
        if value is None:
            del pins[key]
        else:
            pins[key] = value


def _chart_pin(pin: ChartPin, other: ChartPin | None) -> str:
    """The version, and the digest too when the other side has the same version: a chart
    re-published under its version moved only in its digest."""
    if other is None or other.version != pin.version:
        return pin.version
    return f"{pin.version} ({pin.digest[:19]})"


def _chosen(only: tuple[str, ...], pins: dict[str, tuple[str, ...]], lock: Path) -> set[str]:
    """The descriptions of the pins that `only` names (all of them when it is empty). A text
    names a pin when it is the pin's description (as this function lists them) or one of
    its fields (`pins`: description -> source or repository URL, ref or chart name,
    `repository/chart`), exactly (a URL with or without a trailing `/`) or as a `*`
    pattern. A text that names no pin is a typo: an error before anything is fetched."""
    if not only:
        return set(pins)
    named = {text: {d for d, fields in pins.items() if _names(text, (d, *fields))}
             for text in only}
    missing = [text for text, found in named.items() if not found]
    if missing:
        raise StackyardError(f"no pin matches {', '.join(map(repr, missing))}; the pins are: "
                             + ("; ".join(sorted(pins)) or "none"), file=lock)
    return set().union(*named.values())


def _names(text: str, fields: tuple[str, ...]) -> bool:
    """Exact first: `[` in a URL (`http://[::1]/`) is not a pattern's character class."""
    exact = text.rstrip("/")
    return any(field.rstrip("/") == exact for field in fields) or (
        "*" in text and bool(fnmatch.filter(fields, text)))
