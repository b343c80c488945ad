"""A rep's running points, week points and streak (``storage.learning.Progress``), and how they are saved.

``Progress.after`` is pure and tested without a database. Saving it is a compare-and-set on
``person_progress`` that falls back to a locked re-read when another transaction changed the row after it
was read; the memory card is reviewed the same way (its review count is its version). The database tests
check that no answer's points or review are lost that way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, date, datetime, time
from typing import Any, Literal

import pytest
from sqlalchemy import Engine, bindparam, insert, update
from sqlmodel import select as model_select

from insights.metrics import week_key
from storage import learning
from storage.db import read_session, write_session
from storage.driver import PreparedStatements, driver_transaction
from storage.learning import AttemptResult, AttemptWrite, Progress
from storage.models import Attempt, MemoryCard, PersonProgress
from tests.conftest import Database
from tests.storage.answering import SENT_AT, Question, sent_question

# ISO week 2026-W49 runs from Monday 30 November to Sunday 6 December 2026.
TUE = date(2026, 12, 1)
WED = date(2026, 12, 2)
THU = date(2026, 12, 3)
FRI = date(2026, 12, 4)
SUN = date(2026, 12, 6)
NEXT_MON = date(2026, 12, 7)  # 2026-W50
W49 = "2026-W49"

_PROGRESS = PersonProgress.__table__  # type: ignore[attr-defined]


def answer(
    on: date, *, points: int = 10, continues_from: date | None = None, question: Question | None = None
) -> AttemptWrite:
    """A correct MCQ answer given on local date ``on``; ``continues_from`` is the rep's previous workday."""
    moment = datetime.combine(on, time(9, 0), tzinfo=UTC)
    return AttemptWrite(
        delivery_id=question.delivery_id if question else 1,
        person_id=question.person_id if question else 1,
        item_id=question.item_id if question else 1,
        revision_id=question.revision_id if question else 1,
        idempotency_key=f"console:rita@example.com:{on}",
        answer="2",
        choice_index=1,
        correct=True,
        score=100.0,
        rating=3,
        sent_at=question.sent_at if question else moment,
        answered_at=moment,
        response_ms=8000,
        time_spent_ms=8000,
        points=points,
        grader="mcq",
        grader_version="mcq-1",
        feedback={"correct": True},
        compliance_flags=[],
        local_date=on,
        week_key=week_key(on),
        streak_continues_from=continues_from,
    )


# --- Progress.after, no database ------------------------------------------------------------------------


def test_the_first_answer_ever_starts_points_week_points_and_a_streak_of_one() -> None:
    assert Progress().after(answer(WED, points=12, continues_from=TUE)) == Progress(
        points_total=12, week_key=W49, week_points=12, streak_days=1, best_streak=1, last_answer_date=WED
    )


def test_a_second_answer_the_same_day_adds_points_but_not_streak() -> None:
    """Streaks count answering days, not answers: a busy day is one day."""
    morning = Progress(
        points_total=100, week_key=W49, week_points=30, streak_days=3, best_streak=3, last_answer_date=WED
    )
    assert morning.after(answer(WED, points=5, continues_from=TUE)) == Progress(
        points_total=105, week_key=W49, week_points=35, streak_days=3, best_streak=3, last_answer_date=WED
    )


def test_the_next_workday_continues_the_streak_over_the_weekend() -> None:
    """Friday, then Monday: the weekend is no workday, so Monday's previous workday is Friday."""
    friday = Progress(
        points_total=50, week_key=W49, week_points=50, streak_days=2, best_streak=2, last_answer_date=FRI
    )
    after = friday.after(answer(NEXT_MON, points=10, continues_from=FRI))
    assert (after.streak_days, after.best_streak, after.last_answer_date) == (3, 3, NEXT_MON)


def test_an_answer_on_a_day_off_still_continues_the_streak() -> None:
    """Practising on Sunday after answering on Friday keeps the streak going (and counts a day)."""
    friday = Progress(
        points_total=50, week_key=W49, week_points=50, streak_days=4, best_streak=4, last_answer_date=FRI
    )
    assert friday.after(answer(SUN, continues_from=FRI)).streak_days == 5


