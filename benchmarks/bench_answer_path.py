"""The answer path: an inbound MCQ pick until feedback is ready and attempt, card and delivery are stored.

Printed per database (SQLite, and Postgres when ``COACHBOT_BENCH_DATABASE_URL`` or
``COACHBOT_TEST_DATABASE_URL`` names a server): the median per answer over ``ANSWERS`` answers after a
warm-up, as a ratio to a raw sqlite3 transaction on the same kind of file with the same PRAGMAs
(``BEGIN IMMEDIATE``; insert the attempt; update card and delivery; ``COMMIT``), with a breakdown; run on
an empty database and on one holding a year of history for 1,000 reps, whose medians should stay within
20% of each other. Last, 200 answers arrive at once and the longest event-loop stall is printed.

Each figure is the median of all the answers of ``ROUNDS`` rounds, printed with the range of the round
medians: on a small shared VM one round's median moves by a third from the next one's (where the OS puts
the threads, neighbours).
The rounds alternate (raw transaction on a fresh copy of the file, empty database, database with history;
each answer path round with a new storage thread and another rep), so a machine that speeds up or slows
down during the run moves the three alike: measured one after the other, the empty database, measured
first, came out 20% slower than the history one, on SQLite and on Postgres alike.

Storage runs in a worker thread (the event loop must never wait on the database), and on a machine with
several cores the OS usually runs that thread on another core than the loop: each answer then crosses
cores twice, and its storage work runs with cold caches. On Linux the SQLite run is repeated with the
process pinned to one CPU, so the printout shows how much of the ratio is that crossing.

``BENCH_SCALE`` (default 1.0) shrinks the history for a quick run. Not part of ``make test``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from fsrs import Rating
from sqlalchemy import Engine, insert, select, text
from sqlmodel import col

from bot import replies
from bot.engine import Coach, CoachConfig
from bot.events import ChoiceEvent
from bot.grading import RubricGrader
from content.loading import load_packs
from scheduler import memory
from scheduler.messages import Choice, Message
from scheduler.sender import Address
from storage.db import make_engine, write_session
from storage.models import (
    Attempt,
    ChatIdentity,
    Delivery,
    Item,
    ItemRevision,
    MemoryCard,
    Person,
    PersonProgress,
    Team,
    TeamPack,
)
from storage.runner import StorageRunner
from storage.schema import upgrade_database
from storage.scratch import scratch_postgres_database

REPO = Path(__file__).resolve().parent.parent
ANSWERS = 240
WARMUP = 40
ROUNDS = 5
CONCURRENT = 200
CONCURRENT_REPS = range(1, 11)
MEASURED_REPS = range(20, 20 + ROUNDS)
PINNED_REPS = range(40, 40 + ROUNDS)
REPS = 1000
HISTORY_DAYS = 250
ANSWERS_PER_DAY = 3
NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
P = ParamSpec("P")
R = TypeVar("R")


class NullAdapter:
    platform = "console"

    async def send_message(
        self, to: Address, message: Message, choices: Sequence[Choice] = (), *, reply_for: int | None = None
    ) -> str | None:
        return "ref"

    async def send_image(self, to: Address, image: bytes, caption: Message) -> str | None:
        return "ref"

    async def update_message(self, to: Address, ref: str, message: Message) -> None:
        return None


class TimingRunner(StorageRunner):
    """Adds up the time spent in storage calls (worker thread included)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0

    async def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        try:
            return await super().run(fn, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


def _scale() -> float:
    return max(0.001, float(os.environ.get("BENCH_SCALE", "1")))


def _chunks(rows: list[dict[str, Any]], size: int = 5000) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def prepare(engine: Engine, *, history: bool) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Packs, a team of reps with console ids and, optionally, a year of answers; returns rep ids and MCQs."""
    upgrade_database(engine)
    load_packs(engine, [REPO / "content" / "packs" / "pharma-cardio.yaml"], actor="bench")
    with write_session(engine) as session:
        team = Team(key="bench", name="Bench")
        session.add(team)
        session.flush()
        assert team.id is not None
        session.add(TeamPack(team_id=team.id, pack_key="pharma-cardio"))
        people = [
            {
                "email": f"rep{i}@example.com",
                "name": f"Rep {i}",
                "role": "rep",
                "team_id": team.id,
                "timezone": "Europe/Berlin",
                "active": True,
                "reachable": True,
                "created_at": NOW,
                "updated_at": NOW,
            }
            for i in range(REPS)
        ]
        session.execute(insert(Person), people)
        rep_ids: list[int] = [
            pid for pid in session.scalars(select(col(Person.id)).order_by(col(Person.id))) if pid
        ]
        session.execute(
            insert(ChatIdentity),
            [
                {
                    "person_id": pid,
                    "platform": "console",
                    "workspace": "",
                    "user_id": f"rep{i}",
                    "created_at": NOW,
                }
                for i, pid in enumerate(rep_ids)
            ],
        )
        mcqs: list[tuple[int, int, int]] = [
            (int(item_id), int(revision_id), int(body["answer"]))
            for item_id, revision_id, body in session.execute(
                select(col(Item.id), col(ItemRevision.id), col(ItemRevision.body))
                .join(ItemRevision, col(ItemRevision.item_id) == col(Item.id))
                .where(col(Item.kind) == "mcq")
                .order_by(col(Item.id))
            )
        ]
    if history:
        _fill_history(engine, rep_ids, mcqs)
    return rep_ids, mcqs


def _fill_history(engine: Engine, rep_ids: list[int], mcqs: list[tuple[int, int, int]]) -> None:
    days = max(1, int(HISTORY_DAYS * _scale()))
    reps = rep_ids[: max(1, int(len(rep_ids) * _scale()))] if _scale() < 1 else rep_ids
    state = memory.new_card_state(1, NOW)
    start_day = date(2025, 12, 1)
    started = time.perf_counter()
    delivery_id = 1_000_000
    with engine.begin() as connection:
        for pid in reps:
            deliveries, attempts = [], []
            for day in range(days):
                local = start_day + timedelta(days=day)
                sent = datetime(local.year, local.month, local.day, 8, 0, tzinfo=UTC)
                for n in range(ANSWERS_PER_DAY):
                    item_id, revision_id, answer = mcqs[(day * ANSWERS_PER_DAY + n + pid) % len(mcqs)]
                    delivery_id += 1
                    deliveries.append(
                        {
                            "id": delivery_id,
                            "person_id": pid,
                            "item_id": item_id,
                            "item_revision_id": revision_id,
                            "kind": "question",
                            "local_session_date": local,
                            "scheduled_at": sent,
                            "status": "answered",
                            "sent_at": sent,
                            "created_at": sent,
                        }
                    )
                    correct = (day + n + pid) % 4 != 0
                    attempts.append(
                        {
                            "delivery_id": delivery_id,
                            "person_id": pid,
                            "item_revision_id": revision_id,
                            "idempotency_key": f"history:{delivery_id}",
                            "answer": str(answer + 1),
                            "choice_index": answer if correct else (answer + 1) % 3,
                            "correct": correct,
                            "score": 100.0 if correct else 0.0,
                            "rating": 3 if correct else 1,
                            "scored": True,
                            "sent_at": sent,
                            "answered_at": sent + timedelta(seconds=40),
                            "response_ms": 40_000,
                            "time_spent_ms": 40_000,
                            "first_response_ms": 40_000,
                            "after_miss": False,
                            "points": 15 if correct else 1,
                            "grader": "mcq",
                            "grader_version": "mcq-1",
                            "feedback": {},
                            "compliance_flags": [],
                            "created_at": sent,
                        }
                    )
            for chunk in _chunks(deliveries):
                connection.execute(insert(Delivery), chunk)
            for chunk in _chunks(attempts):
                connection.execute(insert(Attempt), chunk)
            connection.execute(
                insert(MemoryCard),
                [
                    {
                        "person_id": pid,
                        "item_id": item_id,
                        "state": state,
                        "due_at": NOW + timedelta(days=3),
                        "last_review_at": NOW - timedelta(days=1),
                        "last_rating": 3,
                        "reviews": 8,
                        "lapses": 1,
                    }
                    for item_id, _, _ in mcqs
                ],
            )
            connection.execute(
                insert(PersonProgress),
                [
                    {
                        "person_id": pid,
                        "points_total": 9000,
                        "week_key": "2026-W49",
                        "week_points": 40,
                        "streak_days": 5,
                        "best_streak": 40,
                        "last_answer_date": date(2026, 12, 3),
                    }
                ],
            )
    print(
        f"    history: {len(reps)} reps x {days} days x {ANSWERS_PER_DAY} answers "
        f"= {len(reps) * days * ANSWERS_PER_DAY} attempts ({time.perf_counter() - started:.0f} s to write)"
    )


def open_questions(engine: Engine, rep_id: int, mcqs: list[tuple[int, int, int]], count: int) -> list[int]:
    """Sent questions for one rep, each a distinct (item, session date), ready to be answered."""
    rows = []
    for n in range(count):
        item_id, revision_id, _ = mcqs[n % len(mcqs)]
        rows.append(
            {
                "person_id": rep_id,
                "item_id": item_id,
                "item_revision_id": revision_id,
                "kind": "question",
                "local_session_date": date(2027, 1, 1) + timedelta(days=n // len(mcqs) + 1000 * (rep_id % 7)),
                "scheduled_at": NOW,
                "status": "sent",
                "sent_at": NOW - timedelta(seconds=30),
                "created_at": NOW,
                "platform_message_ref": f"ref-{n}",
            }
        )
    with engine.begin() as connection:
        connection.execute(insert(Delivery), rows)
        ids = connection.execute(
            select(col(Delivery.id))
            .where(col(Delivery.person_id) == rep_id, col(Delivery.status) == "sent")
            .order_by(col(Delivery.id))
        )
        return [int(i or 0) for (i,) in ids][-count:]


def _coach(engine: Engine, runner: StorageRunner) -> Coach:
    return Coach(
        engine=engine,
        runner=runner,
        adapter=NullAdapter(),
        grader=RubricGrader(),
        memory_model=memory.make_scheduler(fuzzing=False),
        config=CoachConfig(default_timezone="UTC", expire_after=timedelta(days=3)),
        clock=lambda: NOW,
    )


def _answers(
    engine: Engine, rep_index: int, rep_id: int, mcqs: list[tuple[int, int, int]], count: int
) -> list[ChoiceEvent]:
    answers = {item_id: answer for item_id, _, answer in mcqs}
    deliveries = open_questions(engine, rep_id, mcqs, count)
    with engine.connect() as connection:
        found = select(col(Delivery.id), col(Delivery.item_id)).where(col(Delivery.id).in_(deliveries))
        items: dict[int, int] = {int(d or 0): int(i or 0) for d, i in connection.execute(found)}
    run = uuid.uuid4().hex[:8]
    return [
        ChoiceEvent(
            sender=Address("console", "", f"rep{rep_index}"),
            key=f"bench:{run}:{delivery_id}",
            received_at=NOW,
            delivery_id=delivery_id,
            option_index=answers[items[delivery_id]] if n % 3 else (answers[items[delivery_id]] + 1) % 3,
        )
        for n, delivery_id in enumerate(deliveries)
    ]


async def measure_answers(
    engine: Engine, rep_ids: list[int], mcqs: list[tuple[int, int, int]], *, rep_index: int
) -> tuple[list[float], float]:
    """Seconds per answer after warm-up, and storage seconds per answer, for one rep's answers."""
    runner = TimingRunner()
    coach = _coach(engine, runner)
    events = _answers(engine, rep_index, rep_ids[rep_index], mcqs, ANSWERS + WARMUP)
    timings = []
    try:
        for n, event in enumerate(events):
            if n == WARMUP:
                runner.seconds = 0.0
            started = time.perf_counter()
            await coach.handle(event)
            if n >= WARMUP:
                timings.append(time.perf_counter() - started)
    finally:
        runner.close()
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT count(*) FROM attempt WHERE person_id = :person AND idempotency_key LIKE 'bench:%'"),
            {"person": rep_ids[rep_index]},
        ).scalar_one()
    assert stored == ANSWERS + WARMUP, f"expected every answer stored, found {stored}"
    return timings, runner.seconds / ANSWERS


