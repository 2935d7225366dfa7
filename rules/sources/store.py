"""The content-addressed store under `$STACKYARD_CACHE` (default `~/.cache/stackyard`).

`git/<url hash>.git` is one bare mirror per repository, shared by every build on the
machine; `trees/<url hash>/<commit>/` is that commit's files, written once and never
changed. Entries are built in a temp folder beside their final place and renamed into it
under a per-entry `flock`, so no build (or doit worker) ever sees half an entry. A
checkout already in the store is used without running git: rebuilds work offline.
"""

from __future__ import annotations

import fcntl
import io
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import xxhash

from .redact import redact, redact_text

if TYPE_CHECKING:
    import git


def _gitpython() -> ModuleType:
    """GitPython, imported on first use: a no-op build that fetches nothing should not
    pay its import (~60 ms)."""
    import git

    return git


_SHA = re.compile(r"^[0-9a-f]{40}$")
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0"}  # a missing credential fails, never waits for input


class SourceError(Exception):
    """A source could not be fetched or resolved; the caller adds file and key."""


def cache_root() -> Path:
    return Path(os.environ.get("STACKYARD_CACHE") or Path.home() / ".cache" / "stackyard")


@contextmanager
def _locked(lock: Path) -> Iterator[None]:
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _git_failure(err: git.GitCommandError, url: str) -> str:
    detail = " ".join(str(err.stderr or err).split())
    return redact_text(detail.removeprefix("stderr: ").strip("' "), url)


class Store:
    """Mirrors and checkouts; each mirror is fetched at most once per process."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_root()
        self._fetched: set[str] = set()

    @staticmethod
    def key(url: str) -> str:
        return xxhash.xxh3_64_hexdigest(url.encode())

    def mirror_path(self, url: str) -> Path:
        return self.root / "git" / f"{self.key(url)}.git"

    def tree_path(self, url: str, commit: str) -> Path:
        return self.root / "trees" / self.key(url) / commit

    def resolve(self, url: str, ref: str) -> str:
        """The commit `ref` (a tag, branch, commit SHA or HEAD) names now, fetching first."""
        mirror = self._fresh_mirror(url)
        for candidate in (f"refs/tags/{ref}", f"refs/heads/{ref}", ref):
            if candidate == ref and ref != "HEAD" and not _SHA.match(ref):
                continue
            try:
                return str(mirror.git.rev_parse("--verify", "--quiet", f"{candidate}^{{commit}}"))
            except _gitpython().GitCommandError:
                continue
        raise SourceError(f"no tag, branch or commit {ref!r} in {redact(url)}")

    def checkout(self, url: str, commit: str) -> Path:
        """The files of `commit`, materialised once; no git runs when already stored."""
        target = self.tree_path(url, commit)
        if target.is_dir():
            return target
        with _locked(target.parent / f"{commit}.lock"):
            if target.is_dir():
                return target
            mirror = self._mirror(url)
            if not _has_commit(mirror, commit):
                mirror = self._fresh_mirror(url)
                if not _has_commit(mirror, commit):
                    raise SourceError(f"commit {commit} is not in {redact(url)}")
            archive = mirror.git.archive("--format=tar", commit, stdout_as_string=False)
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{commit}."))
            try:
                with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                    # "data": a link pointing out of the checkout would let a render read
                    # the build machine's files
                    tar.extractall(staging, filter="data")
                os.replace(staging, target)
            except tarfile.FilterError as err:
                raise SourceError(f"commit {commit} of {redact(url)}: {err}") from None
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def _mirror(self, url: str) -> git.Repo:
        """The bare mirror, cloned when absent (a clone is this process's fetch)."""
        path = self.mirror_path(url)
        with _locked(path.with_suffix(".lock")):
            if not path.is_dir():
                staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
                try:
                    _gitpython().Repo.clone_from(url, staging / "m", mirror=True, env=_GIT_ENV)
                    os.replace(staging / "m", path)
                except _gitpython().GitCommandError as err:
                    raise SourceError(f"cannot fetch {redact(url)}: "
                                      f"{_git_failure(err, url)}") from None
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
                self._fetched.add(url)
        return _gitpython().Repo(path)

    def _fresh_mirror(self, url: str) -> git.Repo:
        mirror = self._mirror(url)
        if url not in self._fetched:
            with _locked(self.mirror_path(url).with_suffix(".lock")):
                try:
                    mirror.git.fetch("--prune", "--tags", "origin", env=_GIT_ENV)
                except _gitpython().GitCommandError as err:
                    raise SourceError(f"cannot fetch {redact(url)}: "
                                      f"{_git_failure(err, url)}") from None
            self._fetched.add(url)
        return mirror


def _has_commit(mirror: git.Repo, commit: str) -> bool:
    try:
        mirror.git.cat_file("-e", f"{commit}^{{commit}}")
    except _gitpython().GitCommandError:
        return False
    return True
