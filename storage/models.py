"""The tables. Every timestamp is an aware UTC datetime (SQLModel's ``UTCDateTime``, on SQLite too)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, MetaData, UniqueConstraint, text
from sqlmodel import Field, SQLModel

# Must be set before any table is declared, so constraint names are stable across SQLite and Postgres
# and Alembic's batch mode can drop and recreate them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


def utcnow() -> datetime:
    return datetime.now(UTC)


class Role(StrEnum):
    REP = "rep"
    MANAGER = "manager"
    ADMIN = "admin"


class Platform(StrEnum):
    SLACK = "slack"
    TELEGRAM = "telegram"
    CONSOLE = "console"


class ItemKind(StrEnum):
    MCQ = "mcq"
    ROLEPLAY = "roleplay"


class DeliveryKind(StrEnum):
    QUESTION = "question"
    LESSON = "lesson"
    NUDGE = "nudge"
    REMINDER = "reminder"
    DIGEST = "digest"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    ANSWERED = "answered"
    EXPIRED = "expired"
    FAILED = "failed"


class ActivitySource(StrEnum):
    CSV = "csv"
    API = "api"
    CHAT = "chat"


# --- people and teams ---------------------------------------------------------------------------


class Team(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=200)
    digest_day: int = Field(default=0, description="0 = Monday, in the manager's time zone")
    digest_time: str = Field(default="09:00", max_length=5)
    session_time: str = Field(default="09:30", max_length=5)
    workdays: str = Field(default="mon,tue,wed,thu,fri", max_length=40)
    per_day: int = Field(default=3)
    working_hours_start: str = Field(default="08:00", max_length=5)
    working_hours_end: str = Field(default="18:00", max_length=5)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Person(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=320)
    name: str = Field(max_length=200)
    role: str = Field(max_length=16)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    timezone: str | None = Field(default=None, max_length=64)
    session_time: str | None = Field(default=None, max_length=5)
    workdays: str | None = Field(default=None, max_length=40)
    per_day: int | None = None
    working_hours_start: str | None = Field(default=None, max_length=5)
    working_hours_end: str | None = Field(default=None, max_length=5)
    active: bool = True
    paused_until: date | None = None
    reachable: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    deactivated_at: datetime | None = None


class TeamManager(SQLModel, table=True):
    """Who receives a team's digest (a separate table keeps team and person free of a foreign-key cycle)."""

    __tablename__ = "team_manager"
    team_id: int = Field(foreign_key="team.id", primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)


class TeamPack(SQLModel, table=True):
    """Packs assigned to a team, by pack key: a roster may name a pack before it is loaded."""

    __tablename__ = "team_pack"
    team_id: int = Field(foreign_key="team.id", primary_key=True)
    pack_key: str = Field(primary_key=True, max_length=64)