@dataclass
class Rounds:
    """Seconds per answer, by round: the median of them all is the figure, the round medians the noise."""

    rounds: list[list[float]] = field(default_factory=list)
    storage: list[float] = field(default_factory=list)
    """Storage seconds per answer, by round (answer path rounds only)."""

    def add(self, timings: list[float], storage: float = 0.0) -> None:
        self.rounds.append(timings)
        self.storage.append(storage)

    @property
    def median(self) -> float:
        return statistics.median(timing for timings in self.rounds for timing in timings)

    def spread(self, digits: int = 2) -> str:
        medians = [statistics.median(timings) * 1000 for timings in self.rounds]
        return f"round medians {min(medians):.{digits}f}-{max(medians):.{digits}f} ms"


def measure_rounds(
    engine: Engine, rep_ids: list[int], mcqs: list[tuple[int, int, int]], reps: range
) -> Rounds:
    """One round per rep in ``reps``, each with its own runner."""
    rounds = Rounds()
    for rep_index in reps:
        rounds.add(*asyncio.run(measure_answers(engine, rep_ids, mcqs, rep_index=rep_index)))
    return rounds


async def measure_stall(
    engine: Engine, rep_ids: list[int], mcqs: list[tuple[int, int, int]]
) -> tuple[float, float]:
    """Longest event-loop stall (seconds) while CONCURRENT answers arrive at once, and the wall time."""
    runner = StorageRunner()
    coach = _coach(engine, runner)
    events = [
        event
        for index in CONCURRENT_REPS
        for event in _answers(engine, index, rep_ids[index], mcqs, CONCURRENT // len(CONCURRENT_REPS))
    ]
    worst = 0.0
    stop = asyncio.Event()

    async def monitor() -> None:
        nonlocal worst
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - started - 0.001)

    watcher = asyncio.create_task(monitor())
    started = time.perf_counter()
    try:
        await asyncio.gather(*(coach.handle(event) for event in events))
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        await watcher
        runner.close()
    return worst, elapsed


