"""The content-addressed store under `$STACKYARD_CACHE` (default `~/.cache/stackyard`).

`git/<url hash>.git` is one bare mirror per repository, shared by every build on the
machine; `trees/<url hash>/<commit>/` is that commit's files, written once and never
changed, and `trees/<url hash>/<commit>.treeids` the git tree id of each of its folders
(the planner's digest of such a folder; written before the files are renamed into place,
so a checkout always has its ids). Entries are built in a temp folder beside their final
place and renamed into it under a per-entry `flock`, so no build (or doit worker) ever
sees half an entry. A checkout already in the store is used without running git:
rebuilds work offline.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import TYPE_CHECKING

import xxhash

from ..atomic import fresh_temp_folder, write_atomic
from ..errors import warn
from .access import git_auth_environment
from .cache import cache_root
from .locking import locked
from .redact import redact, redact_text

if TYPE_CHECKING:
    import git


def _gitpython() -> ModuleType:
    """GitPython, imported on first use: a no-op build that fetches nothing should not
    pay its import (~60 ms)."""
    import git

    return git


_COMMIT_ID = re.compile(r"^[0-9a-f]{4,40}$")
"""A commit SHA, whole or abbreviated (`git checkout 3f1c2e9`, as Fabrikate ran it);
nothing else reaches `rev-parse`, so no other revision syntax (`main~2`, `@{1}`) does."""
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0"}  # a missing credential fails, never waits for input
_PLAIN = "* -export-subst -export-ignore -text -eol -ident -filter -working-tree-encoding\n"
"""Each mirror's `info/attributes`. It outranks the repository's own `.gitattributes`, so
`git archive` writes every blob as committed: no `$Format$` substitution, no left-out
paths, no line-ending conversion, no filter (LFS). A checkout's folders then hold exactly
what their tree ids name, which is what makes a tree id a faithful digest of them."""


class SourceError(Exception):
    """A source could not be fetched or resolved; the caller adds file and key."""


LOW_SPEED_BYTES = 1000
"""git over HTTP(S) gives up below this many bytes a second for `network_timeout()`."""
SSH_KEEPALIVE_SECONDS = 15
"""git over ssh asks the server for a sign of life after this many silent seconds, and
gives up when none came for `network_timeout()`."""


def network_timeout() -> float:
    """Seconds a fetch may stall (`STACKYARD_NETWORK_TIMEOUT`, default 60): a server that
    accepts and then stops sending must fail the build, not hang it."""
    value = os.environ.get("STACKYARD_NETWORK_TIMEOUT") or "60"
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0
    if not 0 < seconds < math.inf:
        raise SourceError(f"STACKYARD_NETWORK_TIMEOUT is {value!r}; give a number of seconds")
    return seconds


def _low_speed_limit(url: str) -> dict[str, str]:
    """git's low-speed limit for `url`, unless the user set theirs (in git's configuration,
    for this URL or all, or in the environment): without one, git over HTTP waits for a
    stalled server for ever. Read outside any repository: the one the build runs in does
    not configure the mirror's fetches."""
    found = subprocess.run(["git", "config", "--get-urlmatch", "http", url], cwd="/",
                           capture_output=True, text=True, check=False).stdout.lower()
    configured = {line.split()[0] for line in found.splitlines() if line.strip()}
    defaults = {"http.lowspeedlimit": ("GIT_HTTP_LOW_SPEED_LIMIT", str(LOW_SPEED_BYTES)),
                "http.lowspeedtime": ("GIT_HTTP_LOW_SPEED_TIME",
                                      str(max(1, round(network_timeout()))))}
    return {variable: value for key, (variable, value) in defaults.items()
            if key not in configured and variable not in os.environ}


