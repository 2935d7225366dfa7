"""Chart repositories a chart's dependencies name by alias (`@stable`, `alias:stable`).

Helm resolves such a name through its own `repositories.yaml` (what `helm repo add` wrote),
and Fabrikate relied on that. Stackyard reads the same file, only when it pins or downloads
such a dependency: the alias, not the URL, is what `stacks.lock` and the store record, so
the file is no input of a build that has its pins.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import yaml

from .store import SourceError


class HelmRepository(NamedTuple):
    url: str
    login: str | None
    """`<user>:<password>` when `helm repo add` was given them."""


def is_alias(repository: str) -> bool:
    return repository.startswith(("@", "alias:"))


def config_file() -> Path:
    """Where Helm keeps `repositories.yaml` on Linux, with Helm's own overrides."""
    if os.environ.get("HELM_REPOSITORY_CONFIG"):
        return Path(os.environ["HELM_REPOSITORY_CONFIG"])
    home = (os.environ.get("HELM_CONFIG_HOME")
            or Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "helm")
    return Path(home) / "repositories.yaml"


def lookup(alias: str) -> HelmRepository:
    """The repository `alias` names in Helm's `repositories.yaml`."""
    name = alias.removeprefix("@") if alias.startswith("@") else alias.removeprefix("alias:")
    file = config_file()
    add = (f"add it (as `helm repo add {name} <url>` does) or write the repository's URL in "
           "the chart's dependencies")
    try:
        data = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise SourceError(f"chart repository {alias!r}: there is no {file} naming it; "
                          f"{add}") from None
    except (OSError, ValueError, yaml.YAMLError) as err:  # ValueError: not UTF-8
        raise SourceError(f"chart repository {alias!r}: cannot read {file}: "
                          f"{' '.join(str(err).split())}") from None
    listed = data.get("repositories") if isinstance(data, dict) else None
    entries = [e for e in listed if isinstance(e, dict)] if isinstance(listed, list) else []
    for entry in entries:
        if entry.get("name") == name:
            if not entry.get("url"):
                raise SourceError(f"chart repository {alias!r}: its entry in {file} has no "
                                  "`url`")
            user, password = entry.get("username"), entry.get("password")
            login = f"{user}:{password or ''}" if user else None
            return HelmRepository(str(entry["url"]), login)
    names = sorted(str(e.get("name")) for e in entries)
    raise SourceError(f"chart repository {alias!r}: {file} has no repository named {name!r} "
                      f"(it has: {', '.join(names) or 'none'}); {add}")
