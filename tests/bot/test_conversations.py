"""Conversation tests: what a rep sends and what the bot answers, over the real engine (SQLite, Postgres).

Every test drives :class:`bot.engine.Coach` through the console adapter (see ``tests/bot/transcript.py``)
with the test pack ``coach`` and roster in ``tests/data``. The fake clock starts on Wednesday 2026-12-02 at
08:00 UTC (09:00 in Berlin, ISO week 2026-W49) and moves 10 seconds before each line the rep sends.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path

import pytest
from fsrs import Rating
from sqlmodel import col, select

from bot.events import ChoiceEvent, FileEvent, InboundEvent, TextEvent
from bot.grading import RoleplayTask
from content.grading import Grade
from content.loading import load_packs
from scheduler import memory
from storage import learning
from storage.db import read_session, write_session
from storage.models import (
    Activity,
    Attempt,
    AuditLog,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    MemoryCard,
    Pack,
    Person,
    PersonProgress,
    Team,
    TeamPack,
)
from tests.bot.transcript import EXPIRE_AFTER, Transcript, console_address, expected_text, load_content
from tests.conftest import DATA, Database, snapshot

# --- what the rep sees of each item of the test pack -------------------------------------------------

OB_1 = """
    bot> Question
         Dr. Weber: 'Too expensive.' Your first move?

         1) Offer a discount
         2) Ask what she compares it with
         3) Change the subject
         (reply 1-3)
"""
OB_2 = """
    bot> Question
         Dr. Weber: 'I have no time.' Best reply?

         1) Ask for two minutes
         2) Talk faster
         3) Leave a brochure
         (reply 1-3)
"""
CO_1 = """
    bot> Question
         A doctor asks about an off-label use. You…

         1) Answer from memory
         2) Refer to medical information
         3) Share a case story
         (reply 1-3)
"""
OB_RP = """
    bot> Role-play
         Dr. Weber: 'Your drug costs too much.'

         Reply with what you would say.
"""
CO_RP = """
    bot> Role-play
         Dr. Roth: 'Will it fix my patient's heart?'

         Reply with what you would say.
"""
OBJECTIONS_LESSON = """
    bot> 📘 Quick lesson — Objections
         Acknowledge the concern first, then bring the approved data.
"""
COMPLIANCE_LESSON = """
    bot> 📘 Quick lesson — Compliance
         Say only what the label says, and always mention safety.
"""
HELP = """
    bot> coachbot — practise in a few minutes a day.
         • quiz [topic] — the next question now (also: practice)
         • stats — your Capability, Effort, Agility and Initiative this week
         • leaderboard — your team's points this week
         • log TYPE [COUNT] [follow-up YYYY-MM-DD] [note] — log sales activity
         • pause [until YYYY-MM-DD] / resume — holidays
         • settings [timezone Area/City | time HH:MM] — your session time
         Answer a question with its number; answer a role-play in your own words.
"""
WHICH_ROLEPLAY = """
    bot> You have 2 open role-plays:
         1) Dr. Weber: 'Your drug costs too much.'
         2) Dr. Roth: 'Will it fix my patient's heart?'
         Start your answer with its number, e.g. 1: I understand your concern…
"""
SHORT_HELP = "bot> I didn't catch that. Send quiz for a question or help for commands."
ALREADY_ANSWERED = "bot> You've already answered that one. Send quiz for the next question."
ROLEPLAY_NEEDS_WORDS = "bot> That one is a role-play: reply in your own words."

CO_2 = """
    bot> Question
         Which claim may you make?

         1) It works for everyone
         2) It is approved to lower LDL
         3) It has no side effects
         (reply 1-3)