class ChatIdentity(SQLModel, table=True):
    __tablename__ = "chat_identity"
    __table_args__ = (
        UniqueConstraint("platform", "workspace", "user_id"),
        UniqueConstraint("person_id", "platform", "workspace"),
    )
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    platform: str = Field(max_length=16)
    workspace: str = Field(default="", max_length=64, description="Slack team id; empty for Telegram")
    user_id: str = Field(max_length=64, description="the platform's immutable user id")
    dm_channel: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class Invite(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    platform: str = Field(max_length=16)
    code_hash: str = Field(unique=True, max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


# --- content ------------------------------------------------------------------------------------


class Pack(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=64)
    version: int
    title: str = Field(max_length=300)
    description: str | None = None
    content_hash: str = Field(max_length=64)
    loaded_at: datetime = Field(default_factory=utcnow)


class ActivityType(SQLModel, table=True):
    __tablename__ = "activity_type"
    __table_args__ = (UniqueConstraint("pack_id", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    pack_id: int = Field(foreign_key="pack.id")
    key: str = Field(max_length=64)
    name: str = Field(max_length=200)
    unit: str | None = Field(default=None, max_length=100)
    retired: bool = False


class Outcome(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("pack_id", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    pack_id: int = Field(foreign_key="pack.id")
    key: str = Field(max_length=64)
    name: str = Field(max_length=200)
    numerator: str | None = Field(default=None, max_length=64)
    denominator: str | None = Field(default=None, max_length=64)
    mean_of: str | None = Field(default=None, max_length=64)
    target: float
    higher_is_better: bool = True
    retired: bool = False


class Behavior(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("pack_id", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    pack_id: int = Field(foreign_key="pack.id")
    key: str = Field(max_length=64)
    name: str = Field(max_length=300)
    drives: list[str] = Field(default_factory=list, sa_type=JSON)
    retired: bool = False


class Topic(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("pack_id", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    pack_id: int = Field(foreign_key="pack.id")
    key: str = Field(max_length=64)
    name: str = Field(max_length=300)
    trains: list[str] = Field(default_factory=list, sa_type=JSON)
    lesson: str
    retired: bool = False


class Item(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("pack_id", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    pack_id: int = Field(foreign_key="pack.id")
    key: str = Field(max_length=64)
    topic_id: int = Field(foreign_key="topic.id", index=True)
    kind: str = Field(max_length=16)
    current_revision: int = Field(default=1, description="number of the live ItemRevision")
    retired_at: datetime | None = None


class ItemRevision(SQLModel, table=True):
    """An immutable snapshot of an item as reps saw it; attempts point here."""

    __tablename__ = "item_revision"
    __table_args__ = (UniqueConstraint("item_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id")
    number: int
    content_hash: str = Field(max_length=64)
    body: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow)


# --- learning -----------------------------------------------------------------------------------


class MemoryCard(SQLModel, table=True):
    __tablename__ = "memory_card"
    __table_args__ = (
        UniqueConstraint("person_id", "item_id"),
        Index("ix_memory_card_due", "person_id", "due_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id")
    item_id: int = Field(foreign_key="item.id")
    state: dict[str, Any] = Field(sa_type=JSON, description="fsrs Card.to_json()")
    due_at: datetime
    last_review_at: datetime | None = None
    last_rating: int | None = None
    reviews: int = 0
    lapses: int = 0


class Delivery(SQLModel, table=True):
    """The outbox: one row per message the scheduler owes a person."""

    __table_args__ = (
        UniqueConstraint("person_id", "item_id", "kind", "local_session_date"),
        Index("ix_delivery_due", "status", "scheduled_at"),
        # A rep's session of one day (next question, lesson once a day): must not scan their whole history.
        Index("ix_delivery_person_day", "person_id", "local_session_date"),
    )
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id")
    item_id: int | None = Field(default=None, foreign_key="item.id")
    item_revision_id: int | None = Field(default=None, foreign_key="item_revision.id")
    topic_id: int | None = Field(default=None, foreign_key="topic.id")
    kind: str = Field(max_length=16)
    local_session_date: date
    scheduled_at: datetime
    status: str = Field(default=DeliveryStatus.PENDING, max_length=16)
    claimed_by: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = None
    sent_at: datetime | None = None
    platform_message_ref: str | None = Field(default=None, max_length=200)
    nudged_at: datetime | None = None
    payload: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow)


class Attempt(SQLModel, table=True):
    __table_args__ = (
        Index(
            "uq_attempt_scored_delivery",
            "delivery_id",
            unique=True,
            sqlite_where=text("scored"),
            postgresql_where=text("scored"),
        ),
        Index("ix_attempt_person_answered", "person_id", "answered_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id")
    person_id: int = Field(foreign_key="person.id")
    item_revision_id: int = Field(foreign_key="item_revision.id")
    idempotency_key: str = Field(unique=True, max_length=200)
    answer: str
    choice_index: int | None = None
    correct: bool | None = None
    score: float | None = Field(default=None, description="0-100")
    rating: int | None = Field(default=None, description="FSRS rating 1-4")
    scored: bool = True
    sent_at: datetime
    answered_at: datetime
    response_ms: int
    time_spent_ms: int
    first_response_ms: int | None = None
    after_miss: bool = Field(default=False, description="the rep's previous answer to this item was a miss")
    points: int = 0
    grader: str = Field(max_length=32)
    grader_version: str = Field(max_length=64)
    feedback: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    compliance_flags: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow)


class PersonProgress(SQLModel, table=True):
    """Running points and streak, updated with each attempt so feedback never scans the history."""

    __tablename__ = "person_progress"
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    points_total: int = 0
    week_key: str = Field(default="", max_length=8)
    week_points: int = 0
    streak_days: int = 0
    best_streak: int = 0
    last_answer_date: date | None = None


class ProcessedUpdate(SQLModel, table=True):
    """Platform event ids already handled, so a replay changes nothing; purged after a retention period."""

    __tablename__ = "processed_update"
    __table_args__ = (UniqueConstraint("platform", "update_key"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    update_key: str = Field(max_length=200)
    received_at: datetime = Field(default_factory=utcnow, index=True)


# --- outcomes -----------------------------------------------------------------------------------


class Activity(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("source", "external_key"),
        Index("ix_activity_person_occurred", "person_id", "occurred_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id")
    type_key: str = Field(max_length=64)
    count: int = 1
    value: float | None = None
    occurred_at: datetime
    account: str | None = Field(default=None, max_length=200)
    note: str | None = None
    follow_up_on: date | None = None
    source: str = Field(max_length=16)
    external_key: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class Digest(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("team_id", "iso_week"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id")
    iso_week: str = Field(max_length=8, description="e.g. 2026-W49")
    delivery_id: int | None = Field(default=None, foreign_key="delivery.id")
    data: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow)


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    at: datetime = Field(default_factory=utcnow, index=True)
