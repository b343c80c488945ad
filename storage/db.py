"""Engines and sessions for SQLite (the embedded default) and Postgres.

SQLite gets WAL, a busy timeout and foreign keys on every connection, and write transactions begin with
``BEGIN IMMEDIATE`` so that ``busy_timeout`` applies to them instead of failing on lock upgrade
(SQLAlchemy's pysqlite transaction recipe). Postgres uses psycopg 3.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

from storage.errors import DatabaseUrlError

SQLITE_BUSY_TIMEOUT_MS = 10_000
_BEGIN_OPTION = "coachbot_sqlite_begin"
NO_TRANSACTION = "NONE"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Build the engine for ``url``; refuse backends other than SQLite and Postgres (psycopg 3)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUrlError(
            "not a database URL (expected sqlite:///FILE or postgresql+psycopg://...)"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, echo=echo)
    if backend == "postgresql":
        if parsed.get_driver_name() not in ("psycopg", ""):
            raise DatabaseUrlError("Postgres URLs must use psycopg 3: postgresql+psycopg://...")
        return create_engine(
            parsed.set(drivername="postgresql+psycopg"), echo=echo, pool_pre_ping=True, pool_size=10
        )
    raise DatabaseUrlError(f"unsupported database backend {backend!r}; use sqlite or postgresql+psycopg")


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not pysqlite, emit BEGIN (the pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        if mode != NO_TRANSACTION:
            connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def sqlite_pragma_outside_transaction(connection: Connection, pragma: str) -> list[Any]:
    """Run a PRAGMA that SQLite ignores inside a transaction (``foreign_keys``), then commit."""
    connection.execution_options(**{_BEGIN_OPTION: NO_TRANSACTION})
    try:
        result = connection.exec_driver_sql(f"PRAGMA {pragma}")
        rows = list(result) if result.returns_rows else []
        connection.commit()
    finally:
        connection.execution_options(**{_BEGIN_OPTION: "DEFERRED"})
    return rows


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reading; on SQLite its transaction is deferred and never blocks writers (WAL)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@contextmanager
def write_session(engine: Engine, *, dry_run: bool = False) -> Iterator[Session]:
    """One write transaction: committed when the block ends, rolled back on any exception.

    On SQLite it begins with ``BEGIN IMMEDIATE`` so concurrent writers queue on ``busy_timeout``. With
    ``dry_run`` the block runs the real code and everything it wrote is rolled back, so a preview reports
    exactly what a real run would change.
    """
    with Session(engine, expire_on_commit=False) as session:
        session.begin()
        if is_sqlite(engine):
            # Options given with the first connection apply before its BEGIN is emitted.
            session.connection(execution_options={_BEGIN_OPTION: "IMMEDIATE"})
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        if dry_run:
            session.rollback()
        else:
            session.commit()
