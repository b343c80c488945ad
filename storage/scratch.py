"""Throwaway databases on a Postgres server, for test runs and benchmarks (the server outlives them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import make_url, text

from storage.db import make_engine


@contextmanager
def scratch_postgres_database(server_url: str, *, prefix: str = "coachbot_scratch") -> Iterator[str]:
    """Create an empty database named ``<prefix>_<random>`` and yield its URL; drop it afterwards.

    Raises SQLAlchemy's ``OperationalError`` when no server answers at ``server_url``.
    """
    admin = make_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.engine.dispose()