@pytest.mark.parametrize(
    ("last_answer", "continues_from"),
    [
        pytest.param(WED, FRI, id="missed-friday"),
        pytest.param(THU, None, id="no-previous-workday-known"),
    ],
)
def test_a_gap_breaks_the_streak_back_to_one_and_keeps_the_best(
    last_answer: date, continues_from: date | None
) -> None:
    before = Progress(
        points_total=300,
        week_key=W49,
        week_points=40,
        streak_days=4,
        best_streak=9,
        last_answer_date=last_answer,
    )
    after = before.after(answer(NEXT_MON, continues_from=continues_from))
    assert (after.streak_days, after.best_streak, after.last_answer_date) == (1, 9, NEXT_MON)
    assert after.points_total == 310


def test_the_best_streak_is_kept_while_a_shorter_streak_grows_and_rises_with_a_longer_one() -> None:
    shorter = Progress(points_total=0, week_key=W49, streak_days=2, best_streak=6, last_answer_date=WED)
    assert (shorter.after(answer(THU, continues_from=WED)).best_streak) == 6
    level = Progress(points_total=0, week_key=W49, streak_days=6, best_streak=6, last_answer_date=WED)
    assert (level.after(answer(THU, continues_from=WED)).best_streak) == 7


def test_an_answer_dated_before_the_last_one_counts_points_but_not_a_day() -> None:
    """A rep who moves west can answer on a local date before their last answer's: no day counts twice."""
    thursday = Progress(
        points_total=80, week_key=W49, week_points=30, streak_days=3, best_streak=5, last_answer_date=THU
    )
    assert thursday.after(answer(WED, points=10, continues_from=TUE)) == Progress(
        points_total=90, week_key=W49, week_points=40, streak_days=3, best_streak=5, last_answer_date=THU
    )
    monday = Progress(
        points_total=80,
        week_key="2026-W50",
        week_points=15,
        streak_days=1,
        best_streak=5,
        last_answer_date=NEXT_MON,
    )
    assert monday.after(answer(SUN, points=10, continues_from=FRI)) == Progress(
        points_total=90,
        week_key="2026-W50",
        week_points=15,
        streak_days=1,
        best_streak=5,
        last_answer_date=NEXT_MON,
    )


def test_a_new_iso_week_resets_week_points_but_not_the_total() -> None:
    sunday = Progress(
        points_total=200, week_key=W49, week_points=70, streak_days=1, best_streak=1, last_answer_date=SUN
    )
    after = sunday.after(answer(NEXT_MON, points=10, continues_from=FRI))
    assert (after.points_total, after.week_key, after.week_points) == (210, "2026-W50", 10)


def test_week_points_follow_the_iso_week_across_new_year() -> None:
    """31 December 2026 and 1 January 2027 are both in ISO week 2026-W53: week points go on."""
    new_years_eve = date(2026, 12, 31)
    new_year = date(2027, 1, 1)
    eve = Progress().after(answer(new_years_eve, points=10))
    assert eve.after(answer(new_year, points=5, continues_from=new_years_eve)).week_points == 15
    assert eve.after(answer(date(2027, 1, 4), points=5)).week_key == "2027-W01"


# --- saving progress over a stale read (Postgres) --------------------------------------------------------

# Another answer of Rita's (worth 5 points, on Wednesday) counted by another connection meanwhile.
_ANOTHER_ANSWER_COUNTED = (
    update(_PROGRESS)
    .where(_PROGRESS.c.person_id == bindparam("of_person"))
    .values(
        points_total=_PROGRESS.c.points_total + 5,
        week_points=_PROGRESS.c.week_points + 5,
        streak_days=2,
        best_streak=2,
        last_answer_date=WED,
    )
)
_FIRST_ANSWER_COUNTED = insert(_PROGRESS)


def _commit_elsewhere(engine: Engine, statement: Any, params: dict[str, Any]) -> None:
    """Run one statement on another pooled connection and commit; fail rather than hang on a lock."""
    with engine.begin() as other:
        other.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
        other.execute(statement, params)


@contextmanager
def _answering(engine: Engine, via: Literal["driver", "session"]) -> Iterator[learning.Executor]:
    """The answer's one write transaction, on the driver path (every answer) or an ORM session."""
    if via == "driver":
        with driver_transaction(engine, PreparedStatements(engine.dialect)) as transaction:
            yield transaction
    else:
        with write_session(engine) as session:
            yield session


def _schedule(state: dict[str, Any] | None, card_id: int) -> tuple[dict[str, Any], datetime, bool]:
    return {"card_id": card_id, "reviewed": True}, datetime(2026, 12, 5, 8, 0, tzinfo=UTC), False


