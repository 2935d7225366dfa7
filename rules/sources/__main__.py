"""`python -m rules.sources lock [ROOT] [--only TEXT]`: what `doit lock` does, without doit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..build_lock import hold_build_lock
from ..errors import StackyardError
from ..lock_task import relock_and_report
from ..workspace import Workspace


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rules.sources",
        description="Move every pin in stacks.lock (git commits, chart versions, downloaded "
                    "files) to the newest one, as `doit lock` does; prints each pin that "
                    "moved.")
    commands = parser.add_subparsers(dest="command", required=True)
    lock = commands.add_parser("lock", help="re-resolve every pin in ROOT/stacks.lock")
    lock.add_argument("root", nargs="?", default=".", type=Path,
                      help="the repository root (default: the current folder)")
    lock.add_argument("--only", action="append", default=[], metavar="TEXT",
                      help="move only the pins TEXT names: a chart, a source URL, a * pattern "
                           "(repeatable)")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        parser.error(f"{args.root} is not a folder")
    try:
        root = args.root.resolve()
        hold_build_lock(Workspace.at(root))  # a running build would save its own pins over
        relock_and_report(root, tuple(args.only))
    except StackyardError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