"""


def _points(number: int) -> str:
    return f"{number} point" + ("" if number == 1 else "s")


def then(*answers: str) -> str:
    """Several messages the bot sends in reply to one line, one after the other."""
    return "\n".join(expected_text(answer) for answer in answers)


# Feedback on the pack's MCQs; the progress line depends on what the rep answered before.


def _correct_ob_1(*, points: int, streak: int, week: int) -> str:
    return f"""
        bot> ✅ Correct!
             Knowing the comparison tells you which data to bring.
             +{points} points · {streak}-day streak · {week} points this week
    """


def _correct_ob_2(*, points: int, streak: int, week: int) -> str:
    return f"""
        bot> ✅ Correct!
             A short, specific ask respects her time.
             +{points} points · {streak}-day streak · {week} points this week
    """


def _correct_co_1(*, week: int) -> str:
    return f"""
        bot> ✅ Correct!
             Off-label questions go to medical information.
             +15 points · 1-day streak · {week} points this week
    """


def _wrong_ob_1(*, week: int) -> str:
    return f"""
        bot> ❌ Not quite — the answer is 2) Ask what she compares it with
             Knowing the comparison tells you which data to bring.
             +1 point · 1-day streak · {_points(week)} this week
    """


def _wrong_ob_2(*, week: int) -> str:
    return f"""
        bot> ❌ Not quite — the answer is 1) Ask for two minutes
             A short, specific ask respects her time.
             +1 point · 1-day streak · {_points(week)} this week
    """


@pytest.fixture
def rita(db: Database) -> Transcript:
    """Rita, a rep of team north, in the console; the pack and roster are loaded."""
    load_content(db.engine)
    return Transcript.start(db.engine, "rita@example.com")


def attempts_of(t: Transcript) -> list[Attempt]:
    return t.read(select(Attempt).where(Attempt.person_id == t.person_id()).order_by(col(Attempt.id)))


def person_row(t: Transcript) -> Person:
    (person,) = t.read(select(Person).where(Person.email == t.email))
    assert isinstance(person, Person)
    return person


# --- help and unknown input -----------------------------------------------------------------------


async def test_help_in_plain_words_and_as_slash_commands(rita: Transcript) -> None:
    await rita.play(
        [
            ("help", HELP),
            ("/help", HELP),
            ("Help", HELP),
            ("?", HELP),
        ]
    )


async def test_unknown_text_gets_short_help(rita: Transcript) -> None:
    await rita.play(
        [
            ("hello there", SHORT_HELP),
            ("/frobnicate", SHORT_HELP),
            ("42", SHORT_HELP),
        ]
    )


# --- MCQs -----------------------------------------------------------------------------------------


async def test_quiz_right_pick_gives_feedback_points_and_streak(rita: Transcript) -> None:
    await rita.play(
        [
            ("quiz", OB_1),
            (
                "2",
                """
                bot> ✅ Correct!
                     Knowing the comparison tells you which data to bring.
                     +15 points · 1-day streak · 15 points this week
                """,
            ),
            ("quiz", OB_2),
            (
                "1",
                """
                bot> ✅ Correct!
                     A short, specific ask respects her time.
                     +15 points · 1-day streak · 30 points this week
                """,
            ),
        ]
    )
    (first, second) = attempts_of(rita)
    assert (first.correct, first.choice_index, first.rating, first.points) == (True, 1, Rating.Good, 15)
    assert (second.correct, second.choice_index, second.rating, second.points) == (True, 0, Rating.Good, 15)


async def test_streak_grows_on_the_next_workday(rita: Transcript) -> None:
    await rita.play([("quiz", OB_1), ("2", _correct_ob_1(points=15, streak=1, week=15))])
    rita.clock.advance(timedelta(days=1))  # Thursday
    await rita.play([("quiz", OB_2), ("1", _correct_ob_2(points=15, streak=2, week=30))])


async def test_wrong_pick_shows_the_answer_then_the_lesson_once_per_topic_per_day(rita: Transcript) -> None:
    await rita.play(
        [
            ("quiz", OB_1),
            (
                "1",
                then(
                    """
                    bot> ❌ Not quite — the answer is 2) Ask what she compares it with
                         Knowing the comparison tells you which data to bring.
                         +1 point · 1-day streak · 1 point this week
                    """,
                    OBJECTIONS_LESSON,
                ),
            ),
            ("quiz", OB_2),
            (
                "3",
                """
                bot> ❌ Not quite — the answer is 1) Ask for two minutes
                     A short, specific ask respects her time.
                     +1 point · 1-day streak · 2 points this week
                """,
            ),
        ]
    )
    assert len(rita.deliveries(DeliveryKind.LESSON)) == 1
    # The next day the missed question is due again, and a miss earns the lesson again.
    rita.clock.advance(timedelta(days=1))
    await rita.play(
        [
            ("quiz", OB_1),
            (
                "3",
                then(
                    """
                    bot> ❌ Not quite — the answer is 2) Ask what she compares it with
                         Knowing the comparison tells you which data to bring.
                         +1 point · 2-day streak · 3 points this week
                    """,
                    OBJECTIONS_LESSON,
                ),
            ),
        ]
    )
    assert len(rita.deliveries(DeliveryKind.LESSON)) == 2


async def test_a_miss_in_another_topic_gets_that_topics_lesson(rita: Transcript) -> None:
    await rita.play(
        [
            ("quiz objections", OB_1),
            ("1", then(_wrong_ob_1(week=1), OBJECTIONS_LESSON)),
            ("quiz compliance", CO_1),
            (
                "1",
                then(
                    """
                    bot> ❌ Not quite — the answer is 2) Refer to medical information
                         Off-label questions go to medical information.
                         +1 point · 1-day streak · 2 points this week
                    """,
                    COMPLIANCE_LESSON,
                ),
            ),
        ]
    )


async def test_second_pick_in_the_console_gets_already_answered(rita: Transcript) -> None:
    await rita.play(
        [
            ("quiz", OB_1),
            ("2", _correct_ob_1(points=15, streak=1, week=15)),
        ]
    )
    before = snapshot(rita.engine)
    await rita.play([("1", ALREADY_ANSWERED)])
    assert snapshot(rita.engine) == before


async def test_second_pick_on_a_button_changes_nothing(rita: Transcript) -> None:
    """A platform keeps the buttons of an answered question: a later press is a new event, refused."""
    await rita.play([("quiz", OB_1), ("2", _correct_ob_1(points=15, streak=1, week=15))])
    delivery_id = rita.last_delivery().id
    assert delivery_id is not None
    before = snapshot(rita.engine)
    assert expected_text(await rita.handle(rita.choice(delivery_id, 0))) == expected_text(ALREADY_ANSWERED)
    assert snapshot(rita.engine) == before
    assert rita.attempts() == 1


async def test_quiz_with_an_open_question_shows_it_again(rita: Transcript) -> None:
    """A session's questions come one at a time: the next only after the previous is answered."""
    await rita.play(
        [
            ("quiz", OB_1),
            ("quiz", then("bot> You still have this one open:", OB_1)),
            ("2", _correct_ob_1(points=15, streak=1, week=15)),
            ("quiz", OB_2),
        ]
    )
    assert len(rita.deliveries()) == 2


async def test_quiz_topic_and_unknown_topic(rita: Transcript) -> None:
    await rita.play(
        [
            ("quiz nope", "bot> I don't know that topic. Topics: compliance, objections."),
            ("quiz compliance", CO_1),
            ("2", _correct_co_1(week=15)),
            ("practice comp", CO_2),
            ("/quiz objections", OB_RP),  # two MCQs today: a role-play comes next
        ]
    )


MORE_PACK = """
pack: coach-more
version: 1
title: More for the conversation tests
topics:
  - {key: compliance-pro, name: Compliance pro, lesson: Quote the label word for word.}
items:
  - key: cp-1
    topic: compliance-pro
    type: mcq
    prompt: "Which source may you quote?"
    options: [The label, A blog, A rumour]
    answer: 0
    explanation: Only the label is approved.
    target_seconds: 30
"""


async def test_quiz_topic_prefers_the_exact_name_and_asks_when_a_prefix_is_ambiguous(
    rita: Transcript, tmp_path: Path
) -> None:
    (tmp_path / "more.yaml").write_text(MORE_PACK, encoding="utf-8")
    load_packs(rita.engine, [tmp_path / "more.yaml"], actor="test")
    with write_session(rita.engine) as session:
        team_id = session.exec(select(Team.id).where(Team.key == "north")).one()
        assert team_id is not None
        session.add(TeamPack(team_id=team_id, pack_key="coach-more"))
    await rita.play(
        [
            ("quiz comp", "bot> Which one? compliance, compliance-pro."),
            ("quiz compliance", CO_1),
        ]
    )
    assert rita.attempts() == 0


async def test_session_questions_come_one_at_a_time(rita: Transcript) -> None:
    """Today's planned questions: the next goes out when the previous is answered, after any lesson."""
    person = rita.person()
    person_id = rita.person_id()
    with write_session(rita.engine) as session:
        ids: list[int] = []
        for key in ("ob-1", "co-1"):
            candidate = learning.candidate_by_key(session, pack_key="coach", item_key=key)
            assert candidate is not None
            delivery = learning.create_delivery(
                session,
                person_id=person_id,
                kind=DeliveryKind.QUESTION,
                local_date=date(2026, 12, 2),
                scheduled_at=rita.clock(),
                item_id=candidate.item_id,
                revision_id=candidate.revision_id,
                topic_id=candidate.topic_id,
            )
            assert delivery.id is not None
            ids.append(delivery.id)
    with write_session(rita.engine) as session:
        first = learning.question_context(session, delivery_id=ids[0])
    assert first is not None
    before = len(rita.out.getvalue())
    await rita.coach.send_question(person, first)
    assert expected_text(rita.out.getvalue()[before:]) == expected_text(OB_1)
    await rita.play(
        [
            ("1", then(_wrong_ob_1(week=1), OBJECTIONS_LESSON, CO_1)),
            ("2", _correct_co_1(week=16)),
        ]
    )
    assert [d.status for d in rita.deliveries()] == [DeliveryStatus.ANSWERED, DeliveryStatus.ANSWERED]


