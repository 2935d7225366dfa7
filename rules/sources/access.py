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
from urllib.parse import urlsplit

from ..errors import StackyardError, display_path, warn
from ..yamlio import load_file
from .cache import CACHE_TAG, store_entry

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
    """Every `access.yaml` met while planning: which variable holds each source's token.

    The repository's own files say so freely. A fetched stack's (another team's
    repository) may only name a variable that the repository's root `access.yaml` gives to
    the same scheme, host and port (D42): else any stack could have any secret of the
    build's environment sent to a server of its choosing.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.variables: dict[str, str] = {}
        self.fetched: dict[str, tuple[str, Path]] = {}
        """Source -> (variable, file) from the `access.yaml` of fetched stacks."""
        self._read: set[Path] = set()
        self._refused: set[str] = set()
        self._granted: set[str] = set()
        self._grants: set[tuple[str, tuple[str, str, int | None]]] | None = None
        """(variable, origin) pairs of the root file: the only grants (a file that every
        plan watches; grants read from wherever planning went, or from a walk of the
        repository, would depend on which clusters were planned, or miss a file added
        later). Read at the first use, not when made: a no-op build makes its Sources to
        tidy `stacks.lock`, and must not read or warn of anything more."""

    def register(self, file: Path) -> None:
        """Read `file` once; a source already registered keeps its first variable, and
        the repository's own files come first, the root one before all."""
        self._read_root()
        if file not in self._read:
            self._register(file)

    def _read_root(self) -> set[tuple[str, tuple[str, str, int | None]]]:
        if self._grants is None:
            root_file = self.root / ACCESS_FILE
            entries = self._register(root_file) if root_file.is_file() else {}
            self._grants = {(variable, origin(source)) for source, variable in entries.items()}
        return self._grants

    def _register(self, file: Path) -> dict[str, str]:
        self._read.add(file)
        fetched = store_entry(file) is not None
        entries = read_access_file(file)
        for source, variable in entries.items():
            if fetched:
                self.fetched.setdefault(source, (variable, file))
            elif source not in self.variables:
                self.variables[source] = variable
                _warn_if_unset(variable, source, file)
        return entries

    def variable(self, url: str) -> str:
        grants = self._read_root()
        if url in self.variables:
            return self.variables[url]
        if url not in self.fetched:
            return ""
        variable, file = self.fetched[url]
        if origin(url)[1] and (variable, origin(url)) in grants:
            if url not in self._granted:
                self._granted.add(url)
                _warn_if_unset(variable, url, file)
            return variable
        if url not in self._refused:
            self._refused.add(url)
            warn(f"{variable} is not sent: a fetched stack's access.yaml may only name a "
                 "variable that the fleet's root access.yaml "
                 f"({display_path(self.root / ACCESS_FILE)}) gives to the same host; add "
                 f"`{url}: {variable}` to it to send it", file=file, key=url)
        return ""


def _warn_if_unset(variable: str, source: str, file: Path) -> None:
    if not os.environ.get(variable):
        warn(f"environment variable {variable} is not set: {source} is fetched without a "
             "token", file=file, key=source)


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port): where a credential may be sent. A URL whose port is not a
    number has no host here: nothing is sent to it, and git or HTTP says what is wrong."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        return scheme, "", None
    return scheme, (parts.hostname or ""), port or {"http": 80, "https": 443}.get(scheme)


def repository_access_files(root: Path) -> list[Path]:
    """Every `access.yaml` below `root`, not in hidden folders (`.git`, `.stackyard`,
    `.venv`), `generated/` or a source store kept there (its copies of fetched stacks are
    not the repository's own), links not followed, sorted. A loop and a stack, not
    recursion: a tree of any depth is walked."""
    found, folders = [], [root]
    while folders:
        try:
            entries = list(os.scandir(folders.pop()))
        except OSError:  # unreadable: nothing of the repository's own
            continue
        if any(entry.name == CACHE_TAG for entry in entries):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if not entry.name.startswith(".") and entry.name != "generated":
                    folders.append(Path(entry.path))
            elif entry.name == ACCESS_FILE:
                found.append(Path(entry.path))
    return sorted(found)


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
    `GIT_CONFIG_COUNT` entries (an `insteadOf` rewrite given that way), which stay.

    git adds an `extraHeader` to every request of the fetch, also to the host a redirect
    leads to (by default it follows the first request's), so redirects are not followed
    for `url`: the token never leaves the source's own origin."""
    count = os.environ.get("GIT_CONFIG_COUNT") or "0"
    if not count.isdigit():
        raise StackyardError(f"GIT_CONFIG_COUNT is {count!r}, not a number of git settings; "
                             "fix or unset it")
    index = int(count)
    return {"GIT_CONFIG_COUNT": str(index + 2),
            f"GIT_CONFIG_KEY_{index}": f"http.{url}.extraHeader",
            f"GIT_CONFIG_VALUE_{index}": f"Authorization: {basic_auth(token_value)}",
            f"GIT_CONFIG_KEY_{index + 1}": f"http.{url}.followRedirects",
            f"GIT_CONFIG_VALUE_{index + 1}": "false"}
