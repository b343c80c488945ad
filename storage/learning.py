"""Repository functions for practice: identities, deliveries, attempts, memory cards, progress."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime
from itertools import accumulate, pairwise
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Result, bindparam, func, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.driver import DriverResult, DriverTransaction
from storage.models import (
    ActivityType,
    Attempt,
    ChatIdentity,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Item,
    ItemRevision,
    MemoryCard,
    Pack,
    Person,
    PersonProgress,
    ProcessedUpdate,
    Team,
    TeamPack,
    Topic,
    utcnow,
)


# The answer path runs for every answer: its statements are built once, with bound parameters, so each
# call reuses the compiled form instead of rebuilding expressions (measured by benchmarks/).
@dataclass(frozen=True)
class PersonView:
    """What the conversation engine needs of a person, read as plain columns (no ORM object to build)."""

    id: int
    email: str
    name: str
    role: str
    team_id: int | None
    timezone: str | None
    session_time: str | None
    workdays: str | None
    active: bool
    paused_until: date | None


@dataclass(frozen=True)
class TeamView:
    id: int
    key: str
    session_time: str
    workdays: str


Executor = Session | Connection | DriverTransaction
"""Hot-path functions run prebuilt Core statements on an ORM session, a connection or the driver path."""

_PERSON = Person.__table__  # type: ignore[attr-defined]
_DELIVERY_TABLE = Delivery.__table__  # type: ignore[attr-defined]
_IDENTITY = ChatIdentity.__table__  # type: ignore[attr-defined]
_TEAM = Team.__table__  # type: ignore[attr-defined]
_PERSON_COLUMNS = [_PERSON.c[name] for name in PersonView.__dataclass_fields__]
_PERSON_BY_IDENTITY = (
    core_select(*_PERSON_COLUMNS)
    .join(_IDENTITY, _IDENTITY.c.person_id == _PERSON.c.id)
    .where(
        _IDENTITY.c.platform == bindparam("platform"),
        _IDENTITY.c.workspace == bindparam("workspace"),
        _IDENTITY.c.user_id == bindparam("user_id"),
    )
)
_PERSON_BY_EMAIL = core_select(*_PERSON_COLUMNS).where(_PERSON.c.email == bindparam("email"))
_TEAM_BY_ID = core_select(*(_TEAM.c[name] for name in TeamView.__dataclass_fields__)).where(
    _TEAM.c.id == bindparam("team_id")
)


def person_for_identity(
    session: Executor, *, platform: str, workspace: str, user_id: str
) -> PersonView | None:
    """The active or inactive person bound to this immutable platform id, if any."""
    params = {"platform": platform, "workspace": workspace, "user_id": user_id}
    row = session.execute(_PERSON_BY_IDENTITY, params).first()
    return PersonView(*row) if row is not None else None


def person_by_email(session: Session, *, email: str) -> PersonView | None:
    row = session.execute(_PERSON_BY_EMAIL, {"email": email.strip().lower()}).first()
    return PersonView(*row) if row is not None else None


def identity_of(session: Session, *, person_id: int, platform: str) -> ChatIdentity | None:
    return session.exec(
        select(ChatIdentity).where(ChatIdentity.person_id == person_id, ChatIdentity.platform == platform)
    ).first()


def identity_by_platform_id(
    session: Session, *, platform: str, workspace: str, user_id: str
) -> ChatIdentity | None:
    return session.exec(
        select(ChatIdentity).where(
            ChatIdentity.platform == platform,
            ChatIdentity.workspace == workspace,
            ChatIdentity.user_id == user_id,
        )
    ).one_or_none()


def bind_identity(session: Session, *, person_id: int, platform: str, workspace: str, user_id: str) -> None:
    """Bind a platform id to a person (idempotent)."""
    existing = identity_by_platform_id(session, platform=platform, workspace=workspace, user_id=user_id)
    if existing is None:
        session.add(
            ChatIdentity(person_id=person_id, platform=platform, workspace=workspace, user_id=user_id)
        )


@dataclass(frozen=True)
class Candidate:
    """An item a rep could practise now, with its memory state if they have seen it."""

    item_id: int
    item_key: str
    pack_key: str
    topic_id: int
    topic_key: str
    kind: str
    revision_id: int
    due_at: datetime | None
    card_state: dict[str, Any] | None
    last_rating: int | None


def _live_items() -> Any:
    """Live items of live topics with their current revision id: (Item, topic key, revision id)."""
    return (
        select(Item, Topic.key, ItemRevision.id)
        .join(Topic, col(Topic.id) == col(Item.topic_id))
        .join(
            ItemRevision,
            (col(ItemRevision.item_id) == col(Item.id))
            & (col(ItemRevision.number) == col(Item.current_revision)),
        )
        .where(col(Item.retired_at).is_(None), col(Topic.retired).is_(False))
    )


def _candidate(
    item: Item, pack_key: str, topic_key: str, revision_id: int, card: MemoryCard | None
) -> Candidate:
    assert item.id is not None
    return Candidate(
        item_id=item.id,
        item_key=item.key,
        pack_key=pack_key,
        topic_id=item.topic_id,
        topic_key=topic_key,
        kind=item.kind,
        revision_id=revision_id,
        due_at=card.due_at if card else None,
        card_state=card.state if card else None,
        last_rating=card.last_rating if card else None,
    )


def practice_candidates(session: Session, *, person_id: int, team_id: int | None) -> list[Candidate]:
    """Live items of the packs assigned to the rep's team, with the rep's card for each (if any)."""
    if team_id is None:
        return []
    packs = select(TeamPack.pack_key).where(TeamPack.team_id == team_id)
    pack_keys = dict(session.exec(select(Pack.id, Pack.key).where(col(Pack.key).in_(packs))).all())
    query = (
        _live_items()
        .add_columns(MemoryCard)
        .outerjoin(
            MemoryCard, (col(MemoryCard.item_id) == col(Item.id)) & (col(MemoryCard.person_id) == person_id)
        )
        .where(col(Item.pack_id).in_(list(pack_keys)))
        .order_by(col(Item.pack_id), col(Item.id))
    )
    return [
        _candidate(item, pack_keys[item.pack_id], topic_key, revision_id, card)
        for item, topic_key, revision_id, card in session.exec(query)
    ]


def candidate_by_key(session: Session, *, pack_key: str, item_key: str) -> Candidate | None:
    """Any live item by ``PACK/ITEM`` (for previews), without memory state."""
    query = (
        _live_items()
        .join(Pack, col(Pack.id) == col(Item.pack_id))
        .where(col(Pack.key) == pack_key, col(Item.key) == item_key)
    )
    row = session.exec(query).one_or_none()
    if row is None:
        return None
    item, topic_key, revision_id = row
    return _candidate(item, pack_key, topic_key, revision_id, None)


def deliveries_on(session: Session, *, person_id: int, local_date: date, kind: str) -> list[Delivery]:
    return list(
        session.exec(
            select(Delivery)
            .where(
                Delivery.person_id == person_id,
                Delivery.local_session_date == local_date,
                Delivery.kind == kind,
            )
            .order_by(col(Delivery.id))
        )
    )


def create_delivery(
    session: Session,
    *,
    person_id: int,
    kind: str,
    local_date: date,
    scheduled_at: datetime,
    item_id: int | None = None,
    revision_id: int | None = None,
    topic_id: int | None = None,
) -> Delivery:
    """Add a delivery; one per person, item, kind and local session date (an existing one is returned)."""
    if item_id is not None:
        existing = session.exec(
            select(Delivery).where(
                Delivery.person_id == person_id,
                Delivery.item_id == item_id,
                Delivery.kind == kind,
                Delivery.local_session_date == local_date,
            )
        ).one_or_none()
        if existing is not None:
            return existing
    delivery = Delivery(
        person_id=person_id,
        item_id=item_id,
        item_revision_id=revision_id,
        topic_id=topic_id,
        kind=kind,
        local_session_date=local_date,
        scheduled_at=scheduled_at,
    )
    session.add(delivery)
    session.flush()
    return delivery


def mark_sent(session: Session, *, delivery_id: int, message_ref: str | None, sent_at: datetime) -> None:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return
    delivery.status = DeliveryStatus.SENT
    delivery.sent_at = sent_at
    delivery.platform_message_ref = message_ref
    delivery.claimed_by = None
    delivery.lease_until = None
    session.add(delivery)


_LESSON_SENT = core_select(_DELIVERY_TABLE.c.id).where(
    _DELIVERY_TABLE.c.person_id == bindparam("person_id"),
    _DELIVERY_TABLE.c.kind == DeliveryKind.LESSON,
    _DELIVERY_TABLE.c.topic_id == bindparam("topic_id"),
    _DELIVERY_TABLE.c.local_session_date == bindparam("local_date"),
)


_NEW_LESSON = insert(_DELIVERY_TABLE).inline()


def set_message_ref(session: Session, *, delivery_id: int, message_ref: str) -> None:
    """Point a delivery at the latest message showing it (after a resend)."""
    session.execute(
        update(_DELIVERY_TABLE)
        .where(_DELIVERY_TABLE.c.id == delivery_id)
        .values(platform_message_ref=message_ref)
    )


@dataclass(frozen=True)
class DeliveryContext:
    """A question delivery with what the rep saw, for grading an answer to it."""

    delivery_id: int
    person_id: int
    status: str
    kind: str
    sent_at: datetime | None
    local_session_date: date
    message_ref: str | None
    item_id: int
    item_kind: str
    revision_id: int
    body: dict[str, Any]
    topic_id: int
    topic_key: str
    topic_name: str
    lesson: str


_ITEM = Item.__table__  # type: ignore[attr-defined]
_REVISION = ItemRevision.__table__  # type: ignore[attr-defined]
_TOPIC = Topic.__table__  # type: ignore[attr-defined]


# In the order of DeliveryContext's fields.
_CONTEXT_COLUMNS = [
    _DELIVERY_TABLE.c.id,
    _DELIVERY_TABLE.c.person_id,
    _DELIVERY_TABLE.c.status,
    _DELIVERY_TABLE.c.kind,
    _DELIVERY_TABLE.c.sent_at,
    _DELIVERY_TABLE.c.local_session_date,
    _DELIVERY_TABLE.c.platform_message_ref,
    _DELIVERY_TABLE.c.item_id,
    _ITEM.c.kind,
    _DELIVERY_TABLE.c.item_revision_id,
    _REVISION.c.body,
    _TOPIC.c.id,
    _TOPIC.c.key,
    _TOPIC.c.name,
    _TOPIC.c.lesson,
]


def _context_query() -> Any:
    return (
        core_select(*_CONTEXT_COLUMNS)
        .join(_ITEM, _ITEM.c.id == _DELIVERY_TABLE.c.item_id)
        .join(_REVISION, _REVISION.c.id == _DELIVERY_TABLE.c.item_revision_id)
        .join(_TOPIC, _TOPIC.c.id == _ITEM.c.topic_id)
        .where(_DELIVERY_TABLE.c.kind == DeliveryKind.QUESTION)
    )


def _context(row: Any) -> DeliveryContext:
    return DeliveryContext(*row)


_CONTEXT_BY_ID = _context_query().where(col(Delivery.id) == bindparam("delivery_id"))
_NEXT_PENDING = (
    _context_query()
    .where(
        col(Delivery.person_id) == bindparam("person_id"),
        col(Delivery.local_session_date) == bindparam("local_date"),
        col(Delivery.status) == DeliveryStatus.PENDING,
    )
    .order_by(col(Delivery.scheduled_at), col(Delivery.id))
    .limit(1)
)


def question_context(session: Executor, *, delivery_id: int) -> DeliveryContext | None:
    row = session.execute(_CONTEXT_BY_ID, {"delivery_id": delivery_id}).first()
    return _context(row) if row is not None else None


def open_questions(session: Session, *, person_id: int, sent_after: datetime) -> list[DeliveryContext]:
    """Questions sent to the rep, not yet answered and not expired, oldest first."""
    return _questions_sent(session, person_id, sent_after, None, (DeliveryStatus.SENT,))


def recent_questions(
    session: Session, *, person_id: int, sent_after: datetime, item_kind: str | None = None
) -> list[DeliveryContext]:
    """Questions sent to the rep since ``sent_after``, open or answered, oldest first (of one kind, if given).

    Their positions do not change when one of them is answered, so they can number a list the rep answers
    from one by one.
    """
    statuses = (DeliveryStatus.SENT, DeliveryStatus.ANSWERED)
    return _questions_sent(session, person_id, sent_after, item_kind, statuses)


def _questions_sent(
    session: Session,
    person_id: int,
    sent_after: datetime,
    item_kind: str | None,
    statuses: tuple[DeliveryStatus, ...],
) -> list[DeliveryContext]:
    query = (
        _context_query()
        .where(
            Delivery.person_id == person_id,
            col(Delivery.status).in_(statuses),
            col(Delivery.sent_at) >= sent_after,
        )
        .order_by(col(Delivery.sent_at), col(Delivery.id))
    )
    if item_kind is not None:
        query = query.where(Item.kind == item_kind)
    return [_context(row) for row in session.execute(query)]


def next_pending_question(session: Executor, *, person_id: int, local_date: date) -> DeliveryContext | None:
    """The next question of today's session that has not gone out yet."""
    row = session.execute(_NEXT_PENDING, {"person_id": person_id, "local_date": local_date}).first()
    return _context(row) if row is not None else None


