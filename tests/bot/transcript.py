"""A harness for conversation tests: be a rep in the console adapter, over the real engine and database.

A test reads as a transcript, a table of what the rep sends and what the bot answers::

    await rita.play(
        [
            ("quiz", '''
                bot> Question
                     ...
            '''),
            ("2", "bot> ✅ Correct! ..."),
        ]
    )

Each line the rep sends is one inbound event, made by the console adapter exactly as ``coachbot chat``
makes it, with its own idempotency key; the clock is fake and moves a fixed step before every line, so
timings, points and memory-model due dates are deterministic.
"""

from __future__ import annotations

import io
import itertools
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.adapters.console.adapter import PLATFORM, ConsoleAdapter
from bot.engine import Coach, CoachConfig
from bot.events import ChoiceEvent, InboundEvent, TextEvent
from bot.grading import RoleplayGrader, RubricGrader
from bot.protocol import ChatAdapter
from content.loading import load_packs, load_roster
from scheduler import memory
from scheduler.sender import Address
from storage import learning
from storage.db import read_session, write_session
from storage.models import Delivery, DeliveryKind
from storage.runner import StorageRunner

DATA = Path(__file__).resolve().parent.parent / "data"
PACK = DATA / "coach-pack.yaml"
ROSTER = DATA / "coach-roster.yaml"
START = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # a Wednesday, 09:00 in Berlin
STEP = timedelta(seconds=10)
EXPIRE_AFTER = timedelta(days=3)

Row = tuple[str, str]


