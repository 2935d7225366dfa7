"""`stacks.lock`: the commit every (source, ref) resolved to, so builds are repeatable.

Plain YAML, entries sorted by source then ref, one mapping each: a moved pin is a
three-line diff in review.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..atomic import write_atomic
from ..errors import StackyardError

LOCK_NAME = "stacks.lock"
_HEADER = ("# stacks.lock: the commit each git source and ref resolved to (see docs/sources.md).\n"
           "# Written by Stackyard; re-resolve with `python -m rules.sources lock`.\n")


@dataclass
class LockFile:
    path: Path
    pins: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path) -> LockFile:
        """The lock beside `environments/`; empty when there is none yet."""
        path = root / LOCK_NAME
        if not path.is_file():
            return cls(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise StackyardError(f"not valid YAML: {' '.join(str(err).split())}",
                                 file=path) from None
        entries = data.get("sources") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise StackyardError("expected a mapping with a `sources` list", file=path)
        pins = {}
        for index, entry in enumerate(entries):
            if not (isinstance(entry, dict)
                    and all(isinstance(entry.get(k), str) for k in ("source", "ref", "commit"))):
                raise StackyardError("expected a mapping with string source, ref and commit",
                                     file=path, key=f"sources[{index}]")
            pins[(entry["source"], entry["ref"])] = entry["commit"]
        return cls(path, pins)

    def save(self) -> None:
        entries = [{"source": source, "ref": ref, "commit": commit}
                   for (source, ref), commit in sorted(self.pins.items())]
        text = yaml.safe_dump({"sources": entries}, sort_keys=False, default_flow_style=False)
        write_atomic(self.path, (_HEADER + text).encode())