@dataclass(frozen=True)
class AnswerFacts:
    """Everything an answer to a delivered question is checked against and builds on, read at once."""

    person: PersonView
    team: TeamView | None
    context: DeliveryContext | None
    before: CardAndProgress


def answer_facts(
    session: Executor, *, platform: str, workspace: str, user_id: str, delivery_id: int
) -> AnswerFacts | None:
    """Who answered, their team, the question, and their card and progress for it: one statement.

    None when the platform id is bound to nobody. The MCQ answer path runs this for every pick.
    """
    params = {"platform": platform, "workspace": workspace, "user_id": user_id, "delivery_id": delivery_id}
    row = session.execute(_ANSWER_FACTS, params).first()
    if row is None:
        return None
    person, team, context, card = (row[start:end] for start, end in _ANSWER_FACT_SLICES)
    return AnswerFacts(
        person=PersonView(*person),
        team=TeamView(*team) if team[0] is not None else None,
        context=_context(context) if context[0] is not None else None,
        before=_card_and_progress(card),
    )


def attempt_by_key(session: Session, *, idempotency_key: str) -> Attempt | None:
    return session.exec(select(Attempt).where(Attempt.idempotency_key == idempotency_key)).one_or_none()


def attempt_exists(session: Executor, *, idempotency_key: str) -> bool:
    return session.execute(_ATTEMPT_EXISTS, {"key": idempotency_key}).first() is not None