@dataclass
class Clock:
    """The fake clock every transcript of one test shares."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


def coach_for_tests(
    engine: Engine,
    runner: StorageRunner,
    adapter: ChatAdapter,
    clock: Clock,
    *,
    grader: RoleplayGrader | None = None,
) -> Coach:
    """The engine as the conversation tests run it on any adapter: FSRS without fuzzing (due dates are
    exact), UTC for people without a zone, questions expiring after ``EXPIRE_AFTER``, the fake clock."""
    return Coach(
        engine=engine,
        runner=runner,
        adapter=adapter,
        grader=grader or RubricGrader(),
        memory_model=memory.make_scheduler(fuzzing=False),
        config=CoachConfig(default_timezone="UTC", expire_after=EXPIRE_AFTER),
        clock=clock,
    )


def load_content(engine: Engine) -> None:
    """The test pack and roster, loaded as `coachbot pack load` and `coachbot roster load` would."""
    load_packs(engine, [PACK], actor="test")
    load_roster(engine, ROSTER, actor="test")


def bind_console(engine: Engine, email: str) -> Address:
    """Bind the console identity to a roster person, the way ``coachbot chat --as EMAIL`` does."""
    with write_session(engine) as session:
        person = learning.person_by_email(session, email=email)
        assert person is not None, f"{email} is not on the test roster"
        assert person.id is not None
        learning.bind_identity(session, person_id=person.id, platform=PLATFORM, workspace="", user_id=email)
    return console_address(email)


def console_address(email: str) -> Address:
    return Address(PLATFORM, "", email)


def expected_text(answer: str) -> str:
    """An expected answer as written in a table: indented for reading, compared without that indent."""
    return _trim(textwrap.dedent(answer).strip("\n"))


def _trim(text: str) -> str:
    """Only trailing whitespace is normalised (the adapter indents the blank lines inside a message)."""
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines())


@dataclass
class Transcript:
    """One rep's console conversation. Use :meth:`start` to make one."""

    engine: Engine
    email: str
    clock: Clock
    step: timedelta = STEP
    out: io.StringIO = field(default_factory=io.StringIO)
    keys: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    grader: RoleplayGrader = field(default_factory=RubricGrader)

    def __post_init__(self) -> None:
        self.address = bind_console(self.engine, self.email)
        self.adapter = ConsoleAdapter(self.out)
        self.coach = coach_for_tests(
            self.engine, StorageRunner(), self.adapter, self.clock, grader=self.grader
        )

    @classmethod
    def start(
        cls,
        engine: Engine,
        email: str = "rita@example.com",
        *,
        clock: Clock | None = None,
        grader: RoleplayGrader | None = None,
    ) -> Transcript:
        return cls(engine=engine, email=email, clock=clock or Clock(), grader=grader or RubricGrader())

    def as_rep(self, email: str) -> Transcript:
        """Another rep in the same database, on the same clock."""
        return Transcript(engine=self.engine, email=email, clock=self.clock, step=self.step)

    # --- talking ---------------------------------------------------------------------------------

    def next_key(self) -> str:
        return f"console:{self.email}:{next(self.keys)}"

    def event(self, line: str) -> InboundEvent:
        """The event the console adapter makes of a typed line, after the clock moves one step."""
        self.clock.advance(self.step)
        event = self.adapter.to_event(
            line, sender=self.address, key=self.next_key(), received_at=self.clock()
        )
        assert event is not None, f"the console ignores {line!r}"
        return event

    async def say(self, line: str) -> str:
        """Send one line; return exactly what the bot printed in reply ('' when it stays silent)."""
        return await self.handle(self.event(line))

    async def handle(self, event: InboundEvent) -> str:
        """Hand the engine an event as it is (a replay, a forged pick); return what the bot printed."""
        before = len(self.out.getvalue())
        await self.coach.handle(event)
        return self.out.getvalue()[before:]

    async def play(self, rows: Sequence[Row], *, typed_on_a_platform: bool = False) -> None:
        """Assert a conversation: each row is (what the rep sends, the bot's whole answer).

        ``typed_on_a_platform``: each line arrives as text typed in Slack or Telegram does, a
        :class:`TextEvent` (the console turns a number into a pick of the last question it showed).
        """
        for number, (line, answer) in enumerate(rows, start=1):
            event = self.text(line) if typed_on_a_platform else self.event(line)
            actual = _trim(await self.handle(event))
            expected = expected_text(answer)
            assert actual == expected, (
                f"row {number}: the rep sent {line!r}\n"
                f"--- expected ---\n{expected}\n--- the bot said ---\n{actual}"
            )

    async def start_item(self, item_key: str, pack_key: str = "coach") -> str:
        """Send one item now, as ``coachbot chat --item PACK/ITEM`` does; return what the bot printed."""
        person = self.person()
        before = len(self.out.getvalue())
        assert await self.coach.start_item(person, pack_key, item_key)
        return self.out.getvalue()[before:]

    def choice(self, delivery_id: int, option_index: int, *, key: str | None = None) -> ChoiceEvent:
        """A pick as a platform would report it (a button press), after the clock moves one step."""
        self.clock.advance(self.step)
        return ChoiceEvent(
            sender=self.address,
            key=key or self.next_key(),
            received_at=self.clock(),
            delivery_id=delivery_id,
            option_index=option_index,
        )

    def text(self, text: str, *, reply_to: int | None = None) -> TextEvent:
        """Text as typed on a chat platform (``reply_to``: the question it replies to); the clock steps."""
        self.clock.advance(self.step)
        return TextEvent(
            sender=self.address,
            key=self.next_key(),
            received_at=self.clock(),
            text=text,
            reply_to_delivery=reply_to,
        )

    # --- looking at the database ----------------------------------------------------------------

    def person(self) -> learning.PersonView:
        with read_session(self.engine) as session:
            person = learning.person_by_email(session, email=self.email)
            assert person is not None
            return person

    def person_id(self) -> int:
        person_id = self.person().id
        assert person_id is not None
        return person_id

    def deliveries(self, kind: str = DeliveryKind.QUESTION) -> list[Delivery]:
        with read_session(self.engine) as session:
            return list(
                session.exec(
                    select(Delivery)
                    .where(Delivery.person_id == self.person_id(), Delivery.kind == kind)
                    .order_by(col(Delivery.id))
                )
            )

    def last_delivery(self) -> Delivery:
        deliveries = self.deliveries()
        assert deliveries, "no question was delivered"
        return deliveries[-1]

    def attempts(self) -> int:
        with read_session(self.engine) as session:
            return learning.count_attempts(session, person_id=self.person_id())

    def read(self, query: Any) -> list[Any]:
        with Session(self.engine) as session:
            return list(session.exec(query))
