"""The driver path (``storage.driver``) on SQLite and Postgres: same rows, same errors, same transactions.

The answer path runs prebuilt Core statements straight on the DBAPI connection to skip SQLAlchemy's
per-statement machinery. That is only safe if nothing else changes: a row written there must read back
through a ``Session`` exactly as if the ORM had written it (aware UTC datetimes, dicts, bools, dates), a row
read there must equal what a ``Connection`` returns, driver errors must surface as SQLAlchemy's exceptions,
and a transaction must keep all of its writes or none.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, insert, make_url, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ClauseElement
from sqlmodel import select as model_select

from storage import learning
from storage.db import make_engine, read_session, write_session
from storage.driver import PreparedStatements, driver_transaction
from storage.errors import StorageError
from storage.models import (
    Attempt,
    AuditLog,
    Delivery,
    Item,
    ItemRevision,
    MemoryCard,
    Person,
    PersonProgress,
    Platform,
    Topic,
)
from tests.conftest import Database, snapshot
from tests.storage.answering import (
    ANSWERED_AT,
    EMAIL,
    IST,
    SENT_AT,
    SESSION_DATE,
    Question,
    sent_question,
)

_ATTEMPT = Attempt.__table__  # type: ignore[attr-defined]
_AUDIT = AuditLog.__table__  # type: ignore[attr-defined]
_CARD = MemoryCard.__table__  # type: ignore[attr-defined]
_DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
_ITEM = Item.__table__  # type: ignore[attr-defined]
_PERSON = Person.__table__  # type: ignore[attr-defined]
_PROGRESS = PersonProgress.__table__  # type: ignore[attr-defined]
_REVISION = ItemRevision.__table__  # type: ignore[attr-defined]
_TOPIC = Topic.__table__  # type: ignore[attr-defined]

# Built once, like the answer path's statements: PreparedStatements keeps them by identity.
_NEW_ATTEMPT = insert(_ATTEMPT).returning(_ATTEMPT.c.id)
_NEW_AUDIT = insert(_AUDIT)
_NEW_PROGRESS = insert(_PROGRESS)
_REVIEW_CARD = update(_CARD).where(_CARD.c.id == bindparam("card_id")).values(reviews=_CARD.c.reviews + 1)
_PERSON_NAME = select(_PERSON.c.name).where(_PERSON.c.id == bindparam("person_id"))
_QUESTION_OF_KIND = select(_DELIVERY.c.id).where(
    _DELIVERY.c.id == bindparam("delivery_id"), _DELIVERY.c.kind == "question"
)
# Literals whose types convert them (a datetime, a date), and a float column (Postgres reads it by type code).
_SENT_BETWEEN = select(_DELIVERY.c.id, _DELIVERY.c.sent_at).where(
    _DELIVERY.c.sent_at > datetime(2026, 12, 1, tzinfo=UTC),
    _DELIVERY.c.local_session_date >= date(2026, 12, 1),
    _DELIVERY.c.person_id == bindparam("person_id"),
)
_SCORES = select(_ATTEMPT.c.score, _ATTEMPT.c.answered_at).where(
    _ATTEMPT.c.person_id == bindparam("person_id")
)
_QUESTION_ROWS = (
    select(_DELIVERY, _REVISION, _ITEM, _TOPIC)
    .join(_ITEM, _ITEM.c.id == _DELIVERY.c.item_id)
    .join(_REVISION, _REVISION.c.id == _DELIVERY.c.item_revision_id)
    .join(_TOPIC, _TOPIC.c.id == _ITEM.c.topic_id)
    .where(_DELIVERY.c.id == bindparam("delivery_id"))
)


@pytest.fixture
def question(db: Database) -> Question:
    return sent_question(db.engine)


@pytest.fixture
def statements(db: Database) -> PreparedStatements:
    return PreparedStatements(db.engine.dialect)


def attempt_values(question: Question, **changes: Any) -> dict[str, Any]:
    """Every column of an attempt but its id, with JSON, booleans, a float and a non-UTC timestamp."""
    values: dict[str, Any] = {
        "delivery_id": question.delivery_id,
        "person_id": question.person_id,
        "item_revision_id": question.revision_id,
        "idempotency_key": "console:rita@example.com:1",
        "answer": "Ask what she compares it with — «prix» ✓",
        "choice_index": 1,
        "correct": True,
        "score": 87.5,
        "rating": 3,
        "scored": True,
        "sent_at": question.sent_at,
        "answered_at": ANSWERED_AT,
        "response_ms": 7531,
        "time_spent_ms": 7000,
        "first_response_ms": None,
        "after_miss": False,
        "points": 12,
        "grader": "mcq",
        "grader_version": "mcq-1",
        "feedback": {"correct": True, "picked": 1, "notes": ["Grüße", None, 0.5], "nested": {"ok": False}},
        "compliance_flags": [{"phrase": "cures", "severity": 2, "blocking": False}],
        "created_at": ANSWERED_AT,
    }
    values.update(changes)
    return values


def audit_values(action: str = "driver-test") -> dict[str, Any]:
    return {"actor": "test", "action": action, "details": {"via": "driver"}, "at": SENT_AT}


def typed(value: object) -> object:
    """A value with the type of every part beside it, so ``1 == True`` or a non-UTC datetime cannot pass."""
    if isinstance(value, Mapping):
        return (type(value), {key: typed(part) for key, part in value.items()})
    if isinstance(value, list | tuple):
        return (type(value), [typed(part) for part in value])
    if is_dataclass(value) and not isinstance(value, type):
        return (type(value), {field.name: typed(getattr(value, field.name)) for field in fields(value)})
    if isinstance(value, datetime):
        return (datetime, value, value.tzinfo)
    return (type(value), value)


def leaf_types(value: object) -> set[type]:
    """The types of the columns of a row or the fields of a dataclass (nested ones included)."""
    if isinstance(value, tuple):
        return set().union(*(leaf_types(part) for part in value))
    if is_dataclass(value) and not isinstance(value, type):
        return set().union(*(leaf_types(getattr(value, field.name)) for field in fields(value)))
    return {type(value)}


# --- writing: what the driver path stores is what a Session reads ---------------------------------------


def test_an_attempt_written_on_the_driver_path_reads_back_equal_through_a_session(
    db: Database, question: Question, statements: PreparedStatements
) -> None:
    """Datetimes come back aware and in UTC (same instant), JSON as dicts and lists, booleans as bools."""
    values = attempt_values(question)
    with driver_transaction(db.engine, statements) as transaction:
        attempt_id = transaction.execute(_NEW_ATTEMPT, values).scalar_one()

    with read_session(db.engine) as session:
        stored = session.get(Attempt, attempt_id)
    assert stored is not None
    expected = {
        **values,
        "id": attempt_id,
        "answered_at": ANSWERED_AT.astimezone(UTC),
        "created_at": ANSWERED_AT.astimezone(UTC),
    }
    assert typed(stored.model_dump()) == typed(expected)
    assert stored.answered_at.tzinfo is UTC


def test_a_card_update_and_a_progress_insert_on_the_driver_path_read_back_equal_through_a_session(
    db: Database, question: Question, statements: PreparedStatements
) -> None:
    """An UPDATE given its columns as parameters (JSON state, datetimes) and a row with a date column."""
    with write_session(db.engine) as session:
        card = MemoryCard(person_id=question.person_id, item_id=question.item_id, state={}, due_at=SENT_AT)
        session.add(card)
        session.flush()
        assert card.id is not None
        card_id = card.id
    state = {"card_id": card_id, "state": 2, "stability": 3.17, "difficulty": 5.5, "step": None}
    due = datetime(2026, 12, 5, 3, 0, tzinfo=IST)
    progress = {
        "person_id": question.person_id,
        "points_total": 12,
        "week_key": "2026-W49",
        "week_points": 12,
        "streak_days": 1,
        "best_streak": 4,
        "last_answer_date": SESSION_DATE,
    }

    with driver_transaction(db.engine, statements) as transaction:
        result = transaction.execute(
            _REVIEW_CARD,
            {
                "card_id": card_id,
                "state": state,
                "due_at": due,
                "last_review_at": ANSWERED_AT,
                "last_rating": 3,
            },
        )
        assert result.rowcount == 1
        transaction.execute(_NEW_PROGRESS, progress)

    with read_session(db.engine) as session:
        stored_card = session.get(MemoryCard, card_id)
        stored_progress = session.get(PersonProgress, question.person_id)
    assert stored_card is not None
    assert stored_progress is not None
    assert typed(stored_card.model_dump()) == typed(
        {
            "id": card_id,
            "person_id": question.person_id,
            "item_id": question.item_id,
            "state": state,
            "due_at": due.astimezone(UTC),
            "last_review_at": ANSWERED_AT.astimezone(UTC),
            "last_rating": 3,
            "reviews": 1,
            "lapses": 0,
        }
    )
    assert typed(stored_progress.model_dump()) == typed(progress)


# --- reading: what the driver path returns is what a Connection returns --------------------------------


def _give_rita_a_card_and_progress(engine: Engine, question: Question) -> None:
    """Rows for every outer join of ``answer_facts`` (card, progress), and JSON in the delivery payload, so
    no part of the compared rows is left NULL."""
    with write_session(engine) as session:
        session.add(
            MemoryCard(
                person_id=question.person_id,
                item_id=question.item_id,
                state={"card_id": 1, "stability": 2.5, "step": None},
                due_at=datetime(2026, 12, 4, 8, 0, tzinfo=UTC),
                last_review_at=datetime(2026, 11, 30, 8, 0, 1, 5, tzinfo=UTC),
                last_rating=1,
                reviews=2,
                lapses=1,
            )
        )
        session.add(
            PersonProgress(
                person_id=question.person_id,
                points_total=40,
                week_key="2026-W49",
                week_points=22,
                streak_days=3,
                best_streak=5,
                last_answer_date=date(2026, 12, 1),
            )
        )
        delivery = session.get(Delivery, question.delivery_id)
        assert delivery is not None
        delivery.payload = {"resent": [1, 2], "why": "retry"}
        session.add(delivery)


def test_a_select_on_the_driver_path_equals_the_same_select_on_a_connection(
    db: Database, question: Question, statements: PreparedStatements
) -> None:
    """Every column of the delivery, its revision, item and topic: datetimes, dates, JSON, booleans."""
    _give_rita_a_card_and_progress(db.engine, question)
    params = {"delivery_id": question.delivery_id}
    with db.engine.connect() as connection:
        expected = [tuple(row) for row in connection.execute(_QUESTION_ROWS, params).all()]
    with driver_transaction(db.engine, statements) as transaction:
        rows = transaction.execute(_QUESTION_ROWS, params).all()

    assert len(expected) == 1
    assert {datetime, date, dict, list, bool, str, int, type(None)} <= leaf_types(expected[0])
    assert typed(rows) == typed(expected)


def test_answer_facts_on_the_driver_path_equal_answer_facts_on_a_connection(
    db: Database, question: Question, statements: PreparedStatements
) -> None:
    """The one statement the MCQ path reads everything with: person, team, question, card and progress."""
    _give_rita_a_card_and_progress(db.engine, question)

    def read(executor: learning.Executor) -> learning.AnswerFacts | None:
        return learning.answer_facts(
            executor,
            platform=Platform.CONSOLE,
            workspace="",
            user_id=EMAIL,
            delivery_id=question.delivery_id,
        )

    with db.engine.connect() as connection:
        expected = read(connection)
    with driver_transaction(db.engine, statements) as transaction:
        facts = read(transaction)

    assert expected is not None
    assert expected.context is not None
    assert expected.before.progress is not None
    assert {datetime, date, dict, bool} <= leaf_types(expected)
    assert typed(facts) == typed(expected)


# --- errors and rollback -------------------------------------------------------------------------------


def test_a_unique_violation_raises_integrity_error_and_keeps_nothing_of_the_transaction(
    db: Database, question: Question, statements: PreparedStatements
) -> None:
    """The driver's error comes out as SQLAlchemy's IntegrityError, as it would through a Session."""
    with driver_transaction(db.engine, statements) as transaction:
        transaction.execute(_NEW_ATTEMPT, attempt_values(question))
    before = snapshot(db.engine)

    with pytest.raises(IntegrityError) as raised, driver_transaction(db.engine, statements) as transaction:
        transaction.execute(_NEW_AUDIT, audit_values())
        # Same idempotency key (unique), unscored so the one-scored-attempt-per-delivery index stays out.
        transaction.execute(_NEW_ATTEMPT, attempt_values(question, scored=False))

    assert isinstance(raised.value.orig, db.engine.dialect.loaded_dbapi.IntegrityError)
    assert snapshot(db.engine) == before
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    # The pooled connection went back clean: the next transaction on it works.
    with driver_transaction(db.engine, statements) as transaction:
        transaction.execute(_NEW_AUDIT, audit_values("after"))
    assert len(snapshot(db.engine)["audit_log"]) == len(before["audit_log"]) + 1


@pytest.mark.parametrize(
    "error", [RuntimeError("boom"), KeyboardInterrupt()], ids=lambda error: type(error).__name__
)
def test_any_exception_in_the_block_rolls_back_everything_written_in_it(
    db: Database, question: Question, statements: PreparedStatements, error: BaseException
) -> None:
    """A whole recorded answer (delivery claimed, card, attempt, progress) disappears, even on Ctrl-C."""
    before = snapshot(db.engine)
    write = learning.AttemptWrite(
        delivery_id=question.delivery_id,
        person_id=question.person_id,
        item_id=question.item_id,
        revision_id=question.revision_id,
        idempotency_key="console:rita@example.com:1",
        answer="2",
        choice_index=1,
        correct=True,
        score=100.0,
        rating=3,
        sent_at=question.sent_at,
        answered_at=ANSWERED_AT,
        response_ms=7000,
        time_spent_ms=7000,
        points=12,
        grader="mcq",
        grader_version="mcq-1",
        feedback={"correct": True},
        compliance_flags=[],
        local_date=SESSION_DATE,
        week_key="2026-W49",
        streak_continues_from=date(2026, 12, 1),
    )

    def schedule(state: dict[str, Any] | None, card_id: int) -> tuple[dict[str, Any], datetime, bool]:
        return {"card_id": card_id}, ANSWERED_AT + timedelta(days=2), False

    with pytest.raises(type(error)), driver_transaction(db.engine, statements) as transaction:
        result = learning.record_attempt(transaction, write=write, schedule=schedule)
        assert result.status == "recorded"
        transaction.execute(_NEW_AUDIT, audit_values())
        raise error

    assert snapshot(db.engine) == before
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("statement", "params", "message"),
    [
        pytest.param(_PERSON_NAME, {}, "missing ['person_id'], unknown []", id="select-missing"),
        pytest.param(
            _PERSON_NAME, {"person_id": 1, "email": "x"}, "missing [], unknown ['email']", id="select-unknown"
        ),
        # A misspelt name is both at once; the counts alone match, so this checks names, not counts.
        pytest.param(
            _PERSON_NAME, {"persn_id": 1}, "missing ['person_id'], unknown ['persn_id']", id="select-misspelt"
        ),
        pytest.param(_REVIEW_CARD, {"state": {}}, "missing ['card_id'], unknown []", id="update-missing"),
        pytest.param(
            _REVIEW_CARD,
            {"card_id": 1, "state": {}, "sate": {}},
            "missing [], unknown ['sate']",
            id="update-unknown",
        ),
        # A literal of the statement (``kind = 'question'``) is part of it, never a parameter to override.
        pytest.param(
            _QUESTION_OF_KIND,
            {"delivery_id": 1, "kind_1": "lesson"},
            "missing [], unknown ['kind_1']",
            id="literal-override",
        ),
    ],
)
def test_missing_or_unknown_parameters_raise_storage_error_naming_them(
    db: Database,
    question: Question,
    statements: PreparedStatements,
    statement: ClauseElement,
    params: dict[str, Any],
    message: str,
) -> None:
    """Refused before the driver sees the statement, and the transaction's earlier writes are undone."""
    before = snapshot(db.engine)
    with pytest.raises(StorageError) as raised, driver_transaction(db.engine, statements) as transaction:
        transaction.execute(_NEW_AUDIT, audit_values())
        transaction.execute(statement, params)
    assert message in str(raised.value)
    assert snapshot(db.engine) == before


