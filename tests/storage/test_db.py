"""Engines, sessions, schema and constraints, on SQLite and Postgres."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import select

from storage.db import make_engine, read_session, write_session
from storage.errors import DatabaseUrlError
from storage.models import (
    Attempt,
    AuditLog,
    Delivery,
    DeliveryKind,
    Item,
    ItemRevision,
    Pack,
    Person,
    Topic,
    metadata,
)
from storage.schema import (
    SchemaOutOfDate,
    current_revision,
    head_revision,
    require_current_schema,
    upgrade_database,
)
from storage.scratch import scratch_postgres_database
from tests.conftest import PG_URL_VARIABLE, Database


def test_datetimes_round_trip_as_aware_utc(engine: Engine) -> None:
    moment = datetime(2026, 12, 4, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    with write_session(engine) as session:
        session.add(AuditLog(actor="test", action="tz", details={}, at=moment))
    with read_session(engine) as session:
        stored = session.exec(select(AuditLog)).one().at
    assert stored == moment
    assert stored.tzinfo is UTC
    assert stored.hour == 4


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    with pytest.raises(StatementError), write_session(engine) as session:
        session.add(AuditLog(actor="test", action="naive", details={}, at=datetime(2026, 12, 4, 9, 30)))  # noqa: DTZ001
    with read_session(engine) as session:
        assert session.exec(select(AuditLog)).all() == []


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), metadata)
    assert drift == []
    assert current_revision(engine) == head_revision()
    require_current_schema(engine)


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(IntegrityError), write_session(engine) as session:
        session.add(Person(email="a@example.com", name="A", role="rep", team_id=999))


def test_write_session_rolls_back_on_error_and_on_dry_run(engine: Engine) -> None:
    with pytest.raises(RuntimeError), write_session(engine) as session:
        session.add(AuditLog(actor="test", action="boom", details={}))
        session.flush()
        raise RuntimeError("boom")
    with write_session(engine, dry_run=True) as session:
        session.add(AuditLog(actor="test", action="preview", details={}))
        session.flush()
        assert len(session.exec(select(AuditLog)).all()) == 1
    with read_session(engine) as session:
        assert session.exec(select(AuditLog)).all() == []


def _item_with_revision(engine: Engine) -> tuple[int, int, int]:
    with write_session(engine) as session:
        person = Person(email="rep@example.com", name="Rep", role="rep")
        pack = Pack(key="p", version=1, title="P", content_hash="h")
        session.add(person)
        session.add(pack)
        session.flush()
        assert pack.id is not None
        topic = Topic(pack_id=pack.id, key="t", name="T", lesson="L")
        session.add(topic)
        session.flush()
        assert topic.id is not None
        item = Item(pack_id=pack.id, key="i", topic_id=topic.id, kind="mcq")
        session.add(item)
        session.flush()
        assert item.id is not None
        revision = ItemRevision(item_id=item.id, number=1, content_hash="h", body={})
        session.add(revision)
        session.flush()
        assert person.id is not None and revision.id is not None  # noqa: PT018
        return person.id, item.id, revision.id


def test_a_delivery_is_unique_per_person_item_kind_and_session_date(engine: Engine) -> None:
    person_id, item_id, revision_id = _item_with_revision(engine)
    now = datetime.now(UTC)

    def delivery() -> Delivery:
        return Delivery(
            person_id=person_id,
            item_id=item_id,
            item_revision_id=revision_id,
            kind=DeliveryKind.QUESTION,
            local_session_date=date(2026, 12, 4),
            scheduled_at=now,
        )

    with write_session(engine) as session:
        session.add(delivery())
    with pytest.raises(IntegrityError), write_session(engine) as session:
        session.add(delivery())


def test_one_scored_attempt_per_delivery_and_one_per_idempotency_key(engine: Engine) -> None:
    person_id, item_id, revision_id = _item_with_revision(engine)
    now = datetime.now(UTC)
    with write_session(engine) as session:
        delivery = Delivery(
            person_id=person_id,
            item_id=item_id,
            item_revision_id=revision_id,
            kind=DeliveryKind.QUESTION,
            local_session_date=date(2026, 12, 4),
            scheduled_at=now,
        )
        session.add(delivery)
        session.flush()
        assert delivery.id is not None
        delivery_id = delivery.id

    def attempt(key: str, *, scored: bool) -> Attempt:
        return Attempt(
            delivery_id=delivery_id,
            person_id=person_id,
            item_revision_id=revision_id,
            idempotency_key=key,
            answer="1",
            scored=scored,
            sent_at=now,
            answered_at=now,
            response_ms=1000,
            time_spent_ms=1000,
            grader="mcq",
            grader_version="1",
        )

    with write_session(engine) as session:
        session.add(attempt("first", scored=True))
        session.add(attempt("late-unscored", scored=False))
    with pytest.raises(IntegrityError), write_session(engine) as session:
        session.add(attempt("second", scored=True))
    with pytest.raises(IntegrityError), write_session(engine) as session:
        session.add(attempt("first", scored=False))
    with read_session(engine) as session:
        assert len(session.exec(select(Attempt)).all()) == 2


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(sqlite_db: Database) -> None:
    db = sqlite_db
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert int(connection.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) >= 5000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_write_sessions_take_the_write_lock_when_they_begin(sqlite_db: Database) -> None:
    """BEGIN IMMEDIATE: a second writer waits on busy_timeout instead of failing on a lock upgrade."""
    db = sqlite_db
    path = make_url(db.url).database
    assert path is not None
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with write_session(db.engine) as session:
            session.connection()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        with read_session(db.engine) as session:
            session.exec(select(AuditLog)).all()
            other.execute("BEGIN IMMEDIATE")  # readers do not hold the write lock
            other.execute("ROLLBACK")
    finally:
        other.close()


def test_only_sqlite_and_postgres_urls_are_accepted() -> None:
    with pytest.raises(DatabaseUrlError, match="unsupported"):
        make_engine("mysql+pymysql://root@localhost/db")
    with pytest.raises(DatabaseUrlError, match="psycopg 3"):
        make_engine("postgresql+asyncpg://postgres@localhost/db")
    with pytest.raises(DatabaseUrlError, match="not a database URL"):
        make_engine("not a url")


def test_an_unmigrated_database_is_refused_with_advice(tmp_path: os.PathLike[str]) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/empty.db")
    with pytest.raises(SchemaOutOfDate, match="coachbot db upgrade"):
        require_current_schema(engine)
    upgrade_database(engine)
    upgrade_database(engine)
    require_current_schema(engine)
    engine.dispose()


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    with scratch_postgres_database(os.environ[PG_URL_VARIABLE], prefix="coachbot_upgrade") as url:
        yield url


@pytest.mark.postgres
def test_concurrent_upgrades_on_postgres_are_serialised(fresh_postgres_url: str) -> None:
    engines = [make_engine(fresh_postgres_url) for _ in range(3)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(engines))

    def upgrade(engine: Engine) -> None:
        barrier.wait()
        try:
            upgrade_database(engine)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=upgrade, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for engine in engines:
        assert current_revision(engine) == head_revision()
        engine.dispose()


def test_upgrading_from_the_first_schema_keeps_existing_rows(tmp_path: os.PathLike[str]) -> None:
    """0002 rebuilds tables referenced by others (batch mode on SQLite); data and foreign keys survive."""
    from alembic import command

    from storage.schema import _alembic_config

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    t0 = {"t0": "2026-01-01 00:00:00"}
    with engine.connect() as connection:
        command.upgrade(_alembic_config(connection), "0001")
        connection.commit()
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO person (id, email, name, role, active, reachable, created_at, updated_at)"
                " VALUES (1, 'a@example.com', 'A', 'rep', 1, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO delivery (id, person_id, kind, local_session_date, scheduled_at, status,"
                " created_at) VALUES (7, 1, 'digest', '2026-01-01', :t0, 'sent', :t0)"
            ),
            t0,
        )
        connection.execute(
            text(
                "INSERT INTO team (id, key, name, digest_day, digest_time, session_time, workdays, per_day,"
                " working_hours_start, working_hours_end, created_at, updated_at)"
                " VALUES (3, 't', 'T', 0, '09:00', '09:30', 'mon', 3, '08:00', '18:00', :t0, :t0)"
            ),
            t0,
        )
        connection.execute(
            text(
                "INSERT INTO digest (team_id, iso_week, delivery_id, created_at)"
                " VALUES (3, '2026-W01', 7, '2026-01-01 00:00:00')"
            )
        )
    upgrade_database(engine)
    assert current_revision(engine) == head_revision()
    with read_session(engine) as session:
        delivery = session.exec(select(Delivery)).one()
    assert (delivery.id, delivery.topic_id, delivery.kind) == (7, None, "digest")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