def _stored_progress(engine: Engine, person_id: int) -> Progress:
    with read_session(engine) as session:
        row = session.get(PersonProgress, person_id)
    assert row is not None
    return Progress(**{field.name: getattr(row, field.name) for field in fields(Progress)})


def _postgres_only(db: Database) -> None:
    if db.backend != "postgresql":
        pytest.skip(
            "on SQLite the answer's BEGIN IMMEDIATE holds the write lock from the read to the write,"
            " so no other transaction can change progress in between"
        )


@pytest.mark.parametrize("via", ["driver", "session"])
def test_progress_changed_after_it_was_read_is_not_lost(
    db: Database, via: Literal["driver", "session"]
) -> None:
    """Postgres only (on SQLite the write lock, taken at BEGIN IMMEDIATE, keeps progress still between the
    read and the write). The MCQ path reads progress with its other facts and passes it as ``before``; if
    another answer was counted meanwhile, the compare-and-set matches no row and progress is redone from a
    locked re-read, so both answers' points count."""
    _postgres_only(db)
    question = sent_question(db.engine)
    with write_session(db.engine) as session:
        session.add(
            PersonProgress(
                person_id=question.person_id,
                points_total=10,
                week_key=W49,
                week_points=10,
                streak_days=1,
                best_streak=1,
                last_answer_date=TUE,
            )
        )

    with _answering(db.engine, via) as session:
        before = learning.card_and_progress(session, person_id=question.person_id, item_id=question.item_id)
        assert before.progress == Progress(10, W49, 10, 1, 1, TUE)
        _commit_elsewhere(db.engine, _ANOTHER_ANSWER_COUNTED, {"of_person": question.person_id})
        result = learning.record_attempt(
            session,
            write=answer(WED, points=10, continues_from=TUE, question=question),
            schedule=_schedule,
            before=before,
        )

    # A lost update would leave 20 points: the other answer's 5 would be overwritten.
    assert result == AttemptResult(status="recorded", points_total=25, week_points=25, streak_days=2)
    assert _stored_progress(db.engine, question.person_id) == Progress(25, W49, 25, 2, 2, WED)


@pytest.mark.parametrize("via", ["driver", "session"])
def test_progress_created_after_it_was_read_as_absent_is_not_lost(
    db: Database, via: Literal["driver", "session"]
) -> None:
    """Postgres only (on SQLite the write lock, taken at BEGIN IMMEDIATE, keeps progress still between the
    read and the write). A rep's first two answers at once: both read "no progress yet"; the second to
    write finds the row the first inserted (the insert does nothing) and adds to it from a locked re-read."""
    _postgres_only(db)
    question = sent_question(db.engine)
    first_answer = {
        "person_id": question.person_id,
        "points_total": 5,
        "week_key": W49,
        "week_points": 5,
        "streak_days": 1,
        "best_streak": 1,
        "last_answer_date": WED,
    }

    with _answering(db.engine, via) as session:
        before = learning.card_and_progress(session, person_id=question.person_id, item_id=question.item_id)
        assert before.progress is None
        _commit_elsewhere(db.engine, _FIRST_ANSWER_COUNTED, first_answer)
        result = learning.record_attempt(
            session,
            write=answer(WED, points=10, continues_from=TUE, question=question),
            schedule=_schedule,
            before=before,
        )

    assert result == AttemptResult(status="recorded", points_total=15, week_points=15, streak_days=1)
    assert _stored_progress(db.engine, question.person_id) == Progress(15, W49, 15, 1, 1, WED)


# --- reviewing the memory card over a stale read (Postgres) ----------------------------------------------

_CARD = MemoryCard.__table__  # type: ignore[attr-defined]
_CARD_MADE_ELSEWHERE = insert(_CARD)
_CARD_REVIEWED_ELSEWHERE = (
    update(_CARD)
    .where(_CARD.c.person_id == bindparam("of_person"), _CARD.c.item_id == bindparam("of_item"))
    .values(state={"from": "the other answer"}, reviews=_CARD.c.reviews + 1, last_rating=1)
)


