"""Rendered manifests by content digest, in one SQLite file beside doit's state.

One row per distinct render instead of one file (with its input record beside it, for
`doit info`): one file to open per process instead of 20,000 files. Clusters whose inputs
for a node are the same share its row. WAL mode lets doit's worker processes write while
others read. Each row also keeps its content's fingerprint (the xxh3 digest that
`FileState` gives a file, and the size), which output files are checked against.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Callable
from multiprocessing.util import Finalize
from pathlib import Path
from typing import NamedTuple, TypeVar

from .build_lock import no_build_but_this
from .errors import StackyardError, access_problem, warn
from .filestate import content_digest

_WAL_KEPT_BYTES = 16 << 20  # what the write-ahead log is cut back to after a checkpoint
_SCHEMA = 1
"""The store's format, in SQLite's `user_version`: raise it whenever a table changes. A
store of another format (a CI cache restored from a branch on another Stackyard) is
started again; one from before there was a number (0) is kept if its tables fit."""
_TABLES = {
    "rendered": ("digest text primary key", "content blob not null", "inputs text not null"),
    # apart from the contents: a scan of small rows reads a few pages, not them all
    "fingerprints": ("digest text primary key", "content_digest text not null",
                     "size integer not null"),
    # the files of each input folder a render read, by the folder's digest: what
    # `doit info` compares to say which files of a chart changed
    "listings": ("digest text primary key", "files text not null"),
}
_DAMAGE = frozenset({11, 26})  # SQLITE_CORRUPT, SQLITE_NOTADB
_T = TypeVar("_T")


class Fingerprint(NamedTuple):
    digest: str
    size: int


class RenderStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._known: set[str] | None = None
        self._fingerprints: dict[str, Fingerprint] = {}
        self._all_fingerprints_read = False
        self.listed: set[str] = set()
        """The inputs digests of renders whose folders this process listed."""

    def _db(self) -> sqlite3.Connection:
        """A connection per process and thread: one must not cross doit's fork() (`-n`)
        nor its threads (`-P thread`). Closed when the process ends: the last connection
        to close moves the write-ahead log into the main file, so `renders.sqlite3` alone
        is the whole store (what a CI cache of `*.sqlite3` keeps)."""
        connection, pid = getattr(self._local, "connection", None), os.getpid()
        if connection is None or self._local.pid != pid:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                connection = self._open()
            except sqlite3.DatabaseError as err:
                if not _damaged(err):  # busy past the timeout, a full disk, no access
                    raise StackyardError(f"cannot open the render store: {err}"
                                         f"{access_problem(self.path)}", file=self.path) from None
                self._start_again(f"a damaged render store ({err})")
                connection = self._open()
            # multiprocessing's exit hooks, which run in doit's workers too (not atexit)
            Finalize(None, connection.close, exitpriority=0)
            self._local.connection, self._local.pid = connection, pid
        return connection

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=60)
        try:
            connection.execute("pragma journal_mode=wal")
            reason = _other_format(connection)
            if reason:
                connection.close()
                self._start_again(reason)
                connection = sqlite3.connect(self.path, timeout=60)
                connection.execute("pragma journal_mode=wal")
            connection.execute("pragma synchronous=normal")
            connection.execute(f"pragma journal_size_limit={_WAL_KEPT_BYTES}")
            with connection:
                for table, columns in _TABLES.items():
                    connection.execute(f"create table if not exists {table} "
                                       f"({', '.join(columns)})")
                if connection.execute("pragma user_version").fetchone()[0] != _SCHEMA:
                    connection.execute(f"pragma user_version={_SCHEMA}")
        except BaseException:
            connection.close()
            raise
        return connection

    def _start_again(self, reason: str) -> None:
        """Delete the store and its log, which hold only a cache, and say why. Not under
        another process that has it open (a `doit -n` worker's siblings and main process,
        another build): that one would go on writing to the deleted file. There the
        caller fails, saying to delete it."""
        with no_build_but_this(self.path.parent) as alone:
            alone = (alone and multiprocessing.parent_process() is None
                     and not multiprocessing.active_children()
                     and threading.active_count() == 1)
            if not alone:
                raise StackyardError(
                    f"cannot use {reason}: another Stackyard process is using it; once it "
                    f"has finished, delete {self.path.name} (and its -wal and -shm files) "
                    "and build again", file=self.path)
            connection = getattr(self._local, "connection", None)
            if connection is not None and self._local.pid == os.getpid():
                connection.close()
            self._local.connection = None
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        warn(f"ignoring {reason}: it is started again, and its renders made again",
             file=self.path)
        self._known, self._fingerprints, self._all_fingerprints_read = None, {}, False
        self.listed.clear()

    def _use(self, doing: str, query: Callable[[sqlite3.Connection], _T]) -> _T:
        """`query` on this thread's connection, with SQLite's errors (a full disk, a lock
        held past the timeout) as the store's own, naming it: callers report
        StackyardError and need not know the store is SQLite. A store found damaged (a
        file cut short by a cache tool) is started again, and `query` runs on the new one."""
        try:
            return query(self._db())
        except sqlite3.Error as err:
            if not _damaged(err):
                raise StackyardError(f"cannot {doing}: {err}{access_problem(self.path)}",
                                     file=self.path) from None
            self._start_again(f"a damaged render store ({err})")
        try:
            return query(self._db())
        except sqlite3.Error as err:
            raise StackyardError(f"cannot {doing}: {err}{access_problem(self.path)}",
                                 file=self.path) from None

    def has(self, digest: str) -> bool:
        if self._known is not None and digest in self._known:
            return True
        return self._use("read the renders", lambda db: db.execute(
            "select 1 from rendered where digest = ?", (digest,)).fetchone() is not None)

    def digests(self) -> set[str]:
        """Every stored digest, read once (to decide many tasks without a query each)."""
        if self._known is None:
            self._known = self._use("read the renders", lambda db: {
                d for (d,) in db.execute("select digest from rendered")})
        return self._known

    def count(self) -> int:
        return self._use("read the renders", lambda db: int(
            db.execute("select count(*) from rendered").fetchone()[0]))

    def get(self, digest: str) -> bytes:
        """A render this run's tasks made or found stored."""
        content = self._content(digest)
        if content is None:  # the store was started again (damaged), or deleted, since
            raise StackyardError(f"render {digest} is no longer in the store: run doit "
                                 "again to make it", file=self.path)
        return content

    def _content(self, digest: str) -> bytes | None:
        row = self._use("read a render", lambda db: db.execute(
            "select content from rendered where digest = ?", (digest,)).fetchone())
        return None if row is None else bytes(row[0])

    def inputs(self, digest: str) -> str | None:
        """The JSON record of what produced a render (see `explain`)."""
        row = self._use("read a render", lambda db: db.execute(
            "select inputs from rendered where digest = ?", (digest,)).fetchone())
        return None if row is None else str(row[0])

    def put(self, digest: str, content: bytes, inputs: str) -> None:
        fingerprint = Fingerprint(content_digest(content), len(content))

        def insert(connection: sqlite3.Connection) -> None:
            with connection:
                connection.execute("insert or replace into rendered (digest, content, "
                                   "inputs) values (?, ?, ?)", (digest, content, inputs))
                _put_fingerprint(connection, digest, fingerprint)

        self._use("store a render", insert)
        self._fingerprints[digest] = fingerprint

    def put_listings(self, inputs: str, listings: dict[str, dict[str, str]]) -> None:
        """The listings (by folder digest) of the input folders of a render whose inputs
        have the digest `inputs`: once per process for each `inputs`."""
        rows = [(digest, json.dumps(files)) for digest, files in listings.items()]

        def insert(connection: sqlite3.Connection) -> None:
            with connection:
                connection.executemany("insert or ignore into listings (digest, files) "
                                       "values (?, ?)", rows)

        if rows:
            self._use("store a render", insert)
        self.listed.add(inputs)

    def listing(self, digest: str) -> dict[str, str] | None:
        row = self._use("read a listing", lambda db: db.execute(
            "select files from listings where digest = ?", (digest,)).fetchone())
        return None if row is None else json.loads(row[0])

    def fingerprint(self, digest: str, *, fresh: bool = False) -> Fingerprint | None:
        """The content digest and size of a render; None when it is not stored. All are
        read at the first call (to check many output folders); `fresh` reads this one
        again (a render with hooks, which another process may have made again)."""
        if fresh:
            self._fingerprints.pop(digest, None)
        elif not self._all_fingerprints_read:
            rows = self._use("read the renders", lambda db: db.execute(
                "select digest, content_digest, size from fingerprints").fetchall())
            for row_digest, content, size in rows:
                self._fingerprints.setdefault(row_digest, Fingerprint(content, size))
            self._all_fingerprints_read = True
        if digest not in self._fingerprints:
            fingerprint = self._read_fingerprint(digest)
            if fingerprint is None:  # not stored (yet): ask again next time
                return None
            self._fingerprints[digest] = fingerprint
        return self._fingerprints[digest]

    def _read_fingerprint(self, digest: str) -> Fingerprint | None:
        """From its row; a render a Stackyard before fingerprints stored gets one now."""
        row = self._use("read a render", lambda db: db.execute(
            "select content_digest, size from fingerprints where digest = ?",
            (digest,)).fetchone())
        if row is not None:
            return Fingerprint(*row)
        content = self._content(digest)
        if content is None:
            return None
        fingerprint = Fingerprint(content_digest(content), len(content))

        def insert(connection: sqlite3.Connection) -> None:
            with connection:
                _put_fingerprint(connection, digest, fingerprint)

        self._use("store a render", insert)
        return fingerprint

    def prune(self, keep: set[str]) -> int:
        """Drop renders no cluster uses any more, and the listings of folders no kept
        render read; returns how many renders."""
        stale = [(d,) for d in self.digests() - keep]

        def delete(connection: sqlite3.Connection) -> None:
            with connection:
                connection.executemany("delete from rendered where digest = ?", stale)
                connection.executemany("delete from fingerprints where digest = ?", stale)
                read = {digest for (inputs,) in connection.execute("select inputs from rendered")
                        for digest in json.loads(inputs).get("inputs", {}).values()}
                unread = [(d,) for (d,) in connection.execute("select digest from listings")
                          if d not in read]
                connection.executemany("delete from listings where digest = ?", unread)

        if stale:
            self._use("drop unused renders", delete)
            self.listed.clear()
            self._use("give the space of unused renders back", _shrink)
            self._known = None
            for (digest,) in stale:
                self._fingerprints.pop(digest, None)
        return len(stale)