def claim_lesson(
    session: Executor, *, person_id: int, topic_id: int, local_date: date, now: datetime
) -> bool:
    """Record that the topic's lesson goes out today; False if it already did (once per topic a day)."""
    params = {"person_id": person_id, "topic_id": topic_id, "local_date": local_date}
    if session.execute(_LESSON_SENT, params).first() is not None:
        return False
    session.execute(
        _NEW_LESSON,
        {
            "person_id": person_id,
            "kind": DeliveryKind.LESSON,
            "topic_id": topic_id,
            "local_session_date": local_date,
            "scheduled_at": now,
            "status": DeliveryStatus.SENT,
            "sent_at": now,
            "created_at": now,
        },
    )
    return True


@dataclass(frozen=True)
class AttemptWrite:
    """Everything one answer changes, written together or not at all."""

    delivery_id: int
    person_id: int
    item_id: int
    revision_id: int
    idempotency_key: str
    answer: str
    choice_index: int | None
    correct: bool | None
    score: float
    rating: int
    sent_at: datetime
    answered_at: datetime
    response_ms: int
    time_spent_ms: int
    points: int
    grader: str
    grader_version: str
    feedback: dict[str, Any]
    compliance_flags: list[dict[str, Any]]
    local_date: date
    week_key: str
    streak_continues_from: date | None