async def test_only_todays_pending_question_follows_an_answer(rita: Transcript) -> None:
    """Today's next question follows an answer; one pending from yesterday or due tomorrow does not."""
    person = rita.person()
    person_id = rita.person_id()
    planned = [
        ("ob-2", date(2026, 12, 1)),
        ("ob-1", date(2026, 12, 2)),
        ("co-1", date(2026, 12, 2)),
        ("co-2", date(2026, 12, 3)),
    ]
    ids: list[int] = []
    with write_session(rita.engine) as session:
        for key, day in planned:
            candidate = learning.candidate_by_key(session, pack_key="coach", item_key=key)
            assert candidate is not None
            delivery = learning.create_delivery(
                session,
                person_id=person_id,
                kind=DeliveryKind.QUESTION,
                local_date=day,
                scheduled_at=rita.clock() - timedelta(days=(date(2026, 12, 2) - day).days),
                item_id=candidate.item_id,
                revision_id=candidate.revision_id,
                topic_id=candidate.topic_id,
            )
            assert delivery.id is not None
            ids.append(delivery.id)
    with write_session(rita.engine) as session:
        today = learning.question_context(session, delivery_id=ids[1])
    assert today is not None
    await rita.coach.send_question(person, today)
    await rita.play([("2", then(_correct_ob_1(points=15, streak=1, week=15), CO_1))])
    assert [d.status for d in rita.deliveries()] == [
        DeliveryStatus.PENDING,
        DeliveryStatus.ANSWERED,
        DeliveryStatus.SENT,
        DeliveryStatus.PENDING,
    ]


# --- role-plays -----------------------------------------------------------------------------------


async def test_roleplay_answered_in_free_text(rita: Transcript) -> None:
    assert expected_text(await rita.start_item("ob-rp")) == expected_text(OB_RP)
    await rita.play(
        [
            (
                "I understand, cost matters. Shall we look at the numbers?",
                """
                bot> Score 50/100
                     ✓ Acknowledges the concern
                     ✗ Brings outcome data
                     Model answer: I understand. The trial data shows fewer hospital stays, which saves money.
                     +6 points · 1-day streak · 6 points this week
                """,
            ),
            ("I understand, and the trial data is clear.", SHORT_HELP),
        ]
    )
    (attempt,) = attempts_of(rita)
    assert (attempt.score, attempt.rating, attempt.grader, attempt.points) == (50.0, Rating.Hard, "rubric", 6)
    assert attempt.answer == "I understand, cost matters. Shall we look at the numbers?"
    assert attempt.compliance_flags == []


async def test_roleplay_reached_through_quiz(rita: Transcript) -> None:
    """After two MCQs the next quiz is a role-play, so a session mixes both kinds."""
    await rita.play(
        [
            ("quiz", OB_1),
            ("2", _correct_ob_1(points=15, streak=1, week=15)),
            ("quiz", OB_2),
            ("1", _correct_ob_2(points=15, streak=1, week=30)),
            ("quiz", OB_RP),
            (
                "You're right to ask. The study data shows fewer hospital stays.",
                """
                bot> Score 100/100
                     ✓ Acknowledges the concern
                     ✓ Brings outcome data
                     Model answer: I understand. The trial data shows fewer hospital stays, which saves money.
                     +11 points · 1-day streak · 41 points this week
                """,
            ),
        ]
    )


async def test_forbidden_phrase_is_flagged_and_caps_the_score(rita: Transcript) -> None:
    assert expected_text(await rita.start_item("co-rp")) == expected_text(CO_RP)
    await rita.play(
        [
            (
                "It is approved to lower LDL and it cures heart disease. The main side effect is a headache.",
                then(
                    """
                    bot> Score 40/100
                         ✓ Stays on label
                         ✓ Mentions safety
                         ⚠ Compliance: “cures” — unapproved efficacy claim
                         Model answer: It is approved to lower LDL; the most common side effect is a headache.
                         +5 points · 1-day streak · 5 points this week
                    """,
                    COMPLIANCE_LESSON,
                ),
            ),
        ]
    )
    (attempt,) = attempts_of(rita)
    assert attempt.score == 40.0
    assert attempt.rating == Rating.Again
    assert attempt.compliance_flags == [{"phrase": "cures", "reason": "unapproved efficacy claim"}]


async def test_two_open_roleplays_the_bot_asks_which(rita: Transcript) -> None:
    assert expected_text(await rita.start_item("ob-rp")) == expected_text(OB_RP)
    assert expected_text(await rita.start_item("co-rp")) == expected_text(CO_RP)
    await rita.play(
        [
            (
                "I understand your concern",
                WHICH_ROLEPLAY,
            ),
            (
                "2: It is approved to lower LDL, and the main side effect is a headache.",
                """
                bot> Score 100/100
                     ✓ Stays on label
                     ✓ Mentions safety
                     Model answer: It is approved to lower LDL; the most common side effect is a headache.
                     +11 points · 1-day streak · 11 points this week
                """,
            ),
            (
                "Fair point. Our data shows it pays for itself.",
                """
                bot> Score 100/100
                     ✓ Acknowledges the concern
                     ✓ Brings outcome data
                     Model answer: I understand. The trial data shows fewer hospital stays, which saves money.
                     +11 points · 1-day streak · 22 points this week
                """,
            ),
        ]
    )
    first, second = attempts_of(rita)
    assert first.answer == "It is approved to lower LDL, and the main side effect is a headache."
    assert second.answer == "Fair point. Our data shows it pays for itself."


