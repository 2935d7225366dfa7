"""Fabrikate's `access.yaml`: beside a `component.yaml`, a map of source URL -> the name of
an environment variable holding a token for it.

The first definition of a source wins, as in Fabrikate. The token is sent as HTTP basic
auth (user name = token, empty password: what Fabrikate's `https://<token>@host/...` URL
meant; a `<user>:<password>` value is both) and only ever lives in the environment of the
git or HTTP request, or an OCI registry call's stdin: never in a URL, a mirror's config,
the lock, the output or a message.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from ..errors import StackyardError, warn
from ..yamlio import load_file

ACCESS_FILE = "access.yaml"


def read_access_file(file: Path) -> dict[str, str]:
    """The file's source -> variable entries; errors name the file and key."""
    data = load_file(file)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StackyardError("expected a mapping of source URL to environment variable name",
                             file=file)
    for source, variable in data.items():
        if not isinstance(variable, str) or not variable:
            raise StackyardError("expected the name of an environment variable",
                                 file=file, key=str(source))
    return {str(source): variable for source, variable in data.items()}


class AccessTokens:
    """Every `access.yaml` met while planning: which variable holds each source's token."""

    def __init__(self) -> None:
        self.variables: dict[str, str] = {}
        self._read: set[Path] = set()

    def register(self, file: Path) -> None:
        """Read `file` once; a source already registered keeps its first variable."""
        if file in self._read:
            return
        self._read.add(file)
        for source, variable in read_access_file(file).items():
            if source in self.variables:
                continue
            self.variables[source] = variable
            if not os.environ.get(variable):
                warn(f"environment variable {variable} is not set: {source} is fetched "
                     "without a token", file=file, key=source)

    def variable(self, url: str) -> str:
        return self.variables.get(url, "")


def token(variable: str) -> str | None:
    return os.environ.get(variable) or None if variable else None


def basic_auth(token_value: str) -> str:
    """The `Authorization` header value for a token: `<user>:<password>` as it is (what
    `https://<user>:<password>@host` meant to Fabrikate), a bare token as the user name."""
    credentials = token_value if ":" in token_value else f"{token_value}:"
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def git_auth_environment(url: str, token_value: str) -> dict[str, str]:
    """git configuration, passed in the environment (not argv, not the mirror's config),
    that sends the token to `url` only. It is added after the user's own
    `GIT_CONFIG_COUNT` entries (an `insteadOf` rewrite given that way), which stay."""
    count = os.environ.get("GIT_CONFIG_COUNT") or "0"
    if not count.isdigit():
        raise StackyardError(f"GIT_CONFIG_COUNT is {count!r}, not a number of git settings; "
                             "fix or unset it")
    index = int(count)
    return {"GIT_CONFIG_COUNT": str(index + 1),
            f"GIT_CONFIG_KEY_{index}": f"http.{url}.extraHeader",
            f"GIT_CONFIG_VALUE_{index}": f"Authorization: {basic_auth(token_value)}"}
