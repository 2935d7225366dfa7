"""Stackyard: Fabrikate-format stacks rendered per cluster as an incremental doit build."""

__version__ = "0.1.0"
