"""Storage of entry bytes and Merkle nodes with SQLAlchemy: SQLite by default, PostgreSQL by URL.

The database is not trusted for integrity (the verifier recomputes everything from entry bytes);
it is trusted only to keep what it was given. What it must get right is concurrency: each append
(of one entry or a batch) is one transaction that locks the tree head (SQLite `BEGIN IMMEDIATE`,
PostgreSQL `SELECT ... FOR UPDATE`), inserts entries `size`, `size + 1`, ... under a UNIQUE index,
stores the perfect subtrees the new leaves completed, and moves the head. Concurrent appenders
queue; a crash rolls back.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from clgate.atomic import lock_file
from clgate.errors import ClgateError, InputError, IntegrityError
from clgate.ledger.merkle import EMPTY_ROOT, Frontier, leaf_hash
from clgate.ledger.rows import EntryReader, Head, Prepared

STORE_SCHEMA_VERSION = 1
_RETRIES = 50
_TYPE_LEN = 64
# WAL pages between automatic checkpoints (~40 MB). Each checkpoint costs two fsyncs; at SQLite's
# default of 1,000 pages that happened every ~150 appends and was a third of an append's time.
# Under synchronous=NORMAL it also bounds what a power loss may take; kill -9 loses no commit.
_WAL_CHECKPOINT_PAGES = 10_000

# Each B-tree an append touches is another page written at commit, and the commit is most of an
# append: on SQLite the entry index is the rowid itself ("INTEGER PRIMARY KEY"; BIGINT would add a
# separate index), and the Merkle nodes live in their primary key's B-tree (WITHOUT ROWID).
_INDEX = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()
entries_t = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("idx", _INDEX, primary_key=True, autoincrement=False),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
    sa.Column("entry_type", sa.String(_TYPE_LEN), nullable=False, index=True),
    sa.Column("signer", sa.String(64), nullable=False),
    sa.Column("timestamp", sa.String(32), nullable=False),
)
nodes_t = sa.Table(
    "ledger_nodes",
    metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
    sqlite_with_rowid=False,
)
head_t = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("frontier", sa.LargeBinary, nullable=False),
    sa.Column("last_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
)
checkpoints_t = sa.Table(
    "ledger_checkpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("envelope", sa.LargeBinary, nullable=False),
)


_HEAD = sa.select(head_t.c.size, head_t.c.frontier, head_t.c.last_hash, head_t.c.root).where(
    head_t.c.id == sa.literal_column("1")
)
_HEAD_LOCKED = _HEAD.with_for_update()
_INSERT_ENTRY = sa.insert(entries_t)
_INSERT_NODES = sa.insert(nodes_t)
# Every entry from `start` on, whatever its `entry_type` column says: the column is a copy for people
# querying the database, unsigned, and a writer could relabel a block as a note to hide it from a replay.
_ENTRIES_FROM = (
    sa.select(entries_t.c.idx, entries_t.c.envelope)
    .where(entries_t.c.idx >= sa.bindparam("start"))
    .order_by(entries_t.c.idx)
)
_UPDATE_HEAD = sa.update(head_t).where(head_t.c.id == sa.literal_column("1"))


class _Compiled:
    """A Core statement compiled once for one dialect and run on the DBAPI cursor.

    The append path runs four statements per entry; SQLAlchemy's per-execute bookkeeping cost
    several times SQLite's own work, so the hot path skips it (the SQL is still SQLAlchemy's).
    """

    def __init__(self, stmt: sa.ClauseElement, dialect: sa.Dialect, columns: Sequence[str] = ()) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(columns) or None)
        self.sql = str(compiled)
        self.positions = compiled.positiontup

    def args(self, values: dict[str, object]) -> tuple[object, ...] | dict[str, object]:
        return tuple(values[k] for k in self.positions) if self.positions else values


def database_url(target: str | Path) -> str:
    """A path means a SQLite file; `postgresql://` gets the psycopg 3 driver."""
    text = str(target)
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    for plain in ("postgresql://", "postgres://"):
        if text.startswith(plain):
            return "postgresql+psycopg://" + text[len(plain) :]
    return text


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


class Store:
    """One ledger database. Opened with `Store.open`; every method is its own transaction."""

    def __init__(self, engine: Engine, label: str) -> None:
        self.engine = engine
        self.label = label
        dialect = engine.dialect
        self._sql = {
            "head": _Compiled(_HEAD_LOCKED, dialect),
            "entries": _Compiled(_ENTRIES_FROM, dialect),
            "entry": _Compiled(_INSERT_ENTRY, dialect),
            "node": _Compiled(_INSERT_NODES, dialect),
            "update": _Compiled(_UPDATE_HEAD, dialect, ["size", "frontier", "last_hash", "root"]),
        }
        self._node_queries: dict[int, _Compiled] = {}
        # Appends reuse one DBAPI connection instead of a pool checkout and return each; the lock
        # keeps threads sharing this Store from interleaving transactions on it.
        self._writer: Any = None
        self._writer_lock = threading.Lock()

    @classmethod
    def open(cls, target: str | Path, create: bool = False) -> Store:
        url = database_url(target)
        try:
            parsed = sa.make_url(url)
            parsed.port  # noqa: B018 - a port that is not a number raises only when read
        except (sa.exc.ArgumentError, ValueError):
            raise InputError(f"not a database path or URL: {target}") from None
        label = parsed.render_as_string(hide_password=True)
        if parsed.get_backend_name() == "sqlite":
            path = Path(parsed.database or "")
            if not create and not path.is_file():
                raise InputError(f"no ledger at {path} (create one with `clgate ledger init`)")
            if not create and path.stat().st_size == 0:  # opened, SQLite would make it a database
                raise InputError(f"{path} is empty: it holds no clgate ledger")
            tables = _sqlite_tables(path) if path.is_file() and path.stat().st_size else set()
            if not create and head_t.name not in tables:  # before the engine turns on WAL, changing the file
                raise InputError(f"{label} holds no clgate ledger (create one with `clgate ledger init`)")
            if create and tables and head_t.name not in tables:
                raise InputError(
                    f"{label} holds other tables or a damaged ledger (no tree head): not a new ledger"
                )
            engine = _sqlite_engine(url)
        elif parsed.get_backend_name() == "postgresql":
            engine = sa.create_engine(url, connect_args={"connect_timeout": 5}, pool_pre_ping=True)
        else:
            raise InputError(f"unsupported database {label} (use a SQLite path or postgresql+psycopg://)")
        store = cls(engine, label)
        if create:
            store._create()
        elif not store._initialised():
            raise InputError(f"{label} holds no clgate ledger (create one with `clgate ledger init`)")
        return store

    def close(self) -> None:
        self._drop_writer()
        self.engine.dispose()

    def _drop_writer(self) -> None:
        """Close the append connection (after any failure, so the next append starts afresh)."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def _connect(self, write: bool = False) -> Connection:
        try:
            conn = self.engine.connect()
        except sa.exc.DBAPIError as exc:
            raise InputError(f"cannot reach database {self.label}: {_first_line(exc)}") from None
        return conn.execution_options(clgate_write=True) if write else conn

    def _create(self) -> None:
        with self._connect(write=True) as conn, conn.begin():
            metadata.create_all(conn)
            if conn.execute(sa.select(head_t.c.id)).first() is None:
                conn.execute(
                    sa.insert(head_t),
                    {
                        "id": 1,
                        "schema_version": STORE_SCHEMA_VERSION,
                        "size": 0,
                        "frontier": b"",
                        "last_hash": b"\x00" * 32,
                        "root": EMPTY_ROOT,
                    },
                )

    def _initialised(self) -> bool:
        with self._connect() as conn:
            if not sa.inspect(conn).has_table(head_t.name):
                return False
            version = conn.execute(sa.select(head_t.c.schema_version)).scalar()
        if version is not None and version != STORE_SCHEMA_VERSION:
            raise InputError(f"{self.label}: ledger schema version {version} is not supported")
        return version is not None

    def head(self) -> Head:
        with self._connect() as conn:
            return _read_head(conn)

    def append(self, build: Callable[[Head, EntryReader], Sequence[Prepared]]) -> tuple[Head, list[bytes]]:
        """Append the entries `build` makes from the locked head, all in one transaction.

        `build` runs inside the transaction, so what it decides (indices, previous hashes, whether
        the signer is still allowed) cannot be invalidated by a concurrent appender; it may run
        again if a race is lost. Returns the new head and each new entry's leaf hash.
        """
        dbapi = self.engine.dialect.loaded_dbapi
        for attempt in range(_RETRIES):
            try:
                return self._append_once(build)
            except (dbapi.IntegrityError, dbapi.OperationalError) as exc:
                if attempt == _RETRIES - 1 or not _retryable(exc):
                    raise InputError(f"append to {self.label} failed: {_first_line(exc)}") from None
                time.sleep(random.uniform(0.001, 0.02))
        raise AssertionError("unreachable")

    def _append_once(
        self, build: Callable[[Head, EntryReader], Sequence[Prepared]]
    ) -> tuple[Head, list[bytes]]:
        with self._writer_lock:
            if self._writer is None:
                try:
                    self._writer = self.engine.raw_connection()
                except sa.exc.DBAPIError as exc:
                    raise InputError(f"cannot reach database {self.label}: {_first_line(exc)}") from None
            try:
                return self._transaction(self._writer, build)
            except BaseException:
                self._drop_writer()
                raise

    def _transaction(
        self, raw: Any, build: Callable[[Head, EntryReader], Sequence[Prepared]]
    ) -> tuple[Head, list[bytes]]:
        sql = self._sql
        try:
            cursor = raw.cursor()
            if self.engine.dialect.name == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            cursor.execute(sql["head"].sql)
            head = _head_from_row(cursor.fetchone())

            def read_entries(start: int) -> list[tuple[int, bytes]]:
                cursor.execute(sql["entries"].sql, sql["entries"].args({"start": start}))
                return [(idx, _as_bytes(data)) for idx, data in cursor.fetchall()]

            entries, nodes, digests = [], [], []
            for index, prepared in enumerate(build(head, read_entries), start=head.size):
                digest = leaf_hash(prepared.leaf)
                digests.append(digest)
                entry = {
                    "idx": index,
                    "envelope": prepared.leaf,
                    "entry_type": prepared.entry_type[:_TYPE_LEN],
                    "signer": prepared.signer,
                    "timestamp": prepared.timestamp,
                }
                entries.append(sql["entry"].args(entry))
                nodes += [
                    sql["node"].args({"level": lv, "idx": i, "hash": h})
                    for lv, i, h in head.frontier.append(digest)
                ]
            if not digests:
                raise InputError("nothing to append")
            cursor.executemany(sql["entry"].sql, entries)
            cursor.executemany(sql["node"].sql, nodes)
            new_head = Head(head.frontier.size, head.frontier, digests[-1], head.frontier.root())
            update = {
                "size": new_head.size,
                "frontier": new_head.frontier.to_bytes(),
                "last_hash": new_head.last_hash,
                "root": new_head.root,
            }
            cursor.execute(sql["update"].sql, sql["update"].args(update))
            cursor.close()
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        return new_head, digests

    def read(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Stream (index, stored bytes) in index order, as stored: gaps and all."""
        query = sa.select(entries_t.c.idx, entries_t.c.envelope).where(entries_t.c.idx >= start)
        if stop is not None:
            query = query.where(entries_t.c.idx < stop)
        with self._connect() as conn:
            result = conn.execution_options(yield_per=5000).execute(query.order_by(entries_t.c.idx))
            for idx, data in result:
                yield idx, _as_bytes(data)

    def get(self, index: int) -> bytes | None:
        with self._connect() as conn:
            data = conn.execute(sa.select(entries_t.c.envelope).where(entries_t.c.idx == index)).scalar()
        return None if data is None else _as_bytes(data)

    @contextmanager
    def exclusive(self, name: str, lock_dir: Path) -> Iterator[None]:
        """Held by one process at a time across every machine sharing this ledger, or refused.

        PostgreSQL: a session advisory lock (every client of the database sees it); SQLite: an
        advisory lock on a file beside the database, which lives on one machine.
        """
        if self.engine.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            with self._connect() as conn:
                if not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                    raise InputError(f"{name} is held by another process on this ledger")
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            return
        lock_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(name.encode()).hexdigest()[:24]
        with lock_file(lock_dir / f"{digest}.lock", busy=f"{name} is held by another process on this ledger"):
            yield

    def nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Stored perfect-subtree hashes (a `merkle.NodeSource`): one indexed query, no ORM overhead.

        Proofs need ~2 log n nodes; building that query through SQLAlchemy each time cost more
        than running it, so it is compiled once per key count.
        """
        keys = list(keys)
        compiled = self._node_queries.get(len(keys))
        if compiled is None:
            terms = [
                sa.and_(nodes_t.c.level == sa.bindparam(f"l{n}"), nodes_t.c.idx == sa.bindparam(f"i{n}"))
                for n in range(len(keys))
            ]
            query = sa.select(nodes_t.c.level, nodes_t.c.idx, nodes_t.c.hash).where(sa.or_(*terms))
            compiled = self._node_queries[len(keys)] = _Compiled(query, self.engine.dialect)
        values: dict[str, object] = {}
        for n, (lv, i) in enumerate(keys):
            values[f"l{n}"], values[f"i{n}"] = lv, i
        try:
            raw = self.engine.raw_connection()
        except sa.exc.DBAPIError as exc:
            raise InputError(f"cannot reach database {self.label}: {_first_line(exc)}") from None
        try:
            cursor = raw.cursor()
            cursor.execute(compiled.sql, compiled.args(values))
            found = {(lv, i): _as_bytes(h) for lv, i, h in cursor.fetchall()}
            raw.rollback()
        finally:
            raw.close()
        missing = [k for k in keys if k not in found]
        if missing:
            raise IntegrityError(f"{self.label}: Merkle node {missing[0]} is missing")
        return found

    def all_nodes(self) -> Iterator[tuple[int, int, bytes]]:
        """Every stored (level, index, hash), for the verifier to compare with its own."""
        with self._connect() as conn:
            result = conn.execution_options(yield_per=20000).execute(sa.select(nodes_t))
            for level, idx, digest in result:
                yield level, idx, _as_bytes(digest)

    def add_checkpoint(self, size: int, envelope: bytes) -> None:
        """Keep a signed checkpoint (or a cosigned copy); the same bytes again are kept once."""
        same = (checkpoints_t.c.size == size) & (checkpoints_t.c.envelope == envelope)
        with self._connect(write=True) as conn, conn.begin():
            if conn.execute(sa.select(checkpoints_t.c.id).where(same)).first() is None:
                conn.execute(sa.insert(checkpoints_t), {"size": size, "envelope": envelope})

    def checkpoints(self) -> list[tuple[int, bytes]]:
        with self._connect() as conn:
            rows = conn.execute(
                sa.select(checkpoints_t.c.size, checkpoints_t.c.envelope).order_by(checkpoints_t.c.id)
            )
            return [(size, _as_bytes(env)) for size, env in rows]


def _read_head(conn: Connection, lock: bool = False) -> Head:
    return _head_from_row(conn.execute(_HEAD_LOCKED if lock else _HEAD).one_or_none())


def _as_bytes(value: Any) -> bytes:
    """A stored blob as bytes. The database is not trusted: text (or a number) where a blob belongs was
    written by hand, and is checked like any other bytes (it never parses as a signed entry)."""
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else str(value).encode()


def _head_from_row(row: Sequence[Any] | None) -> Head:
    if row is None:
        raise ClgateError("ledger head row is missing; the database was altered")
    size, frontier, last_hash, root = row
    try:
        front = Frontier.from_bytes(int(size), _as_bytes(frontier))
    except (TypeError, ValueError) as exc:
        raise IntegrityError(f"stored tree head is corrupt: {exc}") from None
    return Head(size, front, _as_bytes(last_hash), _as_bytes(root))


def _retryable(exc: Exception) -> bool:
    """Lost races (another appender took the index, lock wait, serialisation), not real faults."""
    if type(exc).__name__ in ("IntegrityError", "UniqueViolation"):
        return True
    text = _first_line(exc).lower()
    return any(s in text for s in ("locked", "busy", "could not serialize", "deadlock"))


def _sqlite_tables(path: Path) -> set[str]:
    """The tables of an SQLite file, read without writing to it (a file that is no database: InputError)."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as exc:
        raise InputError(f"{path}: not a clgate ledger ({exc})") from None


def _sqlite_engine(url: str) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA wal_autocheckpoint={_WAL_CHECKPOINT_PAGES}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("clgate_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
