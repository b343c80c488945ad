"""A second process on the same SQLite file is refused; Postgres needs no file lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import Engine

from storage.locks import InstanceLocked, single_instance
from tests.conftest import Database


def test_a_second_holder_of_the_same_sqlite_file_is_refused(sqlite_db: Database) -> None:
    with single_instance(sqlite_db.engine):
        with pytest.raises(InstanceLocked, match="only on Postgres"), single_instance(sqlite_db.engine):
            pass
        script = textwrap.dedent(
            f"""
            from storage.db import make_engine
            from storage.locks import InstanceLocked, single_instance
            try:
                with single_instance(make_engine({sqlite_db.url!r})):
                    print("acquired")
            except InstanceLocked:
                print("refused")
            """
        )
        other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        assert other.stdout.strip() == "refused"
    with single_instance(sqlite_db.engine):
        pass  # released when the first holder left


@pytest.mark.postgres
def test_postgres_runs_without_a_file_lock(postgres_engine: Engine) -> None:
    with single_instance(postgres_engine), single_instance(postgres_engine):
        pass