async def test_roleplay_numbers_stay_put_as_the_rep_answers_them_one_by_one(rita: Transcript) -> None:
    """Yesterday's two role-plays and today's: answering number 1 must not make number 2 mean another."""
    assert expected_text(await rita.start_item("ob-rp")) == expected_text(OB_RP)
    assert expected_text(await rita.start_item("co-rp")) == expected_text(CO_RP)
    rita.clock.advance(timedelta(days=1))
    assert expected_text(await rita.start_item("ob-rp")) == expected_text(OB_RP)
    await rita.play(
        [
            (
                "hello",
                """
                bot> You have 3 open role-plays:
                     1) Dr. Weber: 'Your drug costs too much.'
                     2) Dr. Roth: 'Will it fix my patient's heart?'
                     3) Dr. Weber: 'Your drug costs too much.'
                     Start your answer with its number, e.g. 1: I understand your concern…
                """,
            ),
            (
                "1: Fair point. Our data shows it pays for itself.",
                """
                bot> Score 100/100
                     ✓ Acknowledges the concern
                     ✓ Brings outcome data
                     Model answer: I understand. The trial data shows fewer hospital stays, which saves money.
                     +11 points · 1-day streak · 11 points this week
                """,
            ),
            (
                "hello",
                """
                bot> You have 2 open role-plays:
                     2) Dr. Roth: 'Will it fix my patient's heart?'
                     3) Dr. Weber: 'Your drug costs too much.'
                     Start your answer with its number, e.g. 2: I understand your concern…
                """,
            ),
            ("1: Fair point, and the data agrees.", ALREADY_ANSWERED),
            (
                "2: It is approved to lower LDL, and the main side effect is a headache.",
                """
                bot> Score 100/100
                     ✓ Stays on label
                     ✓ Mentions safety
                     Model answer: It is approved to lower LDL; the most common side effect is a headache.
                     +11 points · 1-day streak · 22 points this week
                """,
            ),
        ]
    )
    first, second = attempts_of(rita)
    roleplays = rita.deliveries()
    assert (first.delivery_id, second.delivery_id) == (roleplays[0].id, roleplays[1].id)
    assert roleplays[2].status == DeliveryStatus.SENT


async def test_a_roleplay_answer_too_long_to_grade_is_sent_back(rita: Transcript) -> None:
    """Slack allows 40,000 characters; the answer graded is the one stored, so a longer one is refused."""
    assert expected_text(await rita.start_item("ob-rp")) == expected_text(OB_RP)
    too_long = ("Fair point, the data shows fewer stays. " * 101).strip()
    assert len(too_long) == 4039
    await rita.play(
        [
            (
                too_long,
                "bot> That answer is 4,039 characters long; I grade up to 4,000."
                " Please shorten it and send it again.",
            )
        ]
    )
    assert rita.attempts() == 0
    longest = too_long[:4000].strip()
    graded = expected_text(await rita.say(longest))
    assert graded.startswith("bot> Score 100/100")
    (attempt,) = attempts_of(rita)
    assert attempt.answer == longest


@pytest.mark.parametrize(
    "answer",
    ["1.9 points lower LDL over 3 years.", "1-year data shows fewer stays.", "2.5 mmol/L lower LDL."],
)
async def test_an_answer_starting_with_a_figure_is_not_taken_for_a_roleplay_number(
    rita: Transcript, answer: str
) -> None:
    assert expected_text(await rita.start_item("ob-rp")) == expected_text(OB_RP)
    assert expected_text(await rita.start_item("co-rp")) == expected_text(CO_RP)
    said = expected_text(await rita.say(answer))
    assert said.startswith("bot> You have 2 open role-plays:")
    assert rita.attempts() == 0


async def test_an_unknown_slash_command_is_never_a_roleplay_answer(rita: Transcript) -> None:
    assert expected_text(await rita.start_item("ob-rp")) == expected_text(OB_RP)
    before = snapshot(rita.engine)
    await rita.play([("/stast", SHORT_HELP), ("/frobnicate the rubric", SHORT_HELP)])
    assert snapshot(rita.engine) == before


async def test_a_command_sent_as_a_reply_to_a_roleplay_is_a_command(rita: Transcript) -> None:
    """Telegram reports a reply to the role-play's message; a bare command word or /command still works."""
    assert expected_text(await rita.start_item("ob-rp")) == expected_text(OB_RP)
    roleplay = rita.last_delivery().id
    before = snapshot(rita.engine)
    assert expected_text(await rita.handle(rita.text("help", reply_to=roleplay))) == expected_text(HELP)
    assert expected_text(await rita.handle(rita.text("/help", reply_to=roleplay))) == expected_text(HELP)
    assert expected_text(await rita.handle(rita.text("/nope", reply_to=roleplay))) == SHORT_HELP
    assert snapshot(rita.engine)["attempt"] == before["attempt"]
    graded = expected_text(await rita.handle(rita.text("Help me see the cost your way.", reply_to=roleplay)))
    assert graded.startswith("bot> Score")


async def test_a_number_typed_in_the_console_after_a_roleplay_is_shown_is_not_a_pick(
    rita: Transcript,
) -> None:
    """The console picks from the last question it showed; after a role-play that is no MCQ any more."""
    await rita.play([("quiz", OB_1), ("2", _correct_ob_1(points=15, streak=1, week=15))])
    assert expected_text(await rita.start_item("ob-rp")) == expected_text(OB_RP)
    before = snapshot(rita.engine)
    await rita.play([("3", ROLEPLAY_NEEDS_WORDS)])
    assert snapshot(rita.engine) == before


async def test_a_superscript_digit_in_the_console_is_text_not_a_crash(rita: Transcript) -> None:
    """str.isdigit() is true for "²", which int() refuses: only ASCII digits pick an option."""
    await rita.play([("quiz", OB_1), ("²", SHORT_HELP), ("2", _correct_ob_1(points=15, streak=1, week=15))])


async def test_free_text_with_an_open_mcq_gets_short_help(rita: Transcript) -> None:
    await rita.play(
        [
            ("quiz", OB_1),
            ("I would ask her what she compares it with", SHORT_HELP),
        ]
    )
    assert rita.attempts() == 0


# --- stats and leaderboard ------------------------------------------------------------------------


async def test_stats_before_and_after_answering(rita: Transcript) -> None:
    await rita.play(
        [
            (
                "stats",
                """
                bot> Your week 2026-W49
                     Capability: no answers yet this week
                     Effort: 0 s over 0 answers
                     Agility: no earlier misses came back yet
                     Initiative: median first response —
                """,
            ),
            ("quiz", OB_1),
            ("2", _correct_ob_1(points=15, streak=1, week=15)),
            ("quiz", OB_2),
            ("3", then(_wrong_ob_2(week=16), OBJECTIONS_LESSON)),
            (
                "/stats",
                """
                bot> Your week 2026-W49
                     Capability: 50/100, precision 50% of 2 MCQs
                     Effort: 20 s over 2 answers
                     Agility: no earlier misses came back yet
                     Initiative: median first response 10 s
                """,
            ),
        ]
    )