@dataclass(frozen=True)
class AttemptResult:
    status: str  # "recorded", "duplicate" (same idempotency key) or "already_answered"
    points_total: int = 0
    week_points: int = 0
    streak_days: int = 0


ScheduleCard = Callable[[dict[str, Any] | None, int], tuple[dict[str, Any], datetime, bool]]
"""(stored card state or None for a new card, card id) -> (new state, next due, lapsed)."""


@dataclass(frozen=True)
class Progress:
    """A rep's running points and streak (one ``person_progress`` row)."""

    points_total: int = 0
    week_key: str = ""
    week_points: int = 0
    streak_days: int = 0
    best_streak: int = 0
    last_answer_date: date | None = None

    def after(self, write: AttemptWrite) -> Progress:
        """Progress once this answer counts: points, the week's points, and a streak of answering days.

        The streak goes on when the previous answering day is no earlier than the rep's previous workday,
        so weekends and days off do not break it; a second answer on the same day changes only points.
        """
        if self.last_answer_date is not None and write.local_date < self.last_answer_date:
            # An earlier local date than the last answer's (the rep moved west): points count, days do not.
            same_week = self.week_key == write.week_key
            return replace(
                self,
                points_total=self.points_total + write.points,
                week_points=self.week_points + write.points if same_week else self.week_points,
            )
        week_points = self.week_points if self.week_key == write.week_key else 0
        streak, best, last = self.streak_days, self.best_streak, self.last_answer_date
        if last != write.local_date:
            continues = (
                last is not None
                and write.streak_continues_from is not None
                and last >= write.streak_continues_from
            )
            streak = streak + 1 if continues else 1
            best, last = max(best, streak), write.local_date
        return Progress(
            points_total=self.points_total + write.points,
            week_key=write.week_key,
            week_points=week_points + write.points,
            streak_days=streak,
            best_streak=best,
            last_answer_date=last,
        )