def _ssh_stall_limit() -> dict[str, str]:
    """ssh options that end a fetch from a server that stops answering, unless the user
    chose their own ssh command (`GIT_SSH_COMMAND`, `GIT_SSH` or `core.sshCommand`):
    without them ssh waits for ever for a dead server or a dropped link. Set for every
    URL, since an `insteadOf` rewrite can turn an https:// one into ssh."""
    if "GIT_SSH_COMMAND" in os.environ or "GIT_SSH" in os.environ:
        return {}
    if subprocess.run(["git", "config", "--get", "core.sshCommand"], cwd="/",
                      capture_output=True, text=True, check=False).stdout.strip():
        return {}
    seconds = max(1, round(network_timeout()))
    interval = min(SSH_KEEPALIVE_SECONDS, seconds)
    return {"GIT_SSH_COMMAND": f"ssh -o ConnectTimeout={seconds} "
                               f"-o ServerAliveInterval={interval} "
                               f"-o ServerAliveCountMax={math.ceil(seconds / interval)}"}


def _git_failure(err: git.GitCommandError, url: str) -> str:
    detail = " ".join(str(err.stderr or err).split()).removeprefix("stderr: ").strip("' ")
    if "Operation too slow" in detail or re.search(r"\btimed out\b|not responding", detail):
        detail += " (timed out; STACKYARD_NETWORK_TIMEOUT sets how many seconds it may stall)"
    elif re.search(r"returned error: 30[12378]\b", detail):
        detail += (" (a redirect: git follows none for a source with a token from "
                   "access.yaml, so that the token never reaches another host; write the URL "
                   "it redirects to, in the definition and in access.yaml)")
    return redact_text(detail, url)


def is_local(source: str) -> bool:
    """A git source on this machine: `file://` or a path, not a URL of another scheme nor
    ssh's `[user@]host:path`."""
    if "://" in source:
        return source.lower().startswith("file://")
    colon, slash = source.find(":"), source.find("/")
    return not (colon > 0 and (slash == -1 or colon < slash))


