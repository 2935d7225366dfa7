"""`python -m rules.sources lock [ROOT]`: what `doit lock` does, without doit."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import StackyardError
from ..lock_task import relock_and_report


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "lock" or len(argv) > 2:
        print("usage: python -m rules.sources lock [ROOT]", file=sys.stderr)
        return 2
    try:
        relock_and_report(Path(argv[1] if len(argv) == 2 else ".").resolve())
    except StackyardError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
