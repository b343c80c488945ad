"""Create and migrate the schema with Alembic, safely when several processes start at once."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from storage.db import sqlite_pragma_outside_transaction
from storage.errors import StorageError

# Any fixed 64-bit key; every coachbot process uses the same one for migrations.
MIGRATION_LOCK_KEY = 0x636F_6163_6862_6F74  # "coachbot"


class SchemaOutOfDate(StorageError):
    """The database is not at the schema this code expects."""


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("storage") / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_database(engine: Engine) -> None:
    """Apply every pending migration; on Postgres under an advisory lock so concurrent starts queue."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
            try:
                command.upgrade(_alembic_config(connection), "head")
                connection.commit()
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                connection.commit()
        else:
            # Batch migrations copy and drop tables, which foreign-key enforcement would refuse midway.
            sqlite_pragma_outside_transaction(connection, "foreign_keys=OFF")
            try:
                command.upgrade(_alembic_config(connection), "head")
                connection.commit()
                broken = sqlite_pragma_outside_transaction(connection, "foreign_key_check")
                if broken:
                    raise StorageError(f"migration left {len(broken)} rows with broken foreign keys")
            finally:
                sqlite_pragma_outside_transaction(connection, "foreign_keys=ON")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def require_current_schema(engine: Engine) -> None:
    """Refuse to work on a database that ``coachbot db upgrade`` has not brought up to date."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        state = "has no coachbot schema" if current is None else f"is at revision {current}, not {head}"
        raise SchemaOutOfDate(f"the database {state}; run `coachbot db upgrade` first")