class Store:
    """Mirrors and checkouts; each mirror is fetched at most once per process."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_root()
        self._fetched: set[str] = set()
        self._heads: set[str] = set()
        """Mirrors whose HEAD is the remote's default branch in this process."""
        self._stall_limits: dict[str, dict[str, str]] = {}
        self.token_for: Callable[[str], str | None] = lambda url: None
        """The token for a URL (from `access.yaml`, set by `Sources`)."""

    def _environment(self, url: str) -> dict[str, str]:
        """For git commands that reach the remote: never prompt, never wait for ever for a
        stalled server; send its token if any."""
        token = self.token_for(url)
        if url not in self._stall_limits:
            self._stall_limits[url] = {**_low_speed_limit(url), **_ssh_stall_limit()}
        return {**_GIT_ENV, **self._stall_limits[url],
                **(git_auth_environment(url, token) if token else {})}

    @staticmethod
    def key(url: str) -> str:
        """A path is keyed as git reads it, from the folder doit runs in: `.` in two
        repositories sharing the store is two repositories."""
        if is_local(url) and "://" not in url:
            url = os.path.abspath(url)
        return xxhash.xxh3_64_hexdigest(url.encode())

    def mirror_path(self, url: str) -> Path:
        return self.root / "git" / f"{self.key(url)}.git"

    def tree_path(self, url: str, commit: str) -> Path:
        return self.root / "trees" / self.key(url) / commit

    def resolve(self, url: str, ref: str) -> str:
        """The commit `ref` (a tag, branch, commit SHA or HEAD) names now, fetching first."""
        mirror = self._fresh_mirror(url)
        if ref == "HEAD":
            self._follow_remote_head(url, mirror)
        for candidate in (f"refs/tags/{ref}", f"refs/heads/{ref}", ref):
            if candidate == ref and ref != "HEAD" and not _COMMIT_ID.match(ref):
                continue
            try:
                commit = str(mirror.git.rev_parse("--verify", "--quiet",
                                                  f"{candidate}^{{commit}}"))
            except _gitpython().GitCommandError:
                continue
            if candidate.startswith("refs/tags/") and _names_a_branch(mirror, ref):
                warn(f"{redact(url)} has a tag and a branch named {ref!r}: the tag is used "
                     "(D40 in docs/fabrikate-compat.md)")
            return commit
        hint = ""
        if _COMMIT_ID.match(ref) and len(ref) < 40 and _names_many_objects(mirror, ref):
            hint = " (more than one object starts with it: give more of the commit id)"
        raise SourceError(f"no tag, branch or commit {ref!r} in {redact(url)}{hint}")

    def checkout(self, url: str, commit: str) -> Path:
        """The files of `commit` and their tree ids, materialised once; no git runs when
        both are stored (or when only the files are, from an older Stackyard, and the
        mirror is gone)."""
        target = self.tree_path(url, commit)
        if target.is_dir() and (tree_ids_file(target).is_file()
                                or not self.mirror_path(url).is_dir()):
            return target
        with locked(target.parent / f"{commit}.lock"):
            if target.is_dir():
                self._add_tree_ids(url, commit)
                return target
            mirror = self._mirror(url)
            if not _has_commit(mirror, commit):
                mirror = self._fresh_mirror(url)
                if not _has_commit(mirror, commit):
                    raise SourceError(f"commit {commit}, pinned in stacks.lock, is no longer "
                                      f"in {redact(url)} (its history was rewritten?); "
                                      "`doit lock` pins the current one")
            _plain_attributes(self.mirror_path(url))
            staging = fresh_temp_folder(target.parent, f".{commit}.", 0)  # under its lock
            try:
                _extract_commit(self.mirror_path(url), commit, staging, url)
                entries = _entries(mirror, commit)
                for mode, _, _, path in entries:
                    if mode == _LINK and not _resolves_inside(staging, path):
                        raise SourceError(
                            f"commit {commit} of {redact(url)}: the link {path!r} leads out "
                            "of the repository (through the links it passes): nothing "
                            "outside a checkout is read")
                ids = _tree_ids(mirror, commit, entries)
                write_atomic(tree_ids_file(target), json.dumps(ids, sort_keys=True).encode())
                os.replace(staging, target)
            except tarfile.FilterError as err:
                raise SourceError(f"commit {commit} of {redact(url)}: {err}") from None
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def _add_tree_ids(self, url: str, commit: str) -> None:
        """The sidecar of a checkout made by an older Stackyard, from the mirror when it has
        the commit. That checkout was archived with the repository's attributes applied,
        so when it has a `.gitattributes` its sidecar is empty: its folders stay
        content-hashed."""
        target = self.tree_path(url, commit)
        mirror_path = self.mirror_path(url)
        if tree_ids_file(target).is_file() or not mirror_path.is_dir():
            return
        mirror = _gitpython().Repo(mirror_path)
        if not _has_commit(mirror, commit):
            return
        entries = _entries(mirror, commit)
        attributes = any(PurePosixPath(path).name == ".gitattributes" for *_, path in entries)
        ids = {} if attributes else _tree_ids(mirror, commit, entries)
        write_atomic(tree_ids_file(target), json.dumps(ids, sort_keys=True).encode())

    def _mirror(self, url: str) -> git.Repo:
        """The bare mirror, cloned when absent (a clone is this process's fetch)."""
        path = self.mirror_path(url)
        with locked(path.with_suffix(".lock")):
            if not path.is_dir():
                staging = fresh_temp_folder(path.parent, f".{path.name}.", 0)  # locked
                try:
                    _gitpython().Repo.clone_from(url, staging / "m", mirror=True,
                                                 env=self._environment(url))
                    os.replace(staging / "m", path)
                    self._heads.add(url)  # a clone takes the remote's HEAD
                except _gitpython().GitCommandError as err:
                    raise SourceError(f"cannot fetch {redact(url)}: "
                                      f"{_git_failure(err, url)}") from None
                except (_gitpython().UnsafeProtocolError, _gitpython().UnsafeOptionError):
                    raise SourceError(
                        f"cannot fetch {redact(url)}: refused, it makes git run a program "
                        "(a `<transport>::` remote helper; `ext::` runs any command); use "
                        "an https://, ssh:// or file:// URL") from None
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
                self._fetched.add(url)
        return _gitpython().Repo(path)

    def _fresh_mirror(self, url: str) -> git.Repo:
        mirror = self._mirror(url)
        if url not in self._fetched:
            with locked(self.mirror_path(url).with_suffix(".lock")):
                try:
                    mirror.git.fetch("--prune", "--tags", "origin", env=self._environment(url))
                except _gitpython().GitCommandError as err:
                    raise SourceError(f"cannot fetch {redact(url)}: "
                                      f"{_git_failure(err, url)}") from None
            self._fetched.add(url)
        return mirror

    def _follow_remote_head(self, url: str, mirror: git.Repo) -> None:
        """Point the mirror's HEAD at the remote's default branch now. `git fetch` never
        moves a mirror's HEAD, so it stayed the branch it was cloned with: a changed
        default branch was never followed, and once the old one was deleted HEAD named
        nothing."""
        if url in self._heads:
            return
        with locked(self.mirror_path(url).with_suffix(".lock")):
            try:
                listing = mirror.git.ls_remote("--symref", "origin", "HEAD",
                                               env=self._environment(url))
                for line in listing.splitlines():
                    target, _, name = line.removeprefix("ref: ").partition("\t")
                    if line.startswith("ref: ") and name == "HEAD":
                        mirror.git.symbolic_ref("HEAD", target)
            except _gitpython().GitCommandError as err:
                raise SourceError(f"cannot fetch {redact(url)}: "
                                  f"{_git_failure(err, url)}") from None
        self._heads.add(url)


