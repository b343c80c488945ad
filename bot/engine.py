"""The conversation engine: everything a rep can do in chat, on any platform.

Adapters turn platform payloads into :mod:`bot.events` and deliver what the engine sends through the
:class:`~bot.protocol.ChatAdapter` protocol. Storage runs in worker threads (:class:`StorageRunner`), and
every answer is written once per idempotency key, with attempt, memory card, delivery and progress in one
transaction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from fsrs import Rating, Scheduler
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot import replies
from bot.commands import CommandError, parse_command, parse_log, parse_pause
from bot.events import MAX_FILE_BYTES, ChoiceEvent, CommandEvent, FileEvent, InboundEvent, TextEvent
from bot.grading import RoleplayGrader, RoleplayTask
from bot.protocol import ChatAdapter
from content.fields import check_clock, check_timezone
from content.loading import describe_pack_report, load_validated_packs, load_validated_roster
from content.packs import ValidatedPack, parse_pack
from content.problems import ContentError
from content.roster import ValidatedRoster, parse_roster_csv, parse_roster_yaml
from content.yamlsafe import read_yaml
from insights.metrics import summarize, week_bounds, week_key
from scheduler import memory
from scheduler.messages import Choice, Message, bold, message
from scheduler.selection import choose_next
from scheduler.sender import Address
from storage import learning
from storage.activities import ActivityImport, upsert_activities
from storage.audit import record_audit
from storage.driver import PreparedStatements, driver_transaction
from storage.errors import StorageError
from storage.models import ActivitySource, DeliveryKind, DeliveryStatus, utcnow
from storage.runner import StorageRunner

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_WORKDAYS = "mon,tue,wed,thu,fri"
WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MCQ_POINTS = 10
FAST_BONUS = 5
EFFORT_POINTS = 1
TIME_SPENT_CAP = 3
MAX_ANSWER_CHARS = 4000
"""Longer role-play answers are sent back to be shortened: graded text and stored text stay the same, and
grading time stays bounded (Slack allows 40,000 characters in a message)."""
# "2: answer", "2) answer", "2. answer", "2 - answer"; not "1.9 points" or "3-year NNT".
_NUMBERED_ANSWER = re.compile(r"^\s*([0-9]{1,2})\s*(?:[:)]|[.\-](?=\s))\s*(.+)$", re.DOTALL)
_TYPED_NUMBER = re.compile(r"\s*#?([0-9]{1,2})\s*[.)]?\s*")


def _typed_choice(event: TextEvent, delivery_id: int, number: int) -> ChoiceEvent:
    """A number typed as text, as the pick its button would have made (same key, same time)."""
    return ChoiceEvent(
        sender=event.sender,
        key=event.key,
        received_at=event.received_at,
        delivery_id=delivery_id,
        option_index=number - 1,
    )


class UnknownItem(LookupError):
    """No live pack has this item (``PACK/ITEM``)."""


def _which_roleplay(roleplays: Sequence[learning.DeliveryContext]) -> Message:
    """The open role-plays, numbered by their place among the recent ones: answering one renumbers nothing."""
    return replies.which_roleplay(
        [
            (number, roleplay.body["scenario"])
            for number, roleplay in enumerate(roleplays, start=1)
            if roleplay.status == DeliveryStatus.SENT
        ]
    )


SILENT = Message(())
"""A reply that is deliberately nothing: a replayed event is acknowledged and ignored."""


@dataclass(frozen=True)
class _Loaded:
    """What one read transaction gathers for an event: who sent it, their team, the question answered."""

    person: learning.PersonView | None
    team: learning.TeamView | None
    context: learning.DeliveryContext | None


@dataclass(frozen=True)
class _Scored:
    """How an answer was graded, ready to be written."""

    answer: str
    choice_index: int | None
    correct: bool | None
    score: float
    rating: int
    points: int
    grader: str
    grader_version: str
    feedback: dict[str, Any]
    flags: list[dict[str, Any]]


@dataclass(frozen=True)
class _Recorded:
    result: learning.AttemptResult
    lesson: bool
    upcoming: learning.DeliveryContext | None


@dataclass(frozen=True)
class _ChoiceOutcome:
    """A reply instead of feedback (a refusal, or SILENT), or what was recorded."""

    reply: Message | None
    person: learning.PersonView | None = None
    context: learning.DeliveryContext | None = None
    recorded: _Recorded | None = None
    points: int = 0


@dataclass(frozen=True)
class CoachConfig:
    default_timezone: str = "UTC"
    expire_after: timedelta = timedelta(days=3)


class Coach:
    """One engine per process; adapters call :meth:`handle` for each inbound event."""

    def __init__(
        self,
        *,
        engine: Engine,
        runner: StorageRunner,
        adapter: ChatAdapter,
        grader: RoleplayGrader,
        memory_model: Scheduler,
        config: CoachConfig,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._runner = runner
        self._adapter = adapter
        self._grader = grader
        self._memory = memory_model
        self._config = config
        self._clock = clock
        self._statements = PreparedStatements(engine.dialect)

    # --- storage helpers ------------------------------------------------------------------------

    async def _read(self, fn: Callable[[Session], T]) -> T:
        return await self._runner.read(self._engine, fn)

    async def _write(self, fn: Callable[[Session], T]) -> T:
        return await self._runner.write(self._engine, fn)

    async def _say(self, to: Address, text: Message, choices: Sequence[Choice] = ()) -> str | None:
        return await self._adapter.send_message(to, text, choices)

    # --- entry point ----------------------------------------------------------------------------

    async def handle(self, event: InboundEvent) -> None:
        """React to one inbound event. Unknown people get one short reply and nothing is written.

        A failure on our side (a database outage, a bug) is logged with its traceback and the rep gets a
        short apology, never a stack trace; their answer can be sent again.
        """
        try:
            await self._handle(event)
        except Exception:
            log.exception("failed to handle %s %s", type(event).__name__, event.key)
            try:
                await self._say(event.sender, replies.OUR_FAULT)
            except Exception:
                log.exception("could not tell the sender about the failure either")

    async def _handle(self, event: InboundEvent) -> None:
        if isinstance(event, ChoiceEvent):
            await self._answer_choice(event)
            return
        if isinstance(event, TextEvent) and event.reply_to_delivery is not None:
            typed = _TYPED_NUMBER.fullmatch(event.text)
            if typed is not None:  # a number typed in reply to a question: the same as its button
                await self._answer_choice(_typed_choice(event, event.reply_to_delivery, int(typed[1])))
                return
        sender = event.sender
        answered = event.reply_to_delivery if isinstance(event, TextEvent) else None

        def load(session: Session) -> _Loaded:
            person = learning.person_for_identity(
                session, platform=sender.platform, workspace=sender.workspace, user_id=sender.user_id
            )
            if person is None or not person.active:
                return _Loaded(person, None, None)
            team = learning.team_of(session, team_id=person.team_id)
            context = (
                learning.question_context(session, delivery_id=answered) if answered is not None else None
            )
            return _Loaded(person, team, context)

        loaded = await self._read(load)
        person = loaded.person
        if person is None or not person.active:
            log.info(
                "refused %s event from an unknown or inactive %s user", type(event).__name__, sender.platform
            )
            await self._say(sender, replies.UNKNOWN_PERSON if person is None else replies.INACTIVE_PERSON)
            return
        if isinstance(event, CommandEvent):
            await self._command(person, event, event.name, event.args)
        elif isinstance(event, FileEvent):
            await self._file(person, event)
        else:
            command = parse_command(event.text)
            typed_number = _TYPED_NUMBER.fullmatch(event.text)
            slashed = event.text.lstrip().startswith("/")
            if command is not None and (event.reply_to_delivery is None or slashed or not command.args):
                # A reply to a question may still be a command: "/stats", or a command word on its own.
                await self._command(person, event, command.name, command.args)
            elif slashed:
                await self._say(sender, replies.SHORT_HELP)  # an unknown /command is never an answer
            elif typed_number is not None:
                await self._typed_pick(person, event, int(typed_number[1]))
            else:
                await self._answer_text(loaded, event)

    # --- time -----------------------------------------------------------------------------------

    def _timezone(self, person: learning.PersonView) -> str:
        return person.timezone or self._config.default_timezone

    def _local_date(self, person: learning.PersonView, at: datetime) -> date:
        return at.astimezone(ZoneInfo(self._timezone(person))).date()

    def _workdays(self, person: learning.PersonView, team_workdays: str | None) -> set[int]:
        keys = (person.workdays or team_workdays or DEFAULT_WORKDAYS).split(",")
        return {WEEKDAY_KEYS.index(k) for k in keys if k in WEEKDAY_KEYS} or set(range(5))

    def _previous_workday(self, day: date, workdays: set[int]) -> date:
        probe = day - timedelta(days=1)
        for _ in range(7):
            if probe.weekday() in workdays:
                return probe
            probe -= timedelta(days=1)
        return day - timedelta(days=1)

    # --- questions ------------------------------------------------------------------------------

    async def send_question(self, person: learning.PersonView, context: learning.DeliveryContext) -> None:
        """Send a question delivery and mark it sent with the platform's message reference."""
        to = await self._address(person)
        if to is None:
            return
        ref = await self._send_question_text(to, context)
        sent_at = self._clock()
        await self._write(
            lambda s: learning.mark_sent(s, delivery_id=context.delivery_id, message_ref=ref, sent_at=sent_at)
        )

    async def _address(self, person: learning.PersonView) -> Address | None:
        platform, person_id = self._adapter.platform, person.id
        identity = await self._read(lambda s: learning.identity_of(s, person_id=person_id, platform=platform))
        if identity is None:
            return None
        return Address(identity.platform, identity.workspace, identity.user_id, identity.dm_channel)

    async def start_item(self, person: learning.PersonView, pack_key: str, item_key: str) -> bool:
        """Send one specific item now (an admin previewing a pack as a rep would see it).

        False when the person already answered it today (one delivery per item a day); raises
        :class:`UnknownItem` when no live pack has that item.
        """
        now = self._clock()
        local_date = self._local_date(person, now)
        candidate = await self._read(
            lambda s: learning.candidate_by_key(s, pack_key=pack_key, item_key=item_key)
        )
        if candidate is None:
            raise UnknownItem(f"{pack_key}/{item_key}")
        context = await self._write(lambda s: self._new_question(s, person, candidate, local_date, now))
        if context is None:
            return False
        await self.send_question(person, context)
        return True

    def _new_question(
        self,
        session: Session,
        person: learning.PersonView,
        candidate: learning.Candidate,
        local_date: date,
        now: datetime,
    ) -> learning.DeliveryContext | None:
        delivery = learning.create_delivery(
            session,
            person_id=person.id,
            kind=DeliveryKind.QUESTION,
            local_date=local_date,
            scheduled_at=now,
            item_id=candidate.item_id,
            revision_id=candidate.revision_id,
            topic_id=candidate.topic_id,
        )
        assert delivery.id is not None
        if delivery.status not in (DeliveryStatus.PENDING, DeliveryStatus.SENT):
            return None
        return learning.question_context(session, delivery_id=delivery.id)

    async def _quiz(self, person: learning.PersonView, args: str) -> None:
        to = await self._address(person)
        assert to is not None
        now = self._clock()
        local_date = self._local_date(person, now)
        person_id = person.id

        def pick(session: Session) -> tuple[str, learning.DeliveryContext | None, list[str]]:
            candidates = learning.practice_candidates(session, person_id=person_id, team_id=person.team_id)
            if not candidates:
                return "empty", None, []
            topics = sorted({c.topic_key for c in candidates})
            topic = None
            if args:
                wanted = args.strip().lower()
                matches = [t for t in topics if t == wanted] or [t for t in topics if t.startswith(wanted)]
                if not matches:
                    return "unknown-topic", None, topics
                if len(matches) > 1:
                    return "ambiguous-topic", None, matches
                topic = matches[0]
            open_now = learning.open_questions(
                session, person_id=person_id, sent_after=now - self._config.expire_after
            )
            for context in open_now:
                if topic is None or context.topic_key == topic:
                    return "resend", context, topics
            today = learning.deliveries_on(
                session, person_id=person_id, local_date=local_date, kind="question"
            )
            done = {d.item_id for d in today if d.item_id is not None}
            kinds = {c.item_id: c.kind for c in candidates}
            mcqs_today = sum(1 for item_id in done if kinds.get(item_id) == "mcq")
            roleplays_today = len(done) - mcqs_today
            prefer = "roleplay" if mcqs_today >= 2 * (roleplays_today + 1) else "mcq"
            choice = choose_next(
                candidates, now=now, exclude_item_ids=done, topic_key=topic, prefer_kind=prefer
            )
            if choice is None:
                return "done", None, topics
            return "new", self._new_question(session, person, choice, local_date, now), topics

        outcome, context, topics = await self._write(pick)
        if outcome == "empty":
            await self._say(to, replies.NOTHING_TO_PRACTISE)
        elif outcome == "unknown-topic":
            await self._say(to, message("I don't know that topic. Topics: ", ", ".join(topics), "."))
        elif outcome == "ambiguous-topic":
            await self._say(to, message("Which one? ", ", ".join(topics), "."))
        elif outcome == "done" or context is None:
            await self._say(to, replies.NO_MORE_TODAY)
        elif outcome == "resend":
            await self._say(to, message("You still have this one open:"))
            await self._resend(person, context)
        else:
            await self.send_question(person, context)

    async def _resend(self, person: learning.PersonView, context: learning.DeliveryContext) -> None:
        """Show an open question again; replies to the new message answer it too (same delivery)."""
        to = await self._address(person)
        assert to is not None
        ref = await self._send_question_text(to, context)
        if ref is not None:
            await self._write(
                lambda s: learning.set_message_ref(s, delivery_id=context.delivery_id, message_ref=ref)
            )

    async def _send_question_text(self, to: Address, context: learning.DeliveryContext) -> str | None:
        """MCQs carry numbered choices; a role-play asks for a free-text reply to its delivery."""
        body = context.body
        if body["type"] == "mcq":
            choices = [Choice(str(i + 1), context.delivery_id, i) for i in range(len(body["options"]))]
            return await self._adapter.send_message(to, replies.question_text(body), choices)
        return await self._adapter.send_message(
            to, replies.question_text(body), reply_for=context.delivery_id
        )

    # --- answers --------------------------------------------------------------------------------

    def _refusal(
        self,
        session: learning.Executor,
        person: learning.PersonView,
        context: learning.DeliveryContext | None,
        event: InboundEvent,
    ) -> Message | None:
        """Why an answer to ``context`` cannot count (``SILENT`` for a replay), or None if it can."""
        if context is None or context.status == DeliveryStatus.PENDING or context.sent_at is None:
            return replies.UNKNOWN_QUESTION
        if context.person_id != person.id:
            log.warning(
                "person %s answered delivery %s of person %s",
                person.id,
                context.delivery_id,
                context.person_id,
            )
            return replies.NOT_YOURS
        if context.status == DeliveryStatus.ANSWERED:
            replay = learning.attempt_exists(session, idempotency_key=event.key)
            return SILENT if replay else replies.ALREADY_ANSWERED
        expired = context.sent_at + self._config.expire_after < event.received_at
        if context.status == DeliveryStatus.EXPIRED or expired:
            return replies.EXPIRED
        return None

    async def _answer_choice(self, event: ChoiceEvent) -> None:
        """An MCQ pick: grading is instant, so person, checks and the write share one transaction."""
        to = event.sender
        try:
            outcome = await self._runner.run(self._answer_choice_now, event)
        except IntegrityError:
            log.info("a concurrent copy of event %s was recorded first", event.key)
            return
        if outcome.reply is not None:
            if outcome.reply is not SILENT:
                await self._say(to, outcome.reply)
            return
        person, context, recorded = outcome.person, outcome.context, outcome.recorded
        assert person is not None and context is not None and recorded is not None  # noqa: PT018
        result = recorded.result
        body = context.body
        await self._say(
            to,
            replies.mcq_feedback(
                body,
                event.option_index,
                points=outcome.points,
                streak=result.streak_days,
                week_points=result.week_points,
            ),
        )
        if context.message_ref is not None:
            correct = event.option_index == int(body["answer"])
            await self._adapter.update_message(
                to, context.message_ref, replies.answered_question(body, event.option_index, correct)
            )
        await self._follow_up(person, context, recorded, to)

    def _answer_choice_now(self, event: ChoiceEvent) -> _ChoiceOutcome:
        sender = event.sender
        with driver_transaction(self._engine, self._statements) as transaction:
            facts = learning.answer_facts(
                transaction,
                platform=sender.platform,
                workspace=sender.workspace,
                user_id=sender.user_id,
                delivery_id=event.delivery_id,
            )
            if facts is None or not facts.person.active:
                log.info("refused an answer from an unknown or inactive %s user", sender.platform)
                return _ChoiceOutcome(replies.UNKNOWN_PERSON if facts is None else replies.INACTIVE_PERSON)
            person, team, context = facts.person, facts.team, facts.context
            refusal = self._refusal(transaction, person, context, event)
            if refusal is not None:
                return _ChoiceOutcome(refusal)
            assert context is not None
            assert context.sent_at is not None
            body = context.body
            if body["type"] != "mcq":
                return _ChoiceOutcome(replies.ROLEPLAY_NEEDS_WORDS)
            options = body["options"]
            if not 0 <= event.option_index < len(options):
                return _ChoiceOutcome(message(f"Pick a number from 1 to {len(options)}."))
            correct = event.option_index == int(body["answer"])
            seconds = (event.received_at - context.sent_at).total_seconds()
            target = float(body["target_seconds"])
            rating = memory.rate_mcq(correct=correct, response_seconds=seconds, target_seconds=target)
            points = (MCQ_POINTS + (FAST_BONUS if seconds <= target else 0)) if correct else EFFORT_POINTS
            recorded = self._record_now(
                transaction,
                person,
                context,
                event,
                _Scored(
                    answer=str(event.option_index + 1),
                    choice_index=event.option_index,
                    correct=correct,
                    score=100.0 if correct else 0.0,
                    rating=int(rating),
                    points=points,
                    grader="mcq",
                    grader_version="mcq-1",
                    feedback={
                        "correct": correct,
                        "picked": event.option_index,
                        "answer": int(body["answer"]),
                    },
                    flags=[],
                ),
                team,
                before=facts.before,
            )
            status = recorded.result.status
            if status != "recorded":
                return _ChoiceOutcome(replies.ALREADY_ANSWERED if status == "already_answered" else SILENT)
            return _ChoiceOutcome(None, person, context, recorded, points)

    async def _typed_pick(self, person: learning.PersonView, event: TextEvent, number: int) -> None:
        """A number typed instead of pressed picks that option, as the button would (the help says so).

        Not a reply (replies go straight to their question, in ``_handle``): it answers the newest open
        multiple-choice question, and is never taken as a role-play answer. The pick keeps the message's
        idempotency key, so a replay that finds another question open now changes nothing there either
        (the key is stored once) and stays silent.
        """
        to = event.sender
        if event.reply_to_other_message:
            # E.g. the first copy of a question sent again: guessing the newest question could score the
            # pick on another one.
            await self._say(to, replies.PICK_ON_THE_QUESTION)
            return
        recent = await self._recent_questions(person, event)
        open_questions = [question for question in recent if question.status == DeliveryStatus.SENT]
        mcqs = [question for question in open_questions if question.body["type"] == "mcq"]
        if mcqs:
            await self._answer_choice(_typed_choice(event, mcqs[-1].delivery_id, number))
        elif len(open_questions) > 1:
            await self._say(to, _which_roleplay([q for q in recent if q.body["type"] == "roleplay"]))
        elif open_questions:
            await self._say(to, replies.ROLEPLAY_NEEDS_WORDS)
        elif recent and recent[-1].body["type"] == "mcq":
            await self._say(to, replies.ALREADY_ANSWERED)  # a second pick, typed
        else:
            await self._say(to, replies.SHORT_HELP)

    async def _recent_questions(
        self, person: learning.PersonView, event: InboundEvent, *, item_kind: str | None = None
    ) -> list[learning.DeliveryContext]:
        """Questions sent to the rep that have not expired, open or answered, oldest first."""
        person_id = person.id
        since = event.received_at - self._config.expire_after
        return await self._read(
            lambda s: learning.recent_questions(s, person_id=person_id, sent_after=since, item_kind=item_kind)
        )

    async def _answer_text(self, loaded: _Loaded, event: TextEvent) -> None:
        to = event.sender
        text = event.text
        person = loaded.person
        assert person is not None
        if await self._read(lambda s: learning.attempt_by_key(s, idempotency_key=event.key)) is not None:
            return  # a replayed answer: already graded and answered
        if event.reply_to_delivery is not None:
            refusal = await self._read(lambda s: self._refusal(s, person, loaded.context, event))
            if refusal is not None:
                if refusal is not SILENT:
                    await self._say(to, refusal)
                return
            context = loaded.context
            assert context is not None
        else:
            roleplays = await self._recent_questions(person, event, item_kind="roleplay")
            open_roleplays = [question for question in roleplays if question.status == DeliveryStatus.SENT]
            if not open_roleplays:
                await self._say(to, replies.SHORT_HELP)
                return
            if len(open_roleplays) == 1:
                context = open_roleplays[0]
            else:
                numbered = _NUMBERED_ANSWER.match(text)
                if numbered is None or not 1 <= int(numbered[1]) <= len(roleplays):
                    await self._say(to, _which_roleplay(roleplays))
                    return
                context = roleplays[int(numbered[1]) - 1]
                if context.status != DeliveryStatus.SENT:
                    await self._say(to, replies.ALREADY_ANSWERED)
                    return
                text = numbered[2]
        if context.body["type"] != "roleplay":
            await self._say(to, message("That one is multiple choice: reply with the number of your answer."))
            return
        if len(text) > MAX_ANSWER_CHARS:
            await self._say(to, replies.answer_too_long(len(text), MAX_ANSWER_CHARS))
            return
        task = RoleplayTask.from_item_body(context.body)
        grade = await self._grader.grade(task, text)  # slow (an LLM): outside any transaction
        rating = memory.rate_roleplay(grade.score)
        points = round(grade.score / 10) + EFFORT_POINTS
        scored = _Scored(
            answer=text,
            choice_index=None,
            correct=None,
            score=grade.score,
            rating=int(rating),
            points=points,
            grader=grade.grader,
            grader_version=grade.version,
            feedback={
                "points": [{"point": p.point, "hit": p.hit, "evidence": p.evidence} for p in grade.points],
                "notes": list(grade.notes),
                "injection_removed": grade.injection_removed,
            },
            flags=[{"phrase": f.phrase, "reason": f.reason} for f in grade.flags],
        )
        try:
            recorded = await self._runner.run(
                self._record_answer, person, context, event, scored, loaded.team
            )
        except IntegrityError:
            return
        if recorded.result.status != "recorded":
            if recorded.result.status == "already_answered":
                await self._say(to, replies.ALREADY_ANSWERED)
            return
        result = recorded.result
        await self._say(
            to,
            replies.roleplay_feedback(
                grade,
                str(context.body["model_answer"]),
                points=points,
                streak=result.streak_days,
                week_points=result.week_points,
            ),
        )
        if context.message_ref is not None:
            await self._adapter.update_message(
                to, context.message_ref, replies.answered_question(context.body, None, None)
            )
        await self._follow_up(person, context, recorded, to)

    def _record_answer(
        self,
        person: learning.PersonView,
        context: learning.DeliveryContext,
        event: InboundEvent,
        scored: _Scored,
        team: learning.TeamView | None,
    ) -> _Recorded:
        with driver_transaction(self._engine, self._statements) as transaction:
            return self._record_now(transaction, person, context, event, scored, team)

    def _record_now(
        self,
        session: learning.Executor,
        person: learning.PersonView,
        context: learning.DeliveryContext,
        event: InboundEvent,
        scored: _Scored,
        team: learning.TeamView | None,
        *,
        before: learning.CardAndProgress | None = None,
    ) -> _Recorded:
        """Write the attempt, claim the lesson and find the next question, in the caller's transaction."""
        assert context.sent_at is not None
        answered_at = event.received_at
        response_ms = max(0, int((answered_at - context.sent_at).total_seconds() * 1000))
        cap_ms = int(TIME_SPENT_CAP * float(context.body["target_seconds"]) * 1000)
        local_date = self._local_date(person, answered_at)
        workdays = self._workdays(person, team.workdays if team else None)
        write = learning.AttemptWrite(
            delivery_id=context.delivery_id,
            person_id=person.id,
            item_id=context.item_id,
            revision_id=context.revision_id,
            idempotency_key=event.key,
            answer=scored.answer,
            choice_index=scored.choice_index,
            correct=scored.correct,
            score=scored.score,
            rating=scored.rating,
            sent_at=context.sent_at,
            answered_at=answered_at,
            response_ms=response_ms,
            time_spent_ms=min(response_ms, cap_ms),
            points=scored.points,
            grader=scored.grader,
            grader_version=scored.grader_version,
            feedback=scored.feedback,
            compliance_flags=scored.flags,
            local_date=local_date,
            week_key=week_key(local_date),
            streak_continues_from=self._previous_workday(local_date, workdays),
        )

        def schedule(state: dict[str, Any] | None, card_id: int) -> tuple[dict[str, Any], datetime, bool]:
            current = state or memory.new_card_state(card_id, answered_at)
            review = memory.review(self._memory, current, Rating(scored.rating), answered_at)
            return review.state, review.due, review.lapsed

        result = learning.record_attempt(session, write=write, schedule=schedule, before=before)
        if result.status != "recorded":
            return _Recorded(result, lesson=False, upcoming=None)
        missed = scored.rating == Rating.Again
        lesson = missed and learning.claim_lesson(
            session, person_id=person.id, topic_id=context.topic_id, local_date=local_date, now=answered_at
        )
        upcoming = learning.next_pending_question(session, person_id=person.id, local_date=local_date)
        return _Recorded(result, lesson=lesson, upcoming=upcoming)

    async def _follow_up(
        self, person: learning.PersonView, context: learning.DeliveryContext, recorded: _Recorded, to: Address
    ) -> None:
        """After a miss, the topic's lesson (once a day); then the session's next question, if any."""
        if recorded.lesson:
            await self._say(to, replies.lesson(context.topic_name, context.lesson))
        if recorded.upcoming is not None:
            await self.send_question(person, recorded.upcoming)

    # --- admin files ----------------------------------------------------------------------------

    async def _refused(
        self, person: learning.PersonView, event: InboundEvent, action: str, needed: str
    ) -> None:
        """Tell the person no, and audit-log the refusal (who, what, which role it needs)."""
        log.warning("refused %s to %s (role %s)", action, person.email, person.role)
        await self._write(
            lambda s: record_audit(
                s,
                actor=f"{event.sender.platform}:{person.email}",
                action="refused",
                details={"wanted": action, "needs": needed, "role": person.role},
            )
        )
        await self._say(event.sender, replies.refused(needed))

    async def _first_time(self, event: InboundEvent) -> bool:
        """Record the event's key; False for a replay (which must change nothing and stay silent)."""
        try:
            return await self._write(
                lambda s: learning.claim_update(s, platform=event.sender.platform, update_key=event.key)
            )
        except IntegrityError:
            return False

    def _has_role(self, person: learning.PersonView, *roles: str) -> bool:
        return person.role in roles

    async def _file(self, person: learning.PersonView, event: FileEvent) -> None:
        """Admins send a pack (YAML) or a roster (YAML or CSV): validated, then loaded in one transaction."""
        to = event.sender
        if not self._has_role(person, "admin"):
            await self._refused(person, event, "load a file", "admin")
            return
        if len(event.content) > MAX_FILE_BYTES:
            await self._say(to, message(f"{event.filename} is larger than {MAX_FILE_BYTES // 1_048_576} MB."))
            return
        try:
            parsed = await self._runner.run(_parse_file, event)
        except ContentError as exc:  # a bad file writes nothing, not even the event's key
            await self._say(to, replies.file_problems(event.filename, [str(p) for p in exc.errors]))
            return
        if not await self._first_time(event):
            return
        try:
            summary = await self._runner.run(
                _load_parsed, self._engine, parsed, f"{to.platform}:{person.email}"
            )
        except StorageError as exc:
            await self._say(to, message(f"{event.filename}: {exc}. Nothing was loaded."))
            return
        await self._say(to, message(summary))

    # --- commands -------------------------------------------------------------------------------

    async def _command(self, person: learning.PersonView, event: InboundEvent, name: str, args: str) -> None:
        to = event.sender
        if not await self._first_time(event):
            log.info("ignored a replayed %s command", name)
            return
        try:
            if name == "help":
                await self._say(to, replies.HELP)
            elif name == "quiz":
                await self._quiz(person, args)
            elif name == "stats":
                await self._stats(person, to)
            elif name == "leaderboard":
                await self._leaderboard(person, to)
            elif name == "log":
                await self._log(person, event, args, to)
            elif name == "pause":
                await self._pause(person, args, to)
            elif name == "resume":
                await self._write(lambda s: learning.set_paused_until(s, person_id=person.id, until=None))
                await self._say(to, message("Welcome back! Your daily sessions are on again."))
            elif name == "settings":
                await self._settings(person, args, to)
        except CommandError as exc:
            await self._say(to, message(str(exc)))

    async def _stats(self, person: learning.PersonView, to: Address) -> None:
        now = self._clock()
        timezone = self._timezone(person)
        local_date = self._local_date(person, now)
        start, end = week_bounds(local_date, timezone)
        previous_start, _ = week_bounds(local_date - timedelta(days=7), timezone)
        person_id = person.id
        this_week = await self._read(
            lambda s: learning.attempts_between(s, person_id=person_id, start=start, end=end)
        )
        last_week = await self._read(
            lambda s: learning.attempts_between(s, person_id=person_id, start=previous_start, end=start)
        )
        await self._say(to, replies.stats(week_key(local_date), summarize(this_week), summarize(last_week)))

    async def _leaderboard(self, person: learning.PersonView, to: Address) -> None:
        local_date = self._local_date(person, self._clock())
        key = week_key(local_date)
        if person.team_id is None:
            await self._say(to, replies.leaderboard(key, [], person.id, on_team=False))
            return
        team_id = person.team_id
        rows = await self._read(lambda s: learning.team_week_points(s, team_id=team_id, week_key=key))
        await self._say(to, replies.leaderboard(key, rows, person.id, on_team=True))

    async def _log(self, person: learning.PersonView, event: InboundEvent, args: str, to: Address) -> None:
        now = event.received_at
        request = parse_log(args, today=self._local_date(person, now))
        types = await self._read(lambda s: learning.activity_types_for_team(s, team_id=person.team_id))
        type_key = _match_activity_type(request.type_word, types)
        if type_key is None:
            known = ", ".join(sorted(types)) or "none yet"
            raise CommandError(f"I don't know the activity '{request.type_word}'. You can log: {known}.")
        row = ActivityImport(
            person_id=person.id,
            type_key=type_key,
            occurred_at=now,
            count=request.count,
            value=None,
            account=None,
            note=request.note,
            follow_up_on=request.follow_up_on,
            external_key=f"chat:{event.key}",
        )
        await self._write(lambda s: upsert_activities(s, rows=[row], source=ActivitySource.CHAT))
        reply = f"Logged {request.count} × {types[type_key]}."
        if request.follow_up_on is not None:
            reply += f" I'll remind you about the follow-up on {request.follow_up_on.isoformat()}."
        await self._say(to, message(reply))

    async def _pause(self, person: learning.PersonView, args: str, to: Address) -> None:
        until = parse_pause(args, today=self._local_date(person, self._clock()))
        stored = until or date.max
        person_id = person.id

        def pause(session: Session) -> None:
            learning.set_paused_until(session, person_id=person_id, until=stored)
            record_audit(
                session,
                actor=f"person:{person_id}",
                action="person.pause",
                details={"until": stored.isoformat()},
            )

        await self._write(pause)
        if until is None:
            await self._say(to, message("Paused. Send ", bold("resume"), " when you're back."))
        else:
            await self._say(to, message(f"Paused until {until.isoformat()} — enjoy the break!"))

    async def _settings(self, person: learning.PersonView, args: str, to: Address) -> None:
        words = args.split()
        if not words:
            team = await self._read(lambda s: learning.team_of(s, team_id=person.team_id))
            current_time = person.session_time or (team.session_time if team else "09:30")
            days = person.workdays or (team.workdays if team else DEFAULT_WORKDAYS)
            await self._say(
                to,
                message(
                    bold("Your settings"),
                    f"\nTime zone: {self._timezone(person)}\nSession time: {current_time}\nDays: {days}\n",
                    "Change with `settings timezone Europe/Berlin` or `settings time 08:30`.",
                ),
            )
            return
        if len(words) != 2 or words[0].lower() not in ("timezone", "tz", "time"):
            raise CommandError("Use `settings timezone Area/City` or `settings time HH:MM`.")
        field, value = words[0].lower(), words[1]
        timezone: str | None = None
        session_time: str | None = None
        try:
            if field in ("timezone", "tz"):
                timezone = check_timezone(value)
            else:
                session_time = check_clock(value)
        except ValueError:
            if field == "time":
                raise CommandError("Give the time as HH:MM, e.g. `settings time 08:30`.") from None
            raise CommandError(
                "Unknown time zone — use a name such as Europe/Berlin or America/New_York."
            ) from None
        person_id = person.id

        def update(session: Session) -> None:
            learning.update_person_schedule(
                session, person_id=person_id, timezone=timezone, session_time=session_time
            )
            record_audit(
                session,
                actor=f"person:{person_id}",
                action="person.settings",
                details={"timezone": timezone, "session_time": session_time},
            )

        await self._write(update)
        changed = f"time zone is now {timezone}" if timezone else f"session time is now {session_time}"
        await self._say(to, message(f"Done — your {changed}."))