_PROGRESS_FIELDS = tuple(Progress.__dataclass_fields__)


@dataclass(frozen=True)
class CardAndProgress:
    """What an answer builds on: the rep's memory card for the item (if any) and their progress (if any)."""

    card_id: int | None
    card_state: dict[str, Any] | None
    last_rating: int | None
    card_reviews: int | None
    progress: Progress | None


def _insert_if_absent(table: Any, keys: tuple[str, ...], returned: Any) -> dict[str, Any]:
    """Per dialect, an INSERT that does nothing on a conflict over ``keys`` and returns ``returned`` else."""
    return {
        name: dialect_insert(table).on_conflict_do_nothing(index_elements=list(keys)).returning(returned)
        for name, dialect_insert in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))
    }


_ATTEMPT = Attempt.__table__  # type: ignore[attr-defined]
_CARD = MemoryCard.__table__  # type: ignore[attr-defined]
_DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
_PROGRESS = PersonProgress.__table__  # type: ignore[attr-defined]
_CARD_AND_PROGRESS_COLUMNS = (
    _CARD.c.id,
    _CARD.c.state,
    _CARD.c.last_rating,
    _CARD.c.reviews,
    _PROGRESS.c.person_id,
    *(_PROGRESS.c[name] for name in _PROGRESS_FIELDS),
)


def _card_and_progress(row: Sequence[Any]) -> CardAndProgress:
    card_id, state, last_rating, reviews, progress_person, *progress = row
    return CardAndProgress(
        card_id=card_id,
        card_state=state or None,
        last_rating=last_rating,
        card_reviews=reviews,
        progress=Progress(*progress) if progress_person is not None else None,
    )


