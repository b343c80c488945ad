"""Process locks: only one ``coachbot run`` may own a SQLite file."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

from storage.errors import StorageError


class InstanceLocked(StorageError):
    """Another coachbot process already runs on this SQLite file."""


@contextmanager
def single_instance(engine: Engine) -> Iterator[None]:
    """On SQLite, hold an exclusive lock on ``<database>.lock`` while the block runs; Postgres needs none.

    SQLite allows one writer at a time and the scheduler must run once, so a second ``coachbot run`` on the
    same file refuses to start instead of racing the first (several processes need Postgres).
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    path = Path(database).resolve().with_name(Path(database).name + ".lock")
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstanceLocked(
                f"another coachbot run is using {database}; run several processes only on Postgres"
            ) from None
        os.ftruncate(handle, 0)
        os.write(handle, str(os.getpid()).encode())
        yield
    finally:
        os.close(handle)