async def test_stats_show_the_trend_against_last_week(rita: Transcript) -> None:
    await rita.play([("quiz", OB_1), ("1", then(_wrong_ob_1(week=1), OBJECTIONS_LESSON))])
    rita.clock.advance(timedelta(days=7))  # Wednesday of 2026-W50: the missed item comes back
    await rita.play(
        [
            ("quiz", OB_1),
            ("2", _correct_ob_1(points=15, streak=1, week=15)),
            (
                "stats",
                """
                bot> Your week 2026-W50
                     Capability: 100/100, precision 100% of 1 MCQ (▲ +100 vs last week)
                     Effort: 10 s over 1 answer (= last week)
                     Agility: 1 of 1 earlier misses now right (100%)
                     Initiative: median first response 10 s (= last week)
                """,
            ),
        ]
    )


async def test_leaderboard_ranks_the_team_reps_this_week(rita: Transcript) -> None:
    ben = rita.as_rep("ben@example.com")
    await rita.play([("quiz", OB_1), ("1", then(_wrong_ob_1(week=1), OBJECTIONS_LESSON))])
    await ben.play(
        [
            ("quiz", OB_1),
            ("2", _correct_ob_1(points=15, streak=1, week=15)),
            (
                "leaderboard",
                """
                bot> Leaderboard 2026-W49
                     1. Ben Brandt — 15 ← you
                     2. Rita Rossi — 1
                """,
            ),
        ]
    )
    await rita.play(
        [
            (
                "/leaderboard",
                """
                bot> Leaderboard 2026-W49
                     1. Ben Brandt — 15
                     2. Rita Rossi — 1 ← you
                """,
            ),
        ]
    )


# --- log ------------------------------------------------------------------------------------------


async def test_log_activities(rita: Transcript) -> None:
    await rita.play(
        [
            ("log visit 3", "bot> Logged 3 × Doctor visit."),
            (
                "log visits 1 follow-up 2026-12-20 Dr Rao wants the trial summary",
                "bot> Logged 1 × Doctor visit. I'll remind you about the follow-up on 2026-12-20.",
            ),
            ("/log follow-up 2", "bot> Logged 2 × Follow-up done."),
        ]
    )
    rows = rita.read(select(Activity).order_by(col(Activity.id)))
    assert [(a.type_key, a.count, a.follow_up_on, a.note, a.source) for a in rows] == [
        ("visit", 3, None, None, "chat"),
        ("visit", 1, date(2026, 12, 20), "Dr Rao wants the trial summary", "chat"),
        ("follow_up", 2, None, None, "chat"),
    ]
    assert all(a.person_id == rita.person_id() for a in rows)


async def test_log_refuses_unknown_types_and_past_follow_ups(rita: Transcript) -> None:
    before = snapshot(rita.engine)["activity"]
    await rita.play(
        [
            (
                "log unknowntype",
                "bot> I don't know the activity 'unknowntype'. You can log: follow_up, visit.",
            ),
            ("log visit 1 follow-up 2026-12-01", "bot> That follow-up date is in the past."),
            (
                "log visit 1 follow-up someday",
                "bot> Give the follow-up date as YYYY-MM-DD, e.g. `follow-up 2026-12-10`.",
            ),
            (
                "log",
                "bot> Tell me what to log, e.g. `log visit 3` or `log visit 1 follow-up 2026-12-10 Dr Rao`.",
            ),
        ]
    )
    assert snapshot(rita.engine)["activity"] == before == []


# --- pause, resume, settings ----------------------------------------------------------------------


async def test_pause_pause_until_and_resume(rita: Transcript) -> None:
    await rita.play([("pause", "bot> Paused. Send resume when you're back.")])
    assert person_row(rita).paused_until == date.max
    await rita.play([("pause until 2026-12-24", "bot> Paused until 2026-12-24 — enjoy the break!")])
    assert person_row(rita).paused_until == date(2026, 12, 24)
    await rita.play([("resume", "bot> Welcome back! Your daily sessions are on again.")])
    assert person_row(rita).paused_until is None
    await rita.play(
        [
            ("pause until 2026-11-30", "bot> That date is in the past."),
            ("pause until soon", "bot> Use `pause until YYYY-MM-DD`, e.g. `pause until 2026-12-24`."),
        ]
    )
    assert person_row(rita).paused_until is None
    await rita.play([("vacation until 2027-01-04", "bot> Paused until 2027-01-04 — enjoy the break!")])
    assert person_row(rita).paused_until == date(2027, 1, 4)


async def test_settings_show_and_change(rita: Transcript) -> None:
    await rita.play(
        [
            (
                "settings",
                """
                bot> Your settings
                     Time zone: Europe/Berlin
                     Session time: 09:30
                     Days: mon,tue,wed,thu,fri
                     Change with `settings timezone Europe/Berlin` or `settings time 08:30`.
                """,
            ),
            ("settings timezone Europe/London", "bot> Done — your time zone is now Europe/London."),
            ("/settings time 08:15", "bot> Done — your session time is now 08:15."),
            (
                "settings",
                """
                bot> Your settings
                     Time zone: Europe/London
                     Session time: 08:15
                     Days: mon,tue,wed,thu,fri
                     Change with `settings timezone Europe/Berlin` or `settings time 08:30`.
                """,
            ),
        ]
    )
    person = person_row(rita)
    assert (person.timezone, person.session_time) == ("Europe/London", "08:15")


async def test_settings_refuse_a_bad_time_zone(rita: Transcript) -> None:
    before = snapshot(rita.engine)
    await rita.play(
        [
            (
                "settings timezone Mars/Olympus",
                "bot> Unknown time zone — use a name such as Europe/Berlin or America/New_York.",
            ),
            ("settings colour blue", "bot> Use `settings timezone Area/City` or `settings time HH:MM`."),
        ]
    )
    after = snapshot(rita.engine)
    assert after["person"] == before["person"]
    assert after["audit_log"] == before["audit_log"]


async def test_settings_refuse_a_bad_time_in_chat_words(rita: Transcript) -> None:
    """The rep is in a chat, not editing YAML: the reply must not talk about quoting YAML."""
    before = snapshot(rita.engine)["person"]
    reply = await rita.say("settings time 25:00")
    assert "HH:MM" in reply
    assert "YAML" not in reply
    assert snapshot(rita.engine)["person"] == before


# --- who may answer what --------------------------------------------------------------------------


