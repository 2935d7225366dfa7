"""`stacks.lock`: what every branch, tag, chart version and download resolved to.

Plain YAML, one mapping per pin, sorted, so a moved pin is a three-line diff in review:

- `sources`: a git (source, ref) -> the commit it named;
- `charts`: a Helm repository chart (repository, chart, version as written) -> the exact
  version chosen and the sha256 of its archive;
- `files`: a `method: http` manifest URL -> the sha256 of its body.

Sources are recorded with their credentials redacted (`https://***@host/x`), and looked up
the same way, so a token never reaches the file and rotating one moves no pin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from ..atomic import write_atomic
from ..errors import StackyardError
from ..workspace import Workspace
from ..yamlio import read_text
from .redact import redact

LOCK_NAME = "stacks.lock"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")  # SHA-1 or SHA-256 object ids
_HEADER = ("# stacks.lock: what each git ref, chart version and download resolved to\n"
           "# (see docs/sources.md). Written by Stackyard; re-resolve with `doit lock`.\n")


class ChartPin(NamedTuple):
    version: str
    digest: str
    """`sha256:<hex>` of the chart archive, as in a repository's index.yaml."""


@dataclass
class LockFile:
    path: Path
    pins: dict[tuple[str, str], str] = field(default_factory=dict)
    """(redacted source, ref) -> commit."""
    charts: dict[tuple[str, str, str], ChartPin] = field(default_factory=dict)
    """(redacted repository, chart, version constraint) -> the pinned archive."""
    files: dict[str, str] = field(default_factory=dict)
    """redacted URL -> `sha256:<hex>` of the body."""

    @classmethod
    def load(cls, root: Path) -> LockFile:
        """The lock beside `environments/`; empty when there is none yet."""
        path = root / LOCK_NAME
        lock = cls(path)
        if path.is_dir():
            raise StackyardError("a folder where the lock file belongs; move it away",
                                 file=path)
        if not path.is_file():
            return lock
        try:
            data = yaml.load(read_text(path), Loader=_LOADER) or {}  # read by every build
        except yaml.YAMLError as err:
            raise StackyardError(f"not valid YAML: {' '.join(str(err).split())}",
                                 file=path) from None
        if not isinstance(data, dict) or not isinstance(data.get("sources", []), list):
            raise StackyardError("expected a mapping with a `sources` list", file=path)
        for index, entry in _entries(data, "sources", ("source", "ref", "commit"), 2, path):
            if not _COMMIT.match(entry["commit"]):
                raise StackyardError(f"{entry['commit']!r} is not a full commit id",
                                     file=path, key=f"sources[{index}].commit")
            lock.pins[(entry["source"], entry["ref"])] = entry["commit"]
        for _, entry in _entries(data, "charts",
                                 ("repository", "chart", "version", "resolved", "digest"), 3,
                                 path):
            key = (entry["repository"], entry["chart"], entry["version"])
            lock.charts[key] = ChartPin(entry["resolved"], entry["digest"])
        for _, entry in _entries(data, "files", ("url", "digest"), 1, path):
            lock.files[entry["url"]] = entry["digest"]
        return lock

    def commit(self, source: str, ref: str) -> str | None:
        return self.pins.get((redact(source), ref))

    def pin_commit(self, source: str, ref: str, commit: str) -> None:
        self.pins[(redact(source), ref)] = commit

    def chart(self, repository: str, chart: str, constraint: str) -> ChartPin | None:
        return self.charts.get((redact(repository), chart, constraint))

    def pin_chart(self, repository: str, chart: str, constraint: str, pin: ChartPin) -> None:
        self.charts[(redact(repository), chart, constraint)] = pin

    def file(self, url: str) -> str | None:
        return self.files.get(redact(url))

    def pin_file(self, url: str, digest: str) -> None:
        self.files[redact(url)] = digest

    def keep_only(self, used: set[tuple[str, ...]]) -> bool:
        """Drop the pins no plan uses (`used`: pins as plans record them, see
        `resolver.Pin`), as other lock files drop what nothing depends on any more; an
        entry used again later is resolved afresh. Whether any was dropped."""
        before = len(self.pins) + len(self.charts) + len(self.files)
        self.pins = {key: commit for key, commit in self.pins.items() if ("git", *key) in used}
        self.charts = {key: pin for key, pin in self.charts.items() if ("chart", *key) in used}
        self.files = {url: digest for url, digest in self.files.items() if ("file", url) in used}
        return len(self.pins) + len(self.charts) + len(self.files) != before

    def save(self) -> None:
        data: dict[str, list[dict[str, str]]] = {
            "sources": [{"source": source, "ref": ref, "commit": commit}
                        for (source, ref), commit in sorted(self.pins.items())]}
        if self.charts:
            data["charts"] = [
                {"repository": repository, "chart": chart, "version": constraint,
                 "resolved": pin.version, "digest": pin.digest}
                for (repository, chart, constraint), pin in sorted(self.charts.items())]
        if self.files:
            data["files"] = [{"url": url, "digest": digest}
                             for url, digest in sorted(self.files.items())]
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
        # written in .stackyard/tmp/: a killed write leaves nothing in the repo's root
        write_atomic(self.path, (_HEADER + text).encode(),
                     Workspace.at(self.path.parent).temp_dir)


def _entries(data: dict[str, Any], section: str, keys: tuple[str, ...], pinned_by: int,
             path: Path) -> list[tuple[int, dict[str, str]]]:
    """One section's mappings with their index, each checked to have every key as a string
    and to pin something (its first `pinned_by` keys) no earlier entry pins: with two pins
    of one thing (both sides of a merge conflict kept) the last would silently win."""
    entries = data.get(section) or []
    if not isinstance(entries, list):
        raise StackyardError(f"expected `{section}` to be a list", file=path, key=section)
    first: dict[tuple[str, ...], int] = {}
    for index, entry in enumerate(entries):
        if not (isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in keys)):
            raise StackyardError(f"expected a mapping with string {_listed(keys)}",
                                 file=path, key=f"{section}[{index}]")
        pinned = tuple(entry[k] for k in keys[:pinned_by])
        if pinned in first:
            raise StackyardError(
                f"{section}[{first[pinned]}] pins the same {_listed(keys[:pinned_by])} "
                f"({' '.join(pinned)}): a merge conflict resolved by keeping both sides? Keep "
                "one entry (or delete both: the next build pins it afresh)",
                file=path, key=f"{section}[{index}]")
        first[pinned] = index
    return list(enumerate(entries))


def _listed(keys: tuple[str, ...]) -> str:
    return keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + f" and {keys[-1]}"
