"""Stackyard: `doit` renders every cluster of environments/ into generated/ (see README.md).

Copy this file into any repo with `stacks/` and `environments/` (and `pip install stackyard`).
"""

from pathlib import Path

from rules.fleet import doit_config, tasks_for

ROOT = Path(__file__).absolute().parent.resolve()  # a linked dodo.py builds the repo it is in
DOIT_CONFIG = doit_config(ROOT)
task_stackyard = tasks_for(ROOT)