async def test_unknown_person_is_told_to_ask_the_admin_and_nothing_is_written(rita: Transcript) -> None:
    await rita.play([("quiz", OB_1)])
    delivery_id = rita.last_delivery().id
    assert delivery_id is not None
    stranger = console_address("ben@example.com")  # on the roster, but this identity was never bound
    before = snapshot(rita.engine)
    ask_admin = "bot> I don't know you yet — ask your coachbot admin to add you to the roster."
    events: list[InboundEvent] = [
        TextEvent(sender=stranger, key="s1", received_at=rita.clock(), text="quiz"),
        TextEvent(sender=stranger, key="s2", received_at=rita.clock(), text="log visit 3"),
        TextEvent(sender=stranger, key="s3", received_at=rita.clock(), text="I understand"),
        ChoiceEvent(
            sender=stranger, key="s4", received_at=rita.clock(), delivery_id=delivery_id, option_index=1
        ),
    ]
    for event in events:
        assert expected_text(await rita.handle(event)) == ask_admin
    assert snapshot(rita.engine) == before


async def test_an_answer_to_someone_elses_question_is_refused(rita: Transcript) -> None:
    ben = rita.as_rep("ben@example.com")
    await rita.play([("quiz", OB_1)])
    delivery_id = rita.last_delivery().id
    assert delivery_id is not None
    before = snapshot(rita.engine)
    not_yours = "bot> That question was sent to someone else, so I can't take an answer to it from you."
    assert expected_text(await ben.handle(ben.choice(delivery_id, 1))) == not_yours
    assert snapshot(rita.engine) == before
    # Rita's question is still hers to answer.
    await rita.play([("2", _correct_ob_1(points=15, streak=1, week=15))])


async def test_an_answer_to_an_unknown_question_is_refused(rita: Transcript) -> None:
    before = snapshot(rita.engine)
    reply = await rita.handle(rita.choice(999_999, 0))
    assert expected_text(reply) == "bot> I can't find that question. Send quiz for a new one."
    assert snapshot(rita.engine) == before


async def test_an_expired_question_is_refused(rita: Transcript) -> None:
    await rita.play([("quiz", OB_1)])
    rita.clock.advance(EXPIRE_AFTER)
    before = snapshot(rita.engine)
    await rita.play([("2", "bot> That question has expired. Send quiz for a fresh one.")])
    assert snapshot(rita.engine) == before


# --- replays and duplicates -----------------------------------------------------------------------


async def test_a_replayed_pick_is_recorded_once_and_silent(rita: Transcript) -> None:
    await rita.play([("quiz", OB_1)])
    delivery_id = rita.last_delivery().id
    assert delivery_id is not None
    pick = rita.choice(delivery_id, 1)
    assert expected_text(await rita.handle(pick)) == expected_text(
        _correct_ob_1(points=15, streak=1, week=15)
    )
    before = snapshot(rita.engine)
    assert await rita.handle(pick) == ""
    assert snapshot(rita.engine) == before
    assert rita.attempts() == 1


async def test_a_replayed_log_command_is_recorded_once_and_silent(rita: Transcript) -> None:
    command = rita.event("log visit 2")
    assert expected_text(await rita.handle(command)) == "bot> Logged 2 × Doctor visit."
    before = snapshot(rita.engine)
    assert await rita.handle(command) == ""
    assert snapshot(rita.engine) == before
    assert len(rita.read(select(Activity))) == 1


async def test_a_replayed_quiz_command_sends_nothing_more(rita: Transcript) -> None:
    command = rita.event("quiz")
    assert expected_text(await rita.handle(command)) == expected_text(OB_1)
    before = snapshot(rita.engine)
    assert await rita.handle(command) == ""
    assert snapshot(rita.engine) == before


async def test_a_replayed_roleplay_answer_is_recorded_once_and_silent(rita: Transcript) -> None:
    await rita.start_item("ob-rp")
    answer = rita.event("I understand, and the trial data is clear.")
    first = await rita.handle(answer)
    assert first.startswith("bot> Score 100/100\n")
    before = snapshot(rita.engine)
    assert await rita.handle(answer) == ""
    assert snapshot(rita.engine) == before
    assert rita.attempts() == 1


async def test_concurrent_duplicates_record_one_attempt(rita: Transcript) -> None:
    await rita.play([("quiz", OB_1)])
    delivery_id = rita.last_delivery().id
    assert delivery_id is not None
    pick = rita.choice(delivery_id, 1)
    before = len(rita.out.getvalue())
    await asyncio.gather(*(rita.coach.handle(pick) for _ in range(5)))
    assert rita.attempts() == 1
    (attempt,) = attempts_of(rita)
    assert attempt.idempotency_key == pick.key
    (progress,) = rita.read(select(PersonProgress))
    assert progress.points_total == 15
    assert expected_text(rita.out.getvalue()[before:]) == expected_text(
        _correct_ob_1(points=15, streak=1, week=15)
    )


async def test_concurrent_different_picks_score_once(rita: Transcript) -> None:
    """Two different presses at once (two devices): one scores, the other is told it is answered."""
    await rita.play([("quiz", OB_1)])
    delivery_id = rita.last_delivery().id
    assert delivery_id is not None
    picks = [rita.choice(delivery_id, 1), rita.choice(delivery_id, 0)]
    before = len(rita.out.getvalue())
    await asyncio.gather(*(rita.coach.handle(pick) for pick in picks))
    assert rita.attempts() == 1
    (attempt,) = attempts_of(rita)
    said = rita.out.getvalue()[before:]
    assert said.count(ALREADY_ANSWERED) == 1
    assert said.count("✅ Correct!") == (1 if attempt.correct else 0)
    assert said.count("❌ Not quite") == (0 if attempt.correct else 1)


# --- timing and what one answer writes ------------------------------------------------------------


async def test_timing_is_stored_with_the_attempt_and_idle_time_is_capped(rita: Transcript) -> None:
    await rita.play([("quiz", OB_1)])
    sent_at = rita.last_delivery().sent_at
    assert sent_at == rita.clock()
    rita.clock.advance(timedelta(hours=1))  # the rep left the question open for an hour
    await rita.play(
        [
            (
                "2",
                """
                bot> ✅ Correct!
                     Knowing the comparison tells you which data to bring.
                     +10 points · 1-day streak · 10 points this week
                """,
            ),
        ]
    )
    (attempt,) = attempts_of(rita)
    assert attempt.sent_at == sent_at
    assert attempt.answered_at == sent_at + timedelta(hours=1, seconds=10)
    assert attempt.response_ms == 3_610_000
    assert attempt.first_response_ms == 3_610_000
    assert attempt.time_spent_ms == 3 * 30 * 1000  # capped at 3 x target_seconds
    assert attempt.rating == Rating.Hard  # right, but slower than the target time