class _Scheduler:
    """Records which stored states the answer was scheduled from."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any] | None] = []

    def __call__(self, state: dict[str, Any] | None, card_id: int) -> tuple[dict[str, Any], datetime, bool]:
        self.seen.append(state)
        return {"card_id": card_id, "after": state}, datetime(2026, 12, 5, 8, 0, tzinfo=UTC), False


def _stored_card(engine: Engine, question: Question) -> MemoryCard:
    with read_session(engine) as session:
        cards = session.exec(
            model_select(MemoryCard).where(
                MemoryCard.person_id == question.person_id, MemoryCard.item_id == question.item_id
            )
        ).all()
    assert len(cards) == 1
    return cards[0]


def _after_miss(engine: Engine, question: Question) -> bool:
    with read_session(engine) as session:
        attempt = session.exec(model_select(Attempt).where(Attempt.delivery_id == question.delivery_id)).one()
    return attempt.after_miss


def _question_with_a_card_reviewed_three_times(engine: Engine) -> Question:
    """Rita's question, and her card for its item: reviewed three times, last rated Good."""
    question = sent_question(engine)
    with write_session(engine) as session:
        session.add(
            MemoryCard(
                person_id=question.person_id,
                item_id=question.item_id,
                state={"from": "yesterday"},
                due_at=SENT_AT,
                last_rating=3,
                reviews=3,
                lapses=0,
            )
        )
    return question


@pytest.mark.parametrize("via", ["driver", "session"])
def test_a_card_made_after_it_was_read_as_absent_is_reviewed_not_duplicated(
    db: Database, via: Literal["driver", "session"]
) -> None:
    """Postgres only (SQLite's write lock keeps the card still). Two first answers to one item (questions of
    two days) at once: both read "no card"; the second to write finds the card the first made and reviews
    it from what is stored, instead of failing on the unique (person, item) and losing the answer."""
    _postgres_only(db)
    question = sent_question(db.engine)
    made = {
        "person_id": question.person_id,
        "item_id": question.item_id,
        "state": {"from": "the other answer"},
        "due_at": SENT_AT,
        "last_rating": 1,
        "reviews": 1,
        "lapses": 0,
    }
    scheduler = _Scheduler()

    with _answering(db.engine, via) as session:
        before = learning.card_and_progress(session, person_id=question.person_id, item_id=question.item_id)
        assert before.card_id is None
        _commit_elsewhere(db.engine, _CARD_MADE_ELSEWHERE, made)
        result = learning.record_attempt(
            session, write=answer(WED, question=question), schedule=scheduler, before=before
        )

    assert result.status == "recorded"
    card = _stored_card(db.engine, question)
    assert scheduler.seen == [{"from": "the other answer"}]
    assert (card.reviews, card.state["after"]) == (2, {"from": "the other answer"})
    assert _after_miss(db.engine, question) is True


@pytest.mark.parametrize("via", ["driver", "session"])
def test_a_card_reviewed_after_it_was_read_is_reviewed_again_from_what_is_stored(
    db: Database, via: Literal["driver", "session"]
) -> None:
    """Postgres only (SQLite's write lock keeps the card still). If another answer reviewed the card after it
    was read, the update matches no row (its review count moved on) and the review is redone from the
    stored state under a lock: both reviews count, neither overwrites the other."""
    _postgres_only(db)
    question = _question_with_a_card_reviewed_three_times(db.engine)
    scheduler = _Scheduler()

    with _answering(db.engine, via) as session:
        before = learning.card_and_progress(session, person_id=question.person_id, item_id=question.item_id)
        assert (before.card_reviews, before.last_rating) == (3, 3)
        params = {"of_person": question.person_id, "of_item": question.item_id}
        _commit_elsewhere(db.engine, _CARD_REVIEWED_ELSEWHERE, params)
        result = learning.record_attempt(
            session, write=answer(WED, question=question), schedule=scheduler, before=before
        )

    assert result.status == "recorded"
    card = _stored_card(db.engine, question)
    assert scheduler.seen == [{"from": "yesterday"}, {"from": "the other answer"}]
    assert (card.reviews, card.state["after"]) == (5, {"from": "the other answer"})
    assert _after_miss(db.engine, question) is True


def test_an_unchanged_card_is_reviewed_from_the_state_read_with_the_other_facts(db: Database) -> None:
    """The usual case, on both databases: one update from the state read before, no second scheduling."""
    question = _question_with_a_card_reviewed_three_times(db.engine)
    scheduler = _Scheduler()
    with _answering(db.engine, "driver") as session:
        before = learning.card_and_progress(session, person_id=question.person_id, item_id=question.item_id)
        result = learning.record_attempt(
            session, write=answer(WED, question=question), schedule=scheduler, before=before
        )
    assert result.status == "recorded"
    assert scheduler.seen == [{"from": "yesterday"}]
    card = _stored_card(db.engine, question)
    assert (card.reviews, card.last_rating) == (4, 3)
    assert _after_miss(db.engine, question) is False