_CARD_AND_PROGRESS = (
    core_select(*_CARD_AND_PROGRESS_COLUMNS)
    .select_from(_PERSON)
    .outerjoin(_CARD, (_CARD.c.person_id == _PERSON.c.id) & (_CARD.c.item_id == bindparam("item_id")))
    .outerjoin(_PROGRESS, _PROGRESS.c.person_id == _PERSON.c.id)
    .where(_PERSON.c.id == bindparam("person_id"))
)
_TEAM_COLUMNS = [_TEAM.c[name] for name in TeamView.__dataclass_fields__]
_ANSWER_FACT_SECTIONS = (
    _PERSON_COLUMNS,
    _TEAM_COLUMNS,
    _CONTEXT_COLUMNS,
    _CARD_AND_PROGRESS_COLUMNS,
)
_ANSWER_FACT_SLICES = list(
    pairwise(accumulate((len(section) for section in _ANSWER_FACT_SECTIONS), initial=0))
)
_ANSWER_FACTS = (
    core_select(*(column for section in _ANSWER_FACT_SECTIONS for column in section))
    .select_from(_PERSON)
    .join(_IDENTITY, _IDENTITY.c.person_id == _PERSON.c.id)
    .outerjoin(_TEAM, _TEAM.c.id == _PERSON.c.team_id)
    .outerjoin(
        # The question with its item, revision and topic, all or nothing, as question_context reads it.
        _DELIVERY.join(_ITEM, _ITEM.c.id == _DELIVERY.c.item_id)
        .join(_REVISION, _REVISION.c.id == _DELIVERY.c.item_revision_id)
        .join(_TOPIC, _TOPIC.c.id == _ITEM.c.topic_id),
        (_DELIVERY.c.id == bindparam("delivery_id")) & (_DELIVERY.c.kind == DeliveryKind.QUESTION),
    )
    .outerjoin(_CARD, (_CARD.c.person_id == _PERSON.c.id) & (_CARD.c.item_id == _DELIVERY.c.item_id))
    .outerjoin(_PROGRESS, _PROGRESS.c.person_id == _PERSON.c.id)
    .where(
        _IDENTITY.c.platform == bindparam("platform"),
        _IDENTITY.c.workspace == bindparam("workspace"),
        _IDENTITY.c.user_id == bindparam("user_id"),
    )
)
_ATTEMPT_EXISTS = select(_ATTEMPT.c.id).where(_ATTEMPT.c.idempotency_key == bindparam("key"))
# Takes the row lock on Postgres: a concurrent answer to the same delivery waits, then matches no row.
_CLAIM_DELIVERY = (
    update(_DELIVERY)
    .where(_DELIVERY.c.id == bindparam("delivery_id"), _DELIVERY.c.status == DeliveryStatus.SENT)
    .values(status=DeliveryStatus.ANSWERED)
)
_NEW_CARD_IF_ABSENT = _insert_if_absent(_CARD, ("person_id", "item_id"), _CARD.c.id)
_LOCKED_CARD = (
    core_select(_CARD.c.id, _CARD.c.state, _CARD.c.last_rating)
    .where(_CARD.c.person_id == bindparam("person_id"), _CARD.c.item_id == bindparam("item_id"))
    .with_for_update()
)
_NEW_ATTEMPT = insert(_ATTEMPT).inline()
_REVIEW_CARD = (
    update(_CARD)
    .where(_CARD.c.id == bindparam("card_id"))
    .values(
        state=bindparam("new_state", type_=_CARD.c.state.type),
        due_at=bindparam("new_due", type_=_CARD.c.due_at.type),
        last_review_at=bindparam("reviewed_at", type_=_CARD.c.last_review_at.type),
        last_rating=bindparam("new_rating"),
        reviews=_CARD.c.reviews + 1,
        lapses=_CARD.c.lapses + bindparam("lapse"),
    )
)
# A card's review count is its version: the update applies only to the state the review started from.
_REVIEW_CARD_IF_UNCHANGED = _REVIEW_CARD.where(_CARD.c.reviews == bindparam("was_reviews"))
_NEW_PROGRESS_VALUES: dict[str, Any] = {name: bindparam(f"new_{name}") for name in _PROGRESS_FIELDS}
_SAVE_PROGRESS = (
    update(_PROGRESS).where(_PROGRESS.c.person_id == bindparam("of_person")).values(_NEW_PROGRESS_VALUES)
)
# Compare-and-set: writes only if the row still holds what was read, else the caller locks and redoes.
_SAVE_PROGRESS_IF_UNCHANGED = _SAVE_PROGRESS.where(
    *(
        _PROGRESS.c[name].is_not_distinct_from(bindparam(f"was_{name}", type_=_PROGRESS.c[name].type))
        for name in _PROGRESS_FIELDS
    )
)
_INSERT_PROGRESS_IF_ABSENT = _insert_if_absent(_PROGRESS, ("person_id",), _PROGRESS.c.person_id)
_LOCKED_PROGRESS = (
    core_select(*(_PROGRESS.c[name] for name in _PROGRESS_FIELDS))
    .where(_PROGRESS.c.person_id == bindparam("person_id"))
    .with_for_update()
)


def card_and_progress(session: Executor, *, person_id: int, item_id: int) -> CardAndProgress:
    """The rep's card for the item and their progress, in one statement."""
    row = session.execute(_CARD_AND_PROGRESS, {"person_id": person_id, "item_id": item_id}).one()
    return _card_and_progress(row)


