"""Pack repository: upsert a whole pack in the caller's transaction, with item revisions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, select

from storage.models import (
    ActivityType,
    Behavior,
    Item,
    ItemRevision,
    Outcome,
    Pack,
    Topic,
    utcnow,
)


@dataclass(frozen=True)
class ActivityTypeImport:
    key: str
    name: str
    unit: str | None = None


@dataclass(frozen=True)
class OutcomeImport:
    key: str
    name: str
    target: float
    higher_is_better: bool
    numerator: str | None = None
    denominator: str | None = None
    mean_of: str | None = None


@dataclass(frozen=True)
class BehaviorImport:
    key: str
    name: str
    drives: tuple[str, ...]


@dataclass(frozen=True)
class TopicImport:
    key: str
    name: str
    trains: tuple[str, ...]
    lesson: str


@dataclass(frozen=True)
class ItemImport:
    key: str
    topic_key: str
    kind: str
    body: dict[str, Any]
    content_hash: str


@dataclass(frozen=True)
class PackImport:
    key: str
    version: int
    title: str
    description: str | None
    content_hash: str
    activity_types: tuple[ActivityTypeImport, ...]
    outcomes: tuple[OutcomeImport, ...]
    behaviors: tuple[BehaviorImport, ...]
    topics: tuple[TopicImport, ...]
    items: tuple[ItemImport, ...]


@dataclass
class PackLoadReport:
    pack_key: str
    status: str  # "new", "changed" or "unchanged"
    items_added: list[str] = field(default_factory=list)
    items_changed: list[str] = field(default_factory=list)
    items_retired: list[str] = field(default_factory=list)
    other_changes: int = 0

    @property
    def changed_anything(self) -> bool:
        return self.status != "unchanged"


@dataclass(frozen=True)
class PackSummary:
    key: str
    version: int
    title: str
    active_items: int
    retired_items: int
    loaded_at: datetime


class _Keyed(Protocol):
    key: str
    retired: bool


K = TypeVar("K", bound=SQLModel)


def upsert_pack(
    session: Session, *, pack: PackImport, on_item: Callable[[str], None] | None = None
) -> PackLoadReport:
    """Bring the stored pack in line with ``pack``; an unchanged pack (same content hash) writes nothing.

    Items whose content changed get a new revision (attempts keep pointing at the old one); items missing
    from the new pack are retired, never deleted, because attempts refer to them.
    """
    stored = session.exec(select(Pack).where(Pack.key == pack.key)).one_or_none()
    if stored is not None and stored.content_hash == pack.content_hash:
        return PackLoadReport(pack_key=pack.key, status="unchanged")
    report = PackLoadReport(pack_key=pack.key, status="new" if stored is None else "changed")
    if stored is None:
        stored = Pack(key=pack.key, version=pack.version, title=pack.title, content_hash=pack.content_hash)
    stored.version = pack.version
    stored.title = pack.title
    stored.description = pack.description
    stored.content_hash = pack.content_hash
    stored.loaded_at = utcnow()
    session.add(stored)
    session.flush()
    assert stored.id is not None
    pack_id = stored.id

    report.other_changes += _sync_keyed(
        session,
        ActivityType,
        pack_id,
        {a.key: {"name": a.name, "unit": a.unit} for a in pack.activity_types},
    )
    report.other_changes += _sync_keyed(
        session,
        Outcome,
        pack_id,
        {
            o.key: {
                "name": o.name,
                "target": o.target,
                "higher_is_better": o.higher_is_better,
                "numerator": o.numerator,
                "denominator": o.denominator,
                "mean_of": o.mean_of,
            }
            for o in pack.outcomes
        },
    )
    report.other_changes += _sync_keyed(
        session,
        Behavior,
        pack_id,
        {b.key: {"name": b.name, "drives": list(b.drives)} for b in pack.behaviors},
    )
    report.other_changes += _sync_keyed(
        session,
        Topic,
        pack_id,
        {t.key: {"name": t.name, "trains": list(t.trains), "lesson": t.lesson} for t in pack.topics},
    )
    session.flush()
    topic_ids = {t.key: t.id for t in session.exec(select(Topic).where(Topic.pack_id == pack_id))}
    _sync_items(session, pack_id, pack.items, topic_ids, report, on_item)
    return report


def _sync_keyed(session: Session, model: type[K], pack_id: int, wanted: dict[str, dict[str, Any]]) -> int:
    """Upsert rows of a (pack_id, key) table; rows no longer wanted are marked retired. Returns changes."""
    changes = 0
    pack_col = model.pack_id  # type: ignore[attr-defined]
    rows: list[Any] = list(session.exec(select(model).where(pack_col == pack_id)))
    existing: dict[str, Any] = {row.key: row for row in rows}
    for key, values in wanted.items():
        row = existing.get(key)
        if row is None:
            session.add(model(pack_id=pack_id, key=key, **values))
            changes += 1
            continue
        dirty = row.retired
        row.retired = False
        for name, value in values.items():
            if getattr(row, name) != value:
                setattr(row, name, value)
                dirty = True
        if dirty:
            session.add(row)
            changes += 1
    for key, row in existing.items():
        if key not in wanted and not row.retired:
            row.retired = True
            session.add(row)
            changes += 1
    return changes


def _sync_items(
    session: Session,
    pack_id: int,
    items: Sequence[ItemImport],
    topic_ids: dict[str, int | None],
    report: PackLoadReport,
    on_item: Callable[[str], None] | None,
) -> None:
    existing = {item.key: item for item in session.exec(select(Item).where(Item.pack_id == pack_id))}
    current_hashes: dict[int, str] = {}
    if existing:
        rows = session.exec(
            select(ItemRevision.item_id, ItemRevision.content_hash)
            .join(Item, col(Item.id) == col(ItemRevision.item_id))
            .where(Item.pack_id == pack_id, col(ItemRevision.number) == col(Item.current_revision))
        )
        current_hashes = dict(rows.all())
    now = utcnow()
    for incoming in items:
        topic_id = topic_ids[incoming.topic_key]
        assert topic_id is not None
        stored = existing.get(incoming.key)
        if stored is None:
            stored = Item(pack_id=pack_id, key=incoming.key, topic_id=topic_id, kind=incoming.kind)
            session.add(stored)
            session.flush()
            assert stored.id is not None
            session.add(_revision(stored.id, 1, incoming))
            report.items_added.append(incoming.key)
        else:
            assert stored.id is not None
            revived = stored.retired_at is not None
            stored.retired_at = None
            stored.topic_id = topic_id
            stored.kind = incoming.kind
            if current_hashes.get(stored.id) != incoming.content_hash:
                stored.current_revision = _next_revision_number(session, stored.id)
                session.add(_revision(stored.id, stored.current_revision, incoming))
                (report.items_added if revived else report.items_changed).append(incoming.key)
            elif revived:
                report.items_added.append(incoming.key)
            session.add(stored)
        if on_item is not None:
            on_item(incoming.key)
    wanted = {i.key for i in items}
    for key, stored in existing.items():
        if key not in wanted and stored.retired_at is None:
            stored.retired_at = now
            session.add(stored)
            report.items_retired.append(key)


def _next_revision_number(session: Session, item_id: int) -> int:
    highest = session.exec(select(func.max(ItemRevision.number)).where(ItemRevision.item_id == item_id)).one()
    return int(highest or 0) + 1


def _revision(item_id: int, number: int, incoming: ItemImport) -> ItemRevision:
    return ItemRevision(
        item_id=item_id, number=number, content_hash=incoming.content_hash, body=incoming.body
    )


def list_packs(session: Session) -> list[PackSummary]:
    """Every loaded pack with its live and retired item counts, by key."""
    counts: dict[tuple[int, bool], int] = {}
    rows = session.exec(
        select(Item.pack_id, col(Item.retired_at).is_(None), func.count()).group_by(
            col(Item.pack_id), col(Item.retired_at).is_(None)
        )
    )
    for pack_id, live, count in rows:
        counts[(pack_id, bool(live))] = count
    summaries = []
    for pack in session.exec(select(Pack).order_by(Pack.key)):
        assert pack.id is not None
        summaries.append(
            PackSummary(
                key=pack.key,
                version=pack.version,
                title=pack.title,
                active_items=counts.get((pack.id, True), 0),
                retired_items=counts.get((pack.id, False), 0),
                loaded_at=pack.loaded_at,
            )
        )
    return summaries


def active_activity_types(session: Session) -> dict[str, str]:
    """Activity type keys that imports may use (from every loaded pack), with their names."""
    rows = session.exec(
        select(ActivityType.key, ActivityType.name).where(col(ActivityType.retired).is_(False))
    )
    return dict(rows.all())
