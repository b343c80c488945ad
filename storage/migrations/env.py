"""Alembic environment: works from ``alembic`` on the command line and from ``coachbot db upgrade``."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

import storage.models  # noqa: F401  (registers every table on the metadata)
from storage.db import make_engine
from storage.models import metadata

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get(
        "DATABASE_URL", "sqlite:///./coachbot.db"
    )
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _configure(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("coachbot migrations run online only; point DATABASE_URL at the database")
run_migrations_online()