@pytest.mark.parametrize("left_out", ["created_at", "feedback", "compliance_flags", "scored", "points"])
def test_an_insert_leaving_out_a_python_default_raises_storage_error_naming_the_column(
    db: Database, question: Question, statements: PreparedStatements, left_out: str
) -> None:
    """Python-side defaults (a timestamp, an empty dict) are not run here: the caller must give them."""
    values = attempt_values(question)
    del values[left_out]
    before = snapshot(db.engine)
    refused = pytest.raises(StorageError, match="give values for")
    with refused as raised, driver_transaction(db.engine, statements) as transaction:
        transaction.execute(_NEW_AUDIT, audit_values())
        transaction.execute(_NEW_ATTEMPT, values)
    assert f"'{left_out}'" in str(raised.value)
    assert snapshot(db.engine) == before


# --- prepared statements -------------------------------------------------------------------------------


def test_statements_are_prepared_once_per_statement_and_insert_parameter_names(
    db: Database, statements: PreparedStatements
) -> None:
    """A SELECT is prepared once; an INSERT once per set of parameter names, each writing its own columns."""
    assert statements.get(_PERSON_NAME, {"person_id": 1}) is statements.get(_PERSON_NAME, {"person_id": 2})

    values = audit_values()
    prepared = statements.get(_NEW_AUDIT, values)
    assert statements.get(_NEW_AUDIT, dict(reversed(values.items()))) is prepared
    assert statements.get(_NEW_AUDIT, {**values, "actor": "someone else"}) is prepared
    with_id = statements.get(_NEW_AUDIT, {**values, "id": 77})
    assert with_id is not prepared
    assert statements.get(_NEW_AUDIT, {**values, "id": 78}) is with_id

    with driver_transaction(db.engine, statements) as transaction:
        transaction.execute(_NEW_AUDIT, audit_values("given id") | {"id": 77})
        transaction.execute(_NEW_AUDIT, audit_values("generated id"))
    with read_session(db.engine) as session:
        given = session.get(AuditLog, 77)
        generated = session.exec(model_select(AuditLog).where(AuditLog.action == "generated id")).all()
    assert given is not None
    assert given.action == "given id"
    assert len(generated) == 1
    assert generated[0].id != 77