def record_attempt(
    session: Executor,
    *,
    write: AttemptWrite,
    schedule: ScheduleCard,
    before: CardAndProgress | None = None,
) -> AttemptResult:
    """Store the attempt, the memory card, the delivery and progress in the caller's one transaction.

    The delivery is claimed first with a conditional update, so of two concurrent answers to one question
    only one scores and a refused answer writes nothing. ``before`` saves a read when the caller already
    fetched card and progress with its other facts (the MCQ path); progress is then written only if it is
    unchanged, else re-read under a lock. Core statements, built once: this runs for every answer.
    """
    claimed = _rowcount(session.execute(_CLAIM_DELIVERY, {"delivery_id": write.delivery_id}))
    if claimed != 1:
        duplicate = attempt_exists(session, idempotency_key=write.idempotency_key)
        return AttemptResult(status="duplicate" if duplicate else "already_answered")
    if before is None:
        before = card_and_progress(session, person_id=write.person_id, item_id=write.item_id)
    last_rating = _review_card(session, write, schedule, before)
    session.execute(
        _NEW_ATTEMPT,
        {
            "delivery_id": write.delivery_id,
            "person_id": write.person_id,
            "item_revision_id": write.revision_id,
            "idempotency_key": write.idempotency_key,
            "answer": write.answer,
            "choice_index": write.choice_index,
            "correct": write.correct,
            "score": write.score,
            "rating": write.rating,
            "scored": True,
            "sent_at": write.sent_at,
            "answered_at": write.answered_at,
            "response_ms": write.response_ms,
            "time_spent_ms": write.time_spent_ms,
            "first_response_ms": write.response_ms,
            "after_miss": last_rating == 1,
            "points": write.points,
            "grader": write.grader,
            "grader_version": write.grader_version,
            "feedback": write.feedback,
            "compliance_flags": write.compliance_flags,
            "created_at": write.answered_at,
        },
    )
    progress = _save_progress(session, write, before.progress)
    return AttemptResult(
        status="recorded",
        points_total=progress.points_total,
        week_points=progress.week_points,
        streak_days=progress.streak_days,
    )


def _review_card(
    session: Executor, write: AttemptWrite, schedule: ScheduleCard, before: CardAndProgress
) -> int | None:
    """Review the rep's card for the item (made on the first answer); returns its rating before this one.

    Another answer to the same item (a question of another day) may create or review the card after it
    was read: then the card is re-read under a lock and the review applied to what is stored.
    """

    def review(statement: Any, card_id: int, stored: dict[str, Any] | None, **condition: Any) -> int:
        state, due_at, lapsed = schedule(stored, card_id)
        params = {
            "card_id": card_id,
            "new_state": state,
            "new_due": due_at,
            "reviewed_at": write.answered_at,
            "new_rating": write.rating,
            "lapse": int(lapsed),
            **condition,
        }
        return _rowcount(session.execute(statement, params))

    if before.card_id is None:
        created = session.execute(
            _NEW_CARD_IF_ABSENT[_dialect_name(session)],
            {
                "person_id": write.person_id,
                "item_id": write.item_id,
                "state": {},
                "due_at": write.answered_at,
                "reviews": 0,
                "lapses": 0,
            },
        ).first()
        if created is not None:
            review(_REVIEW_CARD, created[0], None)
            return None
    elif review(
        _REVIEW_CARD_IF_UNCHANGED, before.card_id, before.card_state, was_reviews=before.card_reviews
    ):
        return before.last_rating
    card_id, stored, last_rating = session.execute(
        _LOCKED_CARD, {"person_id": write.person_id, "item_id": write.item_id}
    ).one()
    review(_REVIEW_CARD, card_id, stored or None)
    return int(last_rating) if last_rating is not None else None


def _save_progress(session: Executor, write: AttemptWrite, was: Progress | None) -> Progress:
    """Write progress after this answer; when another transaction changed it since it was read, redo."""
    new = (was or Progress()).after(write)
    values = {f"new_{name}": getattr(new, name) for name in _PROGRESS_FIELDS}
    if was is None:
        insert_if_absent = _INSERT_PROGRESS_IF_ABSENT[_dialect_name(session)]
        params = {"person_id": write.person_id, **asdict(new)}
        if session.execute(insert_if_absent, params).first() is not None:
            return new
    else:
        expected = {f"was_{name}": getattr(was, name) for name in _PROGRESS_FIELDS}
        params = {"of_person": write.person_id, **values, **expected}
        if _rowcount(session.execute(_SAVE_PROGRESS_IF_UNCHANGED, params)) == 1:
            return new
    row = session.execute(_LOCKED_PROGRESS, {"person_id": write.person_id}).one()
    new = Progress(*row).after(write)
    values = {f"new_{name}": getattr(new, name) for name in _PROGRESS_FIELDS}
    session.execute(_SAVE_PROGRESS, {"of_person": write.person_id, **values})
    return new


def _rowcount(result: Result[Any] | DriverResult) -> int:
    return result.rowcount if isinstance(result, DriverResult) else cast(CursorResult[Any], result).rowcount