def _extract_commit(mirror: Path, commit: str, staging: Path, url: str) -> None:
    """`git archive` of `commit` unpacked into `staging` as it streams: holding the archive
    in memory cost twice the commit's size (2.1 GB for a 1 GiB file the build never
    reads)."""
    # git's messages go to a file: a pipe read only at the end would fill (64 KiB of
    # warnings about the repository's .gitattributes) and stop git, and so the build
    with tempfile.TemporaryFile() as messages, subprocess.Popen(
            ["git", "--git-dir", str(mirror), "archive", "--format=tar", commit],
            stdout=subprocess.PIPE, stderr=messages) as archive:
        assert archive.stdout is not None
        try:
            with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
                # "data": a link pointing out of the checkout would let a render read the
                # build machine's files
                tar.extractall(staging, filter="data")
            archive.stdout.read()  # the padding after the last member: git then exits
            broken = ""
        except tarfile.ReadError as err:  # the stream ended early: git says why
            broken = str(err)
        archive.wait()
        messages.seek(0)
        failure = messages.read()[-4000:].decode(errors="replace").strip()
    if archive.returncode or broken:
        raise SourceError(f"cannot archive commit {commit} of {redact(url)}: "
                          f"{redact_text(failure, url) or broken}")


def _names_many_objects(mirror: git.Repo, prefix: str) -> bool:
    try:
        return len(mirror.git.rev_parse(f"--disambiguate={prefix}").split()) > 1
    except _gitpython().GitCommandError:
        return False


def _names_a_branch(mirror: git.Repo, name: str) -> bool:
    try:
        mirror.git.rev_parse("--verify", "--quiet", f"refs/heads/{name}")
    except _gitpython().GitCommandError:
        return False
    return True


def _has_commit(mirror: git.Repo, commit: str) -> bool:
    try:
        mirror.git.cat_file("-e", f"{commit}^{{commit}}")
    except _gitpython().GitCommandError:
        return False
    return True