def raw_sqlite_baseline(path: Path, mcqs: list[tuple[int, int, int]]) -> list[float]:
    """Seconds per bare transaction after warm-up, on a copy of the same kind of file."""
    engine = make_engine(f"sqlite:///{path}")
    deliveries = open_questions(engine, 1, mcqs, ANSWERS + WARMUP)
    with engine.begin() as connection:
        connection.execute(
            insert(MemoryCard),
            [{"person_id": 1, "item_id": mcqs[0][0], "state": {}, "due_at": NOW, "reviews": 0, "lapses": 0}],
        )
        card_id = int(connection.execute(select(col(MemoryCard.id))).scalar_one() or 0)
    engine.dispose()
    state = memory.new_card_state(card_id, NOW)
    raw = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "busy_timeout=10000", "foreign_keys=ON", "synchronous=NORMAL"):
        raw.execute(f"PRAGMA {pragma}")
    timings = []
    stamp = NOW.strftime("%Y-%m-%d %H:%M:%S.%f")
    encoded = json.dumps(state)
    for n, delivery_id in enumerate(deliveries):
        started = time.perf_counter()
        raw.execute("BEGIN IMMEDIATE")
        raw.execute(
            "INSERT INTO attempt (delivery_id, person_id, item_revision_id, idempotency_key, answer,"
            " choice_index, correct, score, rating, scored, sent_at, answered_at, response_ms, time_spent_ms,"
            " first_response_ms, after_miss, points, grader, grader_version, feedback, compliance_flags,"
            " created_at) VALUES (?, 1, ?, ?, '1', 0, 1, 100.0, 3, 1, ?, ?, 30000, 30000, 30000, 0, 15,"
            " 'mcq', 'mcq-1', '{}', '[]', ?)",
            (delivery_id, mcqs[0][1], f"raw:{n}", stamp, stamp, stamp),
        )
        raw.execute(
            "UPDATE memory_card SET state = ?, due_at = ?, last_review_at = ?, last_rating = 3,"
            " reviews = reviews + 1 WHERE id = ?",
            (encoded, stamp, stamp, card_id),
        )
        raw.execute("UPDATE delivery SET status = 'answered' WHERE id = ?", (delivery_id,))
        raw.execute("COMMIT")
        if n >= WARMUP:
            timings.append(time.perf_counter() - started)
    raw.close()
    return timings


