"""Re-planning cost after a shared-stack change, for comparing two versions of the planner.

    .venv/bin/python bench/fleet.py --clusters 500 --components 20 --keep /tmp/fleet
    (cd /tmp/fleet && doit)                      # once: a built fleet and plan cache
    .venv/bin/python bench/replan.py /tmp/fleet [--code DIR]

Bumps a number in the shared stack's `config/common.yaml` (every cluster watches it), then
times `load_fleet`, which re-plans all clusters: CPU seconds over five changes (min and
median; CPU time is noisy on a shared machine) and the Python call count of a sixth under
cProfile (deterministic, for comparing code). `--code DIR` imports `rules` from DIR, e.g.
a `git worktree` of another commit.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import sys
import time
from pathlib import Path


def bump_shared_stack(fleet: Path) -> None:
    common = fleet / "stacks" / "fleet" / "config" / "common.yaml"
    text = common.read_text()
    match = re.search(r"stack-version: '(\d+)'", text)
    if match is None:
        raise SystemExit(f"{common}: no stack-version annotation (not a bench fleet?)")
    bumped = f"stack-version: '{int(match.group(1)) + 1}'"
    common.write_text(text[:match.start()] + bumped + text[match.end():])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fleet", type=Path, help="a fleet made by fleet.py --keep and built")
    parser.add_argument("--code", type=Path, help="import `rules` from this folder")
    args = parser.parse_args()
    if args.code:
        sys.path.insert(0, str(args.code.resolve()))
    from rules.plan_cache import load_fleet
    from rules.workspace import Workspace

    workspace = Workspace.at(args.fleet.resolve())
    load_fleet(workspace)  # fills the parsed-layer cache for this code's fingerprint
    seconds = []
    for _ in range(5):
        bump_shared_stack(args.fleet)
        began = time.process_time()
        load_fleet(workspace)
        seconds.append(time.process_time() - began)
    bump_shared_stack(args.fleet)
    profile = cProfile.Profile()
    profile.enable()
    fleet = load_fleet(workspace)
    profile.disable()
    print(f"re-planned {len(fleet.replanned)} clusters: "
          f"{pstats.Stats(profile).total_calls} Python calls; CPU min {min(seconds):.3f} s, "
          f"median {sorted(seconds)[2]:.3f} s")


if __name__ == "__main__":
    main()
