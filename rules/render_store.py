"""Rendered manifests by content digest, in one SQLite file beside doit's state.

One row per distinct render instead of one file (with its input record beside it, for
`doit info`): one file to open per process instead of 20,000 files. Clusters whose inputs
for a node are the same share its row. WAL mode lets doit's worker processes write while
others read. Each row also keeps its content's fingerprint (the xxh3 digest that
`FileState` gives a file, and the size), which output files are checked against.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from .errors import StackyardError, warn
from .filestate import content_digest

_WAL_KEPT_BYTES = 16 << 20  # what the write-ahead log is cut back to after a checkpoint


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
        nor its threads (`-P thread`)."""
        connection, pid = getattr(self._local, "connection", None), os.getpid()
        if connection is None or self._local.pid != pid:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                connection = self._open()
            except sqlite3.OperationalError as err:  # busy past the timeout, a full disk
                raise StackyardError(f"cannot open the render store: {err}",
                                     file=self.path) from None
            except sqlite3.DatabaseError:  # only a cache: start it again, say so
                warn(f"ignoring unreadable render store {self.path}")
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
                connection = self._open()
            self._local.connection, self._local.pid = connection, pid
        return connection

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=60)
        connection.execute("pragma journal_mode=wal")
        connection.execute("pragma synchronous=normal")
        connection.execute(f"pragma journal_size_limit={_WAL_KEPT_BYTES}")
        with connection:
            connection.execute("create table if not exists rendered (digest text primary "
                               "key, content blob not null, inputs text not null)")
            # apart from the contents: a scan of small rows reads a few pages, not them all
            connection.execute("create table if not exists fingerprints (digest text primary "
                               "key, content_digest text not null, size integer not null)")
            # the files of each input folder a render read, by the folder's digest: what
            # `doit info` compares to say which files of a chart changed
            connection.execute("create table if not exists listings (digest text primary "
                               "key, files text not null)")
        return connection

    def has(self, digest: str) -> bool:
        if self._known is not None and digest in self._known:
            return True
        row = self._db().execute("select 1 from rendered where digest = ?", (digest,))
        return row.fetchone() is not None

    def digests(self) -> set[str]:
        """Every stored digest, read once (to decide many tasks without a query each)."""
        if self._known is None:
            self._known = {d for (d,) in self._db().execute("select digest from rendered")}
        return self._known

    def count(self) -> int:
        return int(self._db().execute("select count(*) from rendered").fetchone()[0])

    def get(self, digest: str) -> bytes:
        with self._failing("read a render"):
            row = self._db().execute("select content from rendered where digest = ?",
                                     (digest,)).fetchone()
        if row is None:
            raise KeyError(digest)
        return bytes(row[0])

    def inputs(self, digest: str) -> str | None:
        """The JSON record of what produced a render (see `explain`)."""
        row = self._db().execute("select inputs from rendered where digest = ?",
                                 (digest,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, digest: str, content: bytes, inputs: str) -> None:
        fingerprint = Fingerprint(content_digest(content), len(content))
        with self._failing("store a render"), self._db() as connection:
            connection.execute("insert or replace into rendered values (?, ?, ?)",
                               (digest, content, inputs))
            connection.execute("insert or replace into fingerprints values (?, ?, ?)",
                               (digest, *fingerprint))
        self._fingerprints[digest] = fingerprint

    def put_listings(self, inputs: str, listings: dict[str, dict[str, str]]) -> None:
        """The listings (by folder digest) of the input folders of a render whose inputs
        have the digest `inputs`: once per process for each `inputs`."""
        rows = [(digest, json.dumps(files)) for digest, files in listings.items()]
        if rows:
            with self._failing("store a render"), self._db() as connection:
                connection.executemany("insert or ignore into listings values (?, ?)", rows)
        self.listed.add(inputs)

    def listing(self, digest: str) -> dict[str, str] | None:
        row = self._db().execute("select files from listings where digest = ?",
                                 (digest,)).fetchone()
        return None if row is None else json.loads(row[0])

    def fingerprint(self, digest: str, *, fresh: bool = False) -> Fingerprint | None:
        """The content digest and size of a render; None when it is not stored. All are
        read at the first call (to check many output folders); `fresh` reads this one
        again (a render with hooks, which another process may have made again)."""
        if fresh:
            self._fingerprints.pop(digest, None)
        elif not self._all_fingerprints_read:
            with self._failing("read the renders"):
                rows = self._db().execute("select * from fingerprints").fetchall()
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
        with self._failing("read a render"):
            row = self._db().execute("select content_digest, size from fingerprints where "
                                     "digest = ?", (digest,)).fetchone()
        if row is not None:
            return Fingerprint(*row)
        try:
            content = self.get(digest)
        except KeyError:
            return None
        fingerprint = Fingerprint(content_digest(content), len(content))
        with self._failing("store a render"), self._db() as connection:
            connection.execute("insert or replace into fingerprints values (?, ?, ?)",
                               (digest, *fingerprint))
        return fingerprint

    def prune(self, keep: set[str]) -> int:
        """Drop renders no cluster uses any more, and the listings of folders no kept
        render read; returns how many renders."""
        stale = [(d,) for d in self.digests() - keep]
        if stale:
            with self._failing("drop unused renders"), self._db() as connection:
                connection.executemany("delete from rendered where digest = ?", stale)
                connection.executemany("delete from fingerprints where digest = ?", stale)
                read = {digest for (inputs,) in connection.execute("select inputs from rendered")
                        for digest in json.loads(inputs).get("inputs", {}).values()}
                unread = [(d,) for (d,) in connection.execute("select digest from listings")
                          if d not in read]
                connection.executemany("delete from listings where digest = ?", unread)
                self.listed.clear()
            with self._failing("give the space of unused renders back"):
                self._shrink()
            self._known = None
            for (digest,) in stale:
                self._fingerprints.pop(digest, None)
        return len(stale)

    def _shrink(self) -> None:
        """Give the pages of dropped renders back: a store kept in a CI cache for months
        must not keep the size of its largest past (a 1 MB values file in 25 clusters
        left 182 MB for 26 rows). A prune drops about half the rows, so the file is
        rewritten then (VACUUM); SQLite's auto-vacuum would do it page by page, but its
        pointer maps cost every render's insert more writes (~0.5 s more system time in
        a 100-cluster cold build)."""
        connection = self._db()
        connection.execute("pragma auto_vacuum=none")  # a store made with it: off again
        connection.execute("vacuum")
        connection.execute("pragma wal_checkpoint(truncate)").fetchall()

    @contextmanager
    def _failing(self, doing: str) -> Iterator[None]:
        """SQLite's errors (a full disk, a lock held past the timeout) as the store's own,
        naming it: callers report StackyardError and need not know the store is SQLite."""
        try:
            yield
        except sqlite3.Error as err:
            raise StackyardError(f"cannot {doing}: {err}", file=self.path) from None