async def test_quick_answer_time_spent_is_the_response_time(rita: Transcript) -> None:
    await rita.play([("quiz", OB_1), ("2", _correct_ob_1(points=15, streak=1, week=15))])
    (attempt,) = attempts_of(rita)
    assert attempt.answered_at - attempt.sent_at == timedelta(seconds=10)
    assert (attempt.response_ms, attempt.time_spent_ms, attempt.first_response_ms) == (10_000, 10_000, 10_000)


async def test_an_answer_writes_attempt_card_and_delivery_together(rita: Transcript) -> None:
    await rita.play([("quiz", OB_1), ("2", _correct_ob_1(points=15, streak=1, week=15))])
    (attempt,) = attempts_of(rita)
    delivery = rita.last_delivery()
    assert delivery.status == DeliveryStatus.ANSWERED
    assert attempt.delivery_id == delivery.id
    (card,) = rita.read(select(MemoryCard).where(MemoryCard.person_id == rita.person_id()))
    assert card.item_id == delivery.item_id
    assert (card.last_rating, card.reviews, card.lapses) == (Rating.Good, 1, 0)
    assert card.last_review_at == attempt.answered_at
    assert card.due_at > attempt.answered_at
    # The card is exactly what the fsrs scheduler (fuzzing off) makes of one Good review of a new card.
    assert card.id is not None
    expected = memory.review(
        memory.make_scheduler(fuzzing=False),
        memory.new_card_state(card.id, attempt.answered_at),
        Rating.Good,
        attempt.answered_at,
    )
    assert card.state == expected.state
    assert card.due_at == expected.due
    (progress,) = rita.read(select(PersonProgress))
    assert (progress.points_total, progress.week_points, progress.streak_days) == (15, 15, 1)
    assert progress.last_answer_date == date(2026, 12, 2)


async def test_a_refused_answer_writes_no_card(rita: Transcript) -> None:
    await rita.play([("quiz", OB_1)])
    rita.clock.advance(EXPIRE_AFTER)
    await rita.say("2")
    assert rita.read(select(MemoryCard)) == []
    assert [d.status for d in rita.read(select(Delivery))] == [DeliveryStatus.SENT]


async def test_a_roleplay_answer_that_starts_with_a_command_word_is_graded(rita: Transcript) -> None:
    """A reply like "Help me understand…" is natural with a doctor; it is not a request for help."""
    assert expected_text(await rita.start_item("ob-rp")) == expected_text(OB_RP)
    await rita.play(
        [
            (
                "Help me understand what you compare the cost with.",
                """
                bot> Score 50/100
                     ✓ Acknowledges the concern
                     ✗ Brings outcome data
                     Model answer: I understand. The trial data shows fewer hospital stays, which saves money.
                     +6 points · 1-day streak · 6 points this week
                """,
            ),
        ]
    )
    assert rita.attempts() == 1


async def test_a_number_out_of_range_in_the_console_asks_for_a_valid_pick(rita: Transcript) -> None:
    before = snapshot(rita.engine)["attempt"]
    await rita.play(
        [
            ("quiz", OB_1),
            ("4", "bot> Pick a number from 1 to 3."),
            ("2", _correct_ob_1(points=15, streak=1, week=15)),
        ]
    )
    assert before == []
    assert rita.attempts() == 1


async def test_bad_picks_from_a_platform_are_refused_and_change_nothing(rita: Transcript) -> None:
    await rita.play([("quiz", OB_1)])
    mcq = rita.last_delivery().id
    assert expected_text(await rita.start_item("ob-rp")) == expected_text(OB_RP)
    roleplay = rita.last_delivery().id
    assert mcq is not None
    assert roleplay is not None
    before = snapshot(rita.engine)
    assert expected_text(await rita.handle(rita.choice(mcq, 3))) == "bot> Pick a number from 1 to 3."
    assert expected_text(await rita.handle(rita.choice(roleplay, 0))) == (
        "bot> That one is a role-play: reply in your own words."
    )
    assert snapshot(rita.engine) == before


# --- a number typed on Slack or Telegram instead of pressing its button ------------------------------


@pytest.mark.parametrize("typed", ["2", " 2 ", "2)", "2.", "#2"])
async def test_a_number_typed_on_a_platform_picks_that_option(rita: Transcript, typed: str) -> None:
    await rita.play(
        [("quiz", OB_1), (typed, _correct_ob_1(points=15, streak=1, week=15))], typed_on_a_platform=True
    )
    (attempt,) = attempts_of(rita)
    assert (attempt.choice_index, attempt.correct) == (1, True)


async def test_a_typed_number_answers_the_newest_open_question(rita: Transcript) -> None:
    """Two questions open (a session's and a previewed one): the number answers the one sent last."""
    assert expected_text(await rita.start_item("ob-1")) == expected_text(OB_1)
    assert expected_text(await rita.start_item("ob-2")) == expected_text(OB_2)
    await rita.play(
        [
            ("1", _correct_ob_2(points=15, streak=1, week=15)),
            ("2", _correct_ob_1(points=15, streak=1, week=30)),
            ("2", ALREADY_ANSWERED),
        ],
        typed_on_a_platform=True,
    )


async def test_a_typed_number_in_reply_to_a_question_answers_that_one(rita: Transcript) -> None:
    assert expected_text(await rita.start_item("ob-1")) == expected_text(OB_1)
    first = rita.last_delivery().id
    assert expected_text(await rita.start_item("ob-2")) == expected_text(OB_2)
    reply = rita.text("2", reply_to=first)
    correct = _correct_ob_1(points=15, streak=1, week=15)
    assert expected_text(await rita.handle(reply)) == expected_text(correct)
    (attempt,) = attempts_of(rita)
    assert attempt.delivery_id == first


async def test_a_typed_number_is_never_a_roleplay_answer(rita: Transcript) -> None:
    """With an MCQ and a role-play open the number goes to the MCQ; with only role-plays, nowhere."""
    assert expected_text(await rita.start_item("ob-1")) == expected_text(OB_1)
    assert expected_text(await rita.start_item("ob-rp")) == expected_text(OB_RP)
    await rita.play([("2", _correct_ob_1(points=15, streak=1, week=15))], typed_on_a_platform=True)
    before = snapshot(rita.engine)
    await rita.play([("2", ROLEPLAY_NEEDS_WORDS)], typed_on_a_platform=True)
    assert expected_text(await rita.start_item("co-rp")) == expected_text(CO_RP)
    await rita.play(
        [
            (
                "1",
                WHICH_ROLEPLAY,
            )
        ],
        typed_on_a_platform=True,
    )
    roleplay = rita.deliveries()[1].id
    assert roleplay is not None
    assert expected_text(await rita.handle(rita.text("1", reply_to=roleplay))) == ROLEPLAY_NEEDS_WORDS
    after = snapshot(rita.engine)
    assert after["attempt"] == before["attempt"]
    assert rita.attempts() == 1


