"""Activity repository: idempotent upserts keyed by (source, external key)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from storage.models import Activity, utcnow

_CHUNK = 500


@dataclass(frozen=True)
class ActivityImport:
    person_id: int
    type_key: str
    occurred_at: datetime
    count: int
    value: float | None
    account: str | None
    note: str | None
    follow_up_on: date | None
    external_key: str


@dataclass
class ActivityReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    follow_ups: int = 0
    types: dict[str, int] = field(default_factory=dict)

    @property
    def changed_anything(self) -> bool:
        return bool(self.added or self.updated)


_COMPARED = ("person_id", "type_key", "occurred_at", "count", "value", "account", "note", "follow_up_on")


def upsert_activities(
    session: Session,
    *,
    rows: Sequence[ActivityImport],
    source: str,
    on_row: Callable[[str], None] | None = None,
) -> ActivityReport:
    """Store ``rows``; a key seen before updates that activity (a CRM correction) or changes nothing."""
    report = ActivityReport()
    keys = [row.external_key for row in rows]
    existing: dict[str, Activity] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        query = select(Activity).where(Activity.source == source, col(Activity.external_key).in_(chunk))
        existing.update((a.external_key, a) for a in session.exec(query))
    fresh: dict[str, dict[str, Any]] = {}
    now = utcnow()
    for row in rows:
        if on_row is not None:
            on_row(row.external_key)
        report.types[row.type_key] = report.types.get(row.type_key, 0) + row.count
        if row.follow_up_on is not None:
            report.follow_ups += 1
        stored = existing.get(row.external_key)
        if stored is None:
            if row.external_key in fresh:
                raise ValueError(f"external key {row.external_key!r} given twice")
            fresh[row.external_key] = {
                "source": source,
                "created_at": now,
                **{name: getattr(row, name) for name in (*_COMPARED, "external_key")},
            }
            report.added += 1
            continue
        dirty = False
        for name in _COMPARED:
            if getattr(stored, name) != getattr(row, name):
                setattr(stored, name, getattr(row, name))
                dirty = True
        if dirty:
            session.add(stored)
            report.updated += 1
        else:
            report.unchanged += 1
    if fresh:
        # One multi-row INSERT: an import of thousands of rows must not cost thousands of ORM flushes.
        session.execute(insert(Activity), list(fresh.values()))
    return report