def test_prepared_statements_of_another_engine_are_refused(db: Database) -> None:
    """Statements compiled for one engine's dialect must not run on another's connections."""
    other = make_engine(db.url)
    try:
        foreign = PreparedStatements(other.dialect)
        with pytest.raises(StorageError, match="another engine"), driver_transaction(db.engine, foreign):
            pytest.fail("the block must not run")
    finally:
        other.dispose()
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_sqlite_driver_transactions_take_the_write_lock_when_they_begin(
    db: Database, statements: PreparedStatements
) -> None:
    """SQLite only: BEGIN IMMEDIATE takes the write lock up front, so writers queue on busy_timeout instead
    of failing on a lock upgrade mid-transaction. Postgres has row locks and no such begin mode."""
    if db.backend != "sqlite":
        pytest.skip("BEGIN IMMEDIATE and the database-wide write lock exist only on SQLite")
    path = make_url(db.url).database
    assert path is not None
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with driver_transaction(db.engine, statements):
            # Nothing executed yet: the lock comes from the transaction's start alone.
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            assert other.execute("SELECT count(*) FROM person").fetchone() is not None  # WAL: reads go on
        other.execute("BEGIN IMMEDIATE")  # released at commit
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_literal_datetimes_and_dates_in_a_statement_are_converted_like_parameters(
    db: Database, question: Question, statements: PreparedStatements
) -> None:
    """A statement may compare with fixed values of any type, not only strings."""
    params = {"person_id": question.person_id}
    with db.engine.connect() as connection:
        expected = [tuple(row) for row in connection.execute(_SENT_BETWEEN, params).all()]
    with driver_transaction(db.engine, statements) as transaction:
        rows = transaction.execute(_SENT_BETWEEN, params).all()
    assert expected == [(question.delivery_id, SENT_AT)]
    assert typed(rows) == typed(expected)


def test_float_columns_read_back_as_through_a_connection(
    db: Database, question: Question, statements: PreparedStatements
) -> None:
    """Postgres's driver reports each column's type; float results are read with it."""
    with driver_transaction(db.engine, statements) as transaction:
        transaction.execute(_NEW_ATTEMPT, attempt_values(question, score=62.5))
    params = {"person_id": question.person_id}
    with db.engine.connect() as connection:
        expected = [tuple(row) for row in connection.execute(_SCORES, params).all()]
    with driver_transaction(db.engine, statements) as transaction:
        rows = transaction.execute(_SCORES, params).all()
    assert [row[0] for row in expected] == [62.5]
    assert typed(rows) == typed(expected)
