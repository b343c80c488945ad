"""Database fixtures: every database test runs on SQLite and on Postgres.

Postgres tests use ``COACHBOT_TEST_DATABASE_URL``; each run creates its own database there and drops it at
the end (the server outlives the run). Without the variable they are skipped with the reason; with
``COACHBOT_REQUIRE_POSTGRES=1`` an unreachable server fails the run instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, make_url, select, text
from sqlalchemy.exc import OperationalError

from storage.db import make_engine
from storage.models import metadata
from storage.schema import upgrade_database
from storage.scratch import scratch_postgres_database

PG_URL_VARIABLE = "COACHBOT_TEST_DATABASE_URL"
REQUIRE_PG_VARIABLE = "COACHBOT_REQUIRE_POSTGRES"
REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@dataclass
class Database:
    engine: Engine
    url: str

    @property
    def backend(self) -> str:
        return self.engine.dialect.name


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_PG_VARIABLE) == "1":
        pytest.fail(f"Postgres is required ({REQUIRE_PG_VARIABLE}=1) but {reason}", pytrace=False)
    pytest.skip(f"Postgres tests skipped: {reason}")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating every time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a database made for this test run on the configured server; dropped afterwards."""
    server_url = os.environ.get(PG_URL_VARIABLE)
    if not server_url:
        _unavailable(f"{PG_URL_VARIABLE} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
        return
    with ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_postgres_database(server_url, prefix="coachbot_test"))
        except OperationalError as exc:
            parsed = make_url(server_url)
            _unavailable(
                f"no server answers at {parsed.host}:{parsed.port or 5432} ({type(exc.orig).__name__})"
            )
            return
        yield url


@pytest.fixture(scope="session")
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    upgrade_database(engine)
    yield engine
    engine.dispose()


def _empty_postgres(engine: Engine) -> None:
    tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def sqlite_db(tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    """A migrated, empty SQLite database, for the few tests about SQLite itself."""
    path = tmp_path / "coachbot.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    yield Database(engine=engine, url=url)
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_db")
        return
    engine = request.getfixturevalue("postgres_engine")
    _empty_postgres(engine)
    yield Database(engine=engine, url=request.getfixturevalue("postgres_url"))


@pytest.fixture
def engine(db: Database) -> Engine:
    return db.engine


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order: equal snapshots mean nothing was written."""
    result: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            order = list(table.primary_key.columns)
            rows = connection.execute(select(table).order_by(*order)).all()
            result[table.name] = [tuple(row) for row in rows]
    return result