def component_costs(engine: Engine, mcqs: list[tuple[int, int, int]]) -> dict[str, float]:
    """Seconds per call of the non-storage parts of the path, measured alone."""
    with engine.connect() as connection:
        body = connection.execute(
            select(col(ItemRevision.body)).where(col(ItemRevision.id) == mcqs[0][1])
        ).scalar_one()
    scheduler = memory.make_scheduler(fuzzing=False)
    state = memory.new_card_state(1, NOW)

    def per_call(fn: Callable[[], object], rounds: int = 2000) -> float:
        started = time.perf_counter()
        for _ in range(rounds):
            fn()
        return (time.perf_counter() - started) / rounds

    return {
        "memory model": per_call(lambda: memory.review(scheduler, state, Rating.Good, NOW)),
        "grading": per_call(lambda: memory.rate_mcq(correct=True, response_seconds=30, target_seconds=45)),
        "rendering": per_call(
            lambda: (
                replies.mcq_feedback(body, 1, points=15, streak=3, week_points=40),
                replies.answered_question(body, 1, True),
            )
        ),
    }


def settle_garbage_collector() -> None:
    """Pay the data load's garbage debt before measuring, and freeze what is loaded, as ``coachbot run`` does.

    Writing the history allocates and frees millions of objects; the next full collection would then land
    in the middle of a measurement and pause the loop for tens of milliseconds.
    """
    gc.collect()
    gc.freeze()


