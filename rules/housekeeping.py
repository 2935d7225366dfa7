"""Keeping `.stackyard/` from growing without end in a CI cache kept for months.

Renders no cluster uses are dropped once they outnumber the used ones; built chart copies
(one per chart content) go when no render has loaded them for two weeks (a render that
loads one renews its date; one dropped too early is built again); temp files of killed
writers go at the next build.
"""

from __future__ import annotations

import os
import shutil
import time

from .atomic import remove_abandoned
from .plan_cache import Fleet
from .workspace import Workspace

CHART_BUILD_DAYS = 14


def tidy(fleet: Fleet, workspace: Workspace) -> None:
    """Run before a build's tasks."""
    remove_abandoned(workspace.temp_dir)
    _drop_unused_renders(fleet, workspace)
    _drop_old_chart_builds(workspace, time.time() - CHART_BUILD_DAYS * 86400)


def _drop_unused_renders(fleet: Fleet, workspace: Workspace) -> None:
    used = {node.digest for summary in fleet.summaries.values() for node in summary.nodes}
    if workspace.renders.count() > 2 * len(used) + 100:
        workspace.renders.prune(used)


def _drop_old_chart_builds(workspace: Workspace, cutoff: float) -> None:
    """Chart copies last used before `cutoff`, with any staging folder a killed build
    left inside them."""
    try:
        entries = list(os.scandir(workspace.chart_builds_dir))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry.path, ignore_errors=True)
