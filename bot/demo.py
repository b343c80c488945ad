"""The embedded demo: bundled packs, sample roster and activities on a SQLite file of its own."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

from sqlalchemy import Engine

from content.loading import import_activities, load_packs, load_roster
from storage.db import read_session
from storage.packs import list_packs
from storage.schema import upgrade_database
from storage.status import deployment_status


def bundled_pack_paths() -> list[Path]:
    return sorted(
        Path(str(p)) for p in files("content").joinpath("packs").iterdir() if p.name.endswith(".yaml")
    )


def sample_path(name: str) -> Path:
    return Path(str(files("content").joinpath("samples", name)))


def run_demo(engine: Engine, *, actor: str) -> Iterator[str]:
    """Load everything (idempotently) and describe what is there, line by line."""
    upgrade_database(engine)
    batch = load_packs(engine, bundled_pack_paths(), actor=actor)
    for report in batch.packs:
        yield f"pack {report.pack_key}: {report.status}"
    roster = load_roster(engine, sample_path("roster.yaml"), actor=actor)
    yield f"roster: {len(roster.changes.people_added)} people added"
    activities = import_activities(engine, sample_path("activities.csv"), actor=actor, default_timezone="UTC")
    yield f"activities: {activities.added} added, {activities.unchanged} already there"
    with read_session(engine) as session:
        for pack in list_packs(session):
            yield f"  {pack.key} v{pack.version}: {pack.title} ({pack.active_items} items)"
        status = deployment_status(session)
    yield f"  {status.active_people} people; waiting for a chat connection: {len(status.never_connected)}"
    yield f"database: {engine.url.database}"
