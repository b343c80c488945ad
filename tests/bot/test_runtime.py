"""Housekeeping that `coachbot run` does: forgetting platform event ids after the retention period."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.runtime import PROCESSED_UPDATE_RETENTION, purge_old_updates
from storage.db import read_session, write_session
from storage.models import ProcessedUpdate, utcnow
from storage.runner import StorageRunner
from tests.conftest import Database


async def test_old_event_ids_are_purged_and_recent_ones_kept(db: Database) -> None:
    now = utcnow()
    with write_session(db.engine) as session:
        session.add(
            ProcessedUpdate(platform="telegram", update_key="update:1", received_at=now - timedelta(days=30))
        )
        session.add(
            ProcessedUpdate(
                platform="slack",
                update_key="ev:2",
                received_at=now - PROCESSED_UPDATE_RETENTION + timedelta(minutes=1),
            )
        )
    assert await purge_old_updates(db.engine, StorageRunner(), now=now) == 1
    with read_session(db.engine) as session:
        left = session.exec(select(ProcessedUpdate.update_key)).all()
    assert list(left) == ["ev:2"]