def tree_ids_file(checkout: Path) -> Path:
    """`<commit>.treeids` beside the checkout: JSON, folder path ("." for the root) ->
    tree id."""
    return checkout.with_name(f"{checkout.name}.treeids")


def _plain_attributes(mirror: Path) -> None:
    """Checked before each archive: a mirror cloned by an older Stackyard lacks it."""
    file = mirror / "info" / "attributes"
    if not file.is_file() or file.read_text() != _PLAIN:
        write_atomic(file, _PLAIN.encode())


def _entries(mirror: git.Repo, commit: str) -> list[tuple[str, str, str, str]]:
    """(mode, type, object, path) of every file and folder of `commit`."""
    listing = mirror.git.ls_tree("-r", "-t", "-z", "--full-tree", commit,
                                 stdout_as_string=False)
    entries = []
    for record in listing.split(b"\0"):
        if record:
            meta, _, path = record.partition(b"\t")
            mode, kind, obj = meta.decode().split()
            entries.append((mode, kind, obj, os.fsdecode(path)))
    return entries


_LINK = "120000"  # git's mode of a symbolic link
_MOST_LINKS_FOLLOWED = 40  # as Linux's own limit for one path


def _resolves_inside(root: Path, path: str) -> bool:
    """Whether `root/path`, its links followed one part at a time (each read with
    readlink, never by the system: a chain of links, or one past PATH_MAX, fooled
    tarfile's own check), stays inside `root`. A dangling link inside is fine."""
    pending = list(reversed(PurePosixPath(path).parts))
    resolved: list[str] = []
    followed = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if not resolved:
                return False
            resolved.pop()
        elif part != ".":
            candidate = root.joinpath(*resolved, part)
            if not candidate.is_symlink():
                resolved.append(part)
                continue
            followed += 1
            target = os.readlink(candidate)
            if os.path.isabs(target) or followed > _MOST_LINKS_FOLLOWED:
                return False
            pending.extend(reversed(PurePosixPath(target).parts))
    return True


def _tree_ids(mirror: git.Repo, commit: str, entries: list[tuple[str, str, str, str]]
              ) -> dict[str, str]:
    """Path -> tree id of each folder of `commit` (root included) with no symbolic link at
    any depth: content hashing follows a link, perhaps out of the folder, and a tree id
    does not, so such folders are left to content hashing."""
    ids = {".": str(mirror.git.rev_parse(f"{commit}^{{tree}}"))}
    linked: set[str] = set()
    for mode, kind, obj, path in entries:
        if kind == "tree":
            ids[path] = obj
        elif mode == _LINK:
            linked.update(str(parent) for parent in PurePosixPath(path).parents)
    return {path: tree for path, tree in ids.items() if path not in linked}


class TreeIds:
    """Tree ids of stored checkouts, read from their sidecars (once per commit): no git
    runs and nothing is hashed."""

    def __init__(self, root: Path | None = None) -> None:
        self.trees = (root or cache_root()) / "trees"
        self._read: dict[Path, dict[str, str]] = {}

    def of(self, path: Path) -> str | None:
        """The tree id of `path` when it is a folder of a stored checkout that its sidecar
        names; None otherwise (not in the store, no sidecar, not a folder of the commit,
        or a folder with a link inside)."""
        if not path.is_relative_to(self.trees):
            return None
        parts = path.relative_to(self.trees).parts
        if len(parts) < 2:
            return None
        checkout = self.trees / parts[0] / parts[1]
        ids = self._read.get(checkout)
        if ids is None:
            if not checkout.is_dir():  # not memoised: planning may store it next
                return None
            ids = self._read[checkout] = _load_tree_ids(checkout)
        return ids.get("/".join(parts[2:]) or ".")


def _load_tree_ids(checkout: Path) -> dict[str, str]:
    try:
        return json.loads(tree_ids_file(checkout).read_bytes())
    except (OSError, ValueError):  # an older checkout without one: content hashing
        return {}