def _match_activity_type(word: str, types: dict[str, str]) -> str | None:
    """Accept the key, its name, or a plural/dashed spelling: 'visits', 'follow-up', 'Doctor visit'."""
    wanted = word.lower().replace("-", "_")
    for key, name in types.items():
        if wanted in (key, key + "s", name.lower()) or wanted.rstrip("s") == key:
            return key
    return None


def _file_kind(event: FileEvent) -> str:
    """ "roster" or "pack": from the caption, else the file (CSV is a roster; YAML with people: is one)."""
    words = event.caption.lower().split()
    if "roster" in words:
        return "roster"
    if "pack" in words:
        return "pack"
    if event.filename.lower().endswith(".csv"):
        return "roster"
    try:
        data = read_yaml(event.content, file=event.filename).data
    except ContentError:
        return "pack"  # parse_pack reports the problem with its position
    return "roster" if isinstance(data, dict) and "people" in data and "pack" not in data else "pack"


def _parse_file(event: FileEvent) -> ValidatedPack | ValidatedRoster:
    if _file_kind(event) == "pack":
        return parse_pack(event.content, file=event.filename)
    if event.filename.lower().endswith(".csv"):
        return parse_roster_csv(event.content, file=event.filename)
    return parse_roster_yaml(event.content, file=event.filename)


def _load_parsed(engine: Engine, parsed: ValidatedPack | ValidatedRoster, actor: str) -> str:
    if isinstance(parsed, ValidatedPack):
        batch = load_validated_packs(engine, [parsed], actor=actor, warnings=parsed.warnings)
        lines = [describe_pack_report(report) for report in batch.packs]
        return "\n".join(lines + [f"warning: {p.message}" for p in batch.warnings][:5])
    result = load_validated_roster(engine, parsed, actor=actor)
    changes = result.changes
    if not changes.changed_anything:
        return "Roster unchanged."
    counts = (
        ("added", changes.people_added),
        ("updated", changes.people_updated),
        ("reactivated", changes.people_reactivated),
        ("deactivated", changes.people_deactivated),
    )
    summary = ", ".join(f"{len(names)} {label}" for label, names in counts if names)
    return f"Roster loaded: {summary}." + "".join(f"\nwarning: {w}" for w in result.warnings[:5])