def _dialect_name(session: Executor) -> str:
    dialect = session.get_bind().dialect if isinstance(session, Session) else session.dialect
    return dialect.name


@dataclass(frozen=True)
class AttemptFacts:
    answered_at: datetime
    kind: str
    correct: bool | None
    score: float | None
    response_ms: int
    time_spent_ms: int
    first_response_ms: int | None
    after_miss: bool
    topic_key: str


def attempts_between(
    session: Session, *, person_id: int, start: datetime, end: datetime
) -> list[AttemptFacts]:
    """The rep's scored attempts in ``[start, end)``: bounded by the window, whatever the history."""
    query = (
        select(Attempt, Item.kind, Topic.key)
        .join(ItemRevision, col(ItemRevision.id) == col(Attempt.item_revision_id))
        .join(Item, col(Item.id) == col(ItemRevision.item_id))
        .join(Topic, col(Topic.id) == col(Item.topic_id))
        .where(
            Attempt.person_id == person_id,
            col(Attempt.answered_at) >= start,
            col(Attempt.answered_at) < end,
            col(Attempt.scored).is_(True),
        )
        .order_by(col(Attempt.answered_at))
    )
    return [
        AttemptFacts(
            answered_at=attempt.answered_at,
            kind=kind,
            correct=attempt.correct,
            score=attempt.score,
            response_ms=attempt.response_ms,
            time_spent_ms=attempt.time_spent_ms,
            first_response_ms=attempt.first_response_ms,
            after_miss=attempt.after_miss,
            topic_key=topic_key,
        )
        for attempt, kind, topic_key in session.exec(query)
    ]


def team_week_points(session: Session, *, team_id: int, week_key: str) -> list[tuple[int, str, int]]:
    """(person id, name, points this week) for the team's active reps, best first."""
    query = (
        select(Person.id, Person.name, PersonProgress.week_points, PersonProgress.week_key)
        .outerjoin(PersonProgress, col(PersonProgress.person_id) == col(Person.id))
        .where(Person.team_id == team_id, col(Person.active).is_(True), Person.role == "rep")
    )
    rows = [
        (person_id, name, points if (points is not None and key == week_key) else 0)
        for person_id, name, points, key in session.exec(query)
        if person_id is not None
    ]
    return sorted(rows, key=lambda row: (-row[2], row[1]))


def team_of(session: Executor, *, team_id: int | None) -> TeamView | None:
    if team_id is None:
        return None
    row = session.execute(_TEAM_BY_ID, {"team_id": team_id}).first()
    return TeamView(*row) if row is not None else None


def activity_types_for_team(session: Session, *, team_id: int | None) -> dict[str, str]:
    """Activity types a rep may log: those of the team's packs (all loaded packs when they have no team)."""
    query = select(ActivityType.key, ActivityType.name).join(Pack, col(Pack.id) == col(ActivityType.pack_id))
    query = query.where(col(ActivityType.retired).is_(False))
    if team_id is not None:
        query = query.where(col(Pack.key).in_(select(TeamPack.pack_key).where(TeamPack.team_id == team_id)))
    return dict(session.exec(query).all())


def set_paused_until(session: Session, *, person_id: int, until: date | None) -> None:
    person = session.get(Person, person_id)
    if person is not None:
        person.paused_until = until
        person.updated_at = utcnow()
        session.add(person)


def update_person_schedule(
    session: Session, *, person_id: int, timezone: str | None = None, session_time: str | None = None
) -> Person | None:
    person = session.get(Person, person_id)
    if person is None:
        return None
    if timezone is not None:
        person.timezone = timezone
    if session_time is not None:
        person.session_time = session_time
    person.updated_at = utcnow()
    session.add(person)
    return person


def count_attempts(session: Session, *, person_id: int) -> int:
    return int(
        session.exec(select(func.count()).select_from(Attempt).where(Attempt.person_id == person_id)).one()
    )


def claim_update(session: Session, *, platform: str, update_key: str) -> bool:
    """Remember a platform event; False if it was seen before (a replay must change nothing)."""
    seen = session.exec(
        select(ProcessedUpdate.id).where(
            ProcessedUpdate.platform == platform, ProcessedUpdate.update_key == update_key
        )
    ).first()
    if seen is not None:
        return False
    session.add(ProcessedUpdate(platform=platform, update_key=update_key))
    session.flush()
    return True