@contextmanager
def pinned_to_one_cpu() -> Iterator[bool]:
    """Pin this thread, and the threads it starts meanwhile, to the CPU it runs on (Linux); False if not."""
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        yield False
        return
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {sorted(allowed)[0]})
    try:
        yield True
    finally:
        os.sched_setaffinity(0, allowed)


def postgres_server() -> str | None:
    return os.environ.get("COACHBOT_BENCH_DATABASE_URL") or os.environ.get("COACHBOT_TEST_DATABASE_URL")


def run_backend(
    label: str, make: Callable[[], Engine], baseline: Callable[[int], list[float]] | float
) -> float:
    """Measure one database, empty and with a year of history, in alternating rounds; returns the baseline.

    ``baseline`` is the raw transaction's median, or a function measuring one raw round, then run before
    each pair of rounds: a machine speeding up or slowing down during the run (CPU boost, neighbours, the
    process warming up) then moves all three series alike.
    """
    engines: list[Engine] = []
    try:
        prepared = []
        for history in (False, True):
            engines.append(make())
            prepared.append(prepare(engines[-1], history=history))
        settle_garbage_collector()
        raw = Rounds()
        measured = [Rounds(), Rounds()]
        for round_number, rep_index in enumerate(MEASURED_REPS):
            if callable(baseline):
                raw.add(baseline(round_number))
            for which, (engine, (rep_ids, mcqs)) in enumerate(zip(engines, prepared, strict=True)):
                measured[which].add(*asyncio.run(measure_answers(engine, rep_ids, mcqs, rep_index=rep_index)))
        if callable(baseline):
            baseline = raw.median
            print(f"  raw sqlite3 transaction: {baseline * 1000:.3f} ms ({raw.spread(3)})")
        for which, what in enumerate(("an empty database", "a year of history")):
            rounds = measured[which]
            costs = component_costs(engines[which], prepared[which][1])
            print(
                f"  {label}, {what}: median {rounds.median * 1000:.2f} ms per answer"
                f" = {rounds.median / baseline:.1f}x raw ({rounds.spread()};"
                f" storage {statistics.median(rounds.storage) * 1000:.2f} ms;"
                f" memory model {costs['memory model'] * 1e6:.0f} µs;"
                f" grading {costs['grading'] * 1e6:.1f} µs; rendering {costs['rendering'] * 1e6:.0f} µs)"
            )
        if label == "SQLite":
            with pinned_to_one_cpu() as pinned:
                if pinned:
                    alone = measure_rounds(engines[0], *prepared[0], PINNED_REPS)
            if pinned:
                print(
                    f"  {label}, an empty database, loop and storage threads pinned to one CPU: median"
                    f" {alone.median * 1000:.2f} ms = {alone.median / baseline:.1f}x raw"
                    f" ({alone.spread()}; the rest of the figure above is the storage thread running on"
                    " another core than the event loop)"
                )
        stall, elapsed = asyncio.run(measure_stall(engines[1], *prepared[1]))
        print(
            f"  {label}: {CONCURRENT} concurrent answers in {elapsed * 1000:.0f} ms;"
            f" longest event-loop stall {stall * 1000:.1f} ms (aim: at most 50 ms)"
        )
        empty, full = (rounds.median for rounds in measured)
        print(f"  {label}: history vs empty {abs(full - empty) / empty:.0%} apart (aim: within 20%)")
        return baseline
    finally:
        for engine in engines:
            engine.dispose()


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="coachbot-bench-"))
    try:
        template = folder / "template.db"
        engine = make_engine(f"sqlite:///{template}")
        _, mcqs = prepare(engine, history=False)
        engine.dispose()

        def raw_round(round_number: int) -> list[float]:
            copy = folder / f"baseline{round_number}.db"
            shutil.copyfile(template, copy)
            return raw_sqlite_baseline(copy, mcqs)

        counter = iter(range(1000))

        def sqlite_engine() -> Engine:
            return make_engine(f"sqlite:///{folder / f'run{next(counter)}.db'}")

        print(
            f"answer path, median of {ROUNDS} rounds x {ANSWERS} answers (each round after {WARMUP} warm-up):"
        )
        baseline = run_backend("SQLite", sqlite_engine, raw_round)
        server = postgres_server()
        if server is None:
            print("  Postgres: skipped (set COACHBOT_BENCH_DATABASE_URL or COACHBOT_TEST_DATABASE_URL)")
            return
        with ExitStack() as databases:

            def pg_engine() -> Engine:
                url = databases.enter_context(scratch_postgres_database(server, prefix="coachbot_bench"))
                return make_engine(url)

            run_backend("Postgres", pg_engine, baseline)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