def _put_fingerprint(connection: sqlite3.Connection, digest: str,
                     fingerprint: Fingerprint) -> None:
    connection.execute("insert or replace into fingerprints (digest, content_digest, size) "
                       "values (?, ?, ?)", (digest, *fingerprint))


def _shrink(connection: sqlite3.Connection) -> None:
    """Give the pages of dropped renders back: a store kept in a CI cache for months
    must not keep the size of its largest past (a 1 MB values file in 25 clusters
    left 182 MB for 26 rows). A prune drops about half the rows, so the file is
    rewritten then (VACUUM); SQLite's auto-vacuum would do it page by page, but its
    pointer maps cost every render's insert more writes (~0.5 s more system time in
    a 100-cluster cold build)."""
    connection.execute("pragma auto_vacuum=none")  # a store made with it: off again
    connection.execute("vacuum")
    connection.execute("pragma wal_checkpoint(truncate)").fetchall()


def _damaged(err: sqlite3.Error) -> bool:
    """SQLite found the file damaged (not busy, not full, not out of reach)."""
    return (getattr(err, "sqlite_errorcode", 0) & 0xFF) in _DAMAGE


def _other_format(connection: sqlite3.Connection) -> str:
    """Why the store is not of this Stackyard's format, or "" when it is (or is new)."""
    version = connection.execute("pragma user_version").fetchone()[0]
    if version not in (0, _SCHEMA):
        return (f"a render store of another Stackyard version (format {version}, this one "
                f"uses {_SCHEMA})")
    for table, columns in _TABLES.items():
        found = [row[1] for row in connection.execute(f"pragma table_info({table})")]
        if found and found != [column.split()[0] for column in columns]:
            return (f"a render store of another Stackyard version (table {table} has "
                    f"columns {', '.join(found)})")
    return ""