async def test_a_typed_number_out_of_range_asks_for_a_valid_pick(rita: Transcript) -> None:
    await rita.play(
        [
            ("quiz", OB_1),
            ("4", "bot> Pick a number from 1 to 3."),
            ("0", "bot> Pick a number from 1 to 3."),
            ("2", _correct_ob_1(points=15, streak=1, week=15)),
        ],
        typed_on_a_platform=True,
    )
    assert rita.attempts() == 1


async def test_a_replayed_typed_number_is_silent_and_answers_nothing_else(rita: Transcript) -> None:
    """Recorded once; the replay must not answer the question that is now the newest open one."""
    assert expected_text(await rita.start_item("ob-1")) == expected_text(OB_1)
    assert expected_text(await rita.start_item("ob-2")) == expected_text(OB_2)
    typed = rita.text("1")
    correct = _correct_ob_2(points=15, streak=1, week=15)
    assert expected_text(await rita.handle(typed)) == expected_text(correct)
    before = snapshot(rita.engine)
    assert await rita.handle(typed) == ""
    assert snapshot(rita.engine) == before
    assert rita.attempts() == 1


async def test_a_manager_whose_team_has_no_active_reps_is_told_so(db: Database) -> None:
    load_content(db.engine)
    with write_session(db.engine) as session:
        for rep in session.exec(select(Person).where(Person.role == "rep")):
            rep.active = False
    mia = Transcript.start(db.engine, "mia@example.com")
    await mia.play([("leaderboard", "bot> No team leaderboard yet — your team has no reps.")])


async def test_an_admin_without_a_team(db: Database) -> None:
    load_content(db.engine)
    ada = Transcript.start(db.engine, "ada@example.com")
    await ada.play(
        [
            ("quiz", "bot> There's nothing to practise right now — your team has no content yet."),
            ("leaderboard", "bot> No team leaderboard yet — you're not on a team."),
            ("log visit 1", "bot> Logged 1 × Doctor visit."),
        ]
    )


class BrokenGrader:
    """A grader with a bug in it."""

    async def grade(self, task: RoleplayTask, answer: str) -> Grade:
        raise RuntimeError("grader bug")


async def test_a_failure_on_our_side_gets_an_apology_and_stores_nothing(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    load_content(db.engine)
    rita = Transcript.start(db.engine, "rita@example.com", grader=BrokenGrader())
    await rita.start_item("ob-rp")
    await rita.play(
        [
            (
                "I understand, what do you compare it with?",
                "bot> Sorry — something went wrong on my side. Please try that again in a minute.",
            )
        ]
    )
    assert "failed to handle TextEvent" in caplog.text
    assert attempts_of(rita) == []


# --- admin files ------------------------------------------------------------------------------------


def file_event(
    t: Transcript, filename: str, content: bytes, caption: str = "", key: str | None = None
) -> FileEvent:
    return FileEvent(
        sender=t.address,
        key=key or t.next_key(),
        received_at=t.clock(),
        filename=filename,
        content=content,
        caption=caption,
    )


async def test_an_admin_loads_a_pack_by_sending_the_file(db: Database) -> None:
    load_content(db.engine)
    ada = Transcript.start(db.engine, "ada@example.com")
    pack = (DATA / "mini-pack.yaml").read_bytes()
    event = file_event(ada, "mini-pack.yaml", pack)
    await ada.coach.handle(event)
    assert ada.out.getvalue().endswith("bot> mini: new: 2 added, 0 changed (new revision), 0 retired\n")
    before = snapshot(db.engine)
    await ada.coach.handle(event)  # a replay: silent, writes nothing
    assert snapshot(db.engine) == before
    await ada.coach.handle(file_event(ada, "mini-pack.yaml", pack))  # the same file, sent again
    assert ada.out.getvalue().endswith("bot> mini: unchanged\n")
    after = snapshot(db.engine)
    assert {k: v for k, v in after.items() if k != "processed_update"} == {
        k: v for k, v in before.items() if k != "processed_update"
    }
    with read_session(db.engine) as session:
        audit = session.exec(select(AuditLog).where(AuditLog.action == "pack.load")).all()
    assert [a.actor for a in audit][-1] == "console:ada@example.com"


async def test_a_broken_pack_file_lists_its_problems_and_loads_nothing(db: Database) -> None:
    load_content(db.engine)
    ada = Transcript.start(db.engine, "ada@example.com")
    broken = (
        (DATA / "mini-pack.yaml").read_text().replace("answer: 1", "answer: 7").replace("prompt:", "promt:")
    )
    before = snapshot(db.engine)
    await ada.coach.handle(file_event(ada, "mini.yaml", broken.encode(), caption="pack"))
    said = ada.out.getvalue()
    line = next(n for n, text in enumerate(broken.splitlines(), start=1) if "promt:" in text)
    assert "mini.yaml was not loaded — 3 problem(s):" in said
    assert f"mini.yaml:{line}:5: items[0]: unknown key 'promt' (did you mean 'prompt'?)" in said
    assert "answer 7 is out of range: options are numbered 0 to 2" in said
    assert snapshot(db.engine) == before


async def test_an_admin_reloads_the_roster_by_sending_it(db: Database) -> None:
    load_content(db.engine)
    ada = Transcript.start(db.engine, "ada@example.com")
    roster = (DATA / "coach-roster.yaml").read_text()
    without_ben = "\n".join(line for line in roster.splitlines() if "ben@example.com" not in line) + "\n"
    await ada.coach.handle(file_event(ada, "roster.yaml", without_ben.encode()))
    assert ada.out.getvalue().endswith("bot> Roster loaded: 1 deactivated.\n")


async def test_a_rep_cannot_load_files_and_the_refusal_is_audited(rita: Transcript) -> None:
    before_files = rita.read(select(AuditLog))
    await rita.coach.handle(file_event(rita, "mini-pack.yaml", (DATA / "mini-pack.yaml").read_bytes()))
    assert rita.out.getvalue().endswith("bot> Sorry, only an admin can do that here. Your admin can help.\n")
    refusals = [a for a in rita.read(select(AuditLog)) if a not in before_files]
    assert [(a.action, a.actor, a.details["wanted"]) for a in refusals] == [
        ("refused", "console:rita@example.com", "load a file")
    ]
    with read_session(rita.engine) as session:
        assert session.exec(select(Pack).where(Pack.key == "mini")).first() is None
