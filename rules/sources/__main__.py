"""`python -m rules.sources lock [ROOT]`: move every pin in ROOT/stacks.lock to its newest
commit."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import StackyardError
from .resolver import Sources


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "lock" or len(argv) > 2:
        print("usage: python -m rules.sources lock [ROOT]", file=sys.stderr)
        return 2
    root = Path(argv[1] if len(argv) == 2 else ".").resolve()
    try:
        sources = Sources(root)
        moved = sources.relock()
    except StackyardError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for line in moved:
        print(line)
    pins = len(sources.lock.pins) + len(sources.lock.charts) + len(sources.lock.files)
    print(f"{len(moved)} of {pins} pin(s) in {sources.lock.path.name} moved", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
