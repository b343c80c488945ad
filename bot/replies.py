"""What the bot says: every reply text in one place, so transcripts stay consistent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from content.grading import Grade
from insights.metrics import RepWeek
from scheduler.messages import Message, Span, bold, message

HELP = message(
    bold("coachbot"),
    " — practise in a few minutes a day.\n",
    "• quiz [topic] — the next question now (also: practice)\n",
    "• stats — your Capability, Effort, Agility and Initiative this week\n",
    "• leaderboard — your team's points this week\n",
    "• log TYPE [COUNT] [follow-up YYYY-MM-DD] [note] — log sales activity\n",
    "• pause [until YYYY-MM-DD] / resume — holidays\n",
    "• settings [timezone Area/City | time HH:MM] — your session time\n",
    "Answer a question with its number; answer a role-play in your own words.",
)
SHORT_HELP = message(
    "I didn't catch that. Send ", bold("quiz"), " for a question or ", bold("help"), " for commands."
)
UNKNOWN_PERSON = message("I don't know you yet — ask your coachbot admin to add you to the roster.")
INACTIVE_PERSON = message("Your coachbot access is switched off — ask your admin if that's a mistake.")
UNKNOWN_QUESTION = message("I can't find that question. Send ", bold("quiz"), " for a new one.")
NOT_YOURS = message("That question was sent to someone else, so I can't take an answer to it from you.")
ALREADY_ANSWERED = message("You've already answered that one. Send ", bold("quiz"), " for the next question.")
EXPIRED = message("That question has expired. Send ", bold("quiz"), " for a fresh one.")
OUR_FAULT = message("Sorry — something went wrong on my side. Please try that again in a minute.")
NOTHING_TO_PRACTISE = message("There's nothing to practise right now — your team has no content yet.")
PICK_ON_THE_QUESTION = message(
    "I can't tell which question that number is for: press its button, or reply to the question's"
    " latest message."
)
ROLEPLAY_NEEDS_WORDS = message("That one is a role-play: reply in your own words.")
NO_MORE_TODAY = message("You've practised everything available for now. Great work — come back tomorrow!")


def refused(role: str) -> Message:
    return message(f"Sorry, only an {role} can do that here. Your admin can help.")


def file_problems(filename: str, problems: Sequence[str], limit: int = 10) -> Message:
    shown = "\n".join(problems[:limit])
    more = f"\n… and {len(problems) - limit} more" if len(problems) > limit else ""
    return message(bold(f"{filename} was not loaded"), f" — {len(problems)} problem(s):\n", shown, more)


def question_text(body: dict[str, Any]) -> Message:
    if body["type"] == "mcq":
        options = "\n".join(f"{i}) {option}" for i, option in enumerate(body["options"], start=1))
        return message(bold("Question"), "\n", body["prompt"], "\n\n", options)
    return message(
        bold("Role-play"),
        "\n",
        body["scenario"],
        "\n\nReply with what you would say.",
    )


def answered_question(body: dict[str, Any], picked: int | None, correct: bool | None) -> Message:
    base = question_text(body)
    if picked is None:
        return Message((*base.spans, Span("\n\n✔ Answered.")))
    verdict = "correct" if correct else "not quite"
    return Message((*base.spans, Span(f"\n\nYou answered {picked + 1} — {verdict}.")))


def progress_line(points: int, streak: int, week_points: int) -> str:
    return f"+{_count(points, 'point')} · {streak}-day streak · {_count(week_points, 'point')} this week"


def mcq_feedback(body: dict[str, Any], picked: int, *, points: int, streak: int, week_points: int) -> Message:
    answer = int(body["answer"])
    right = picked == answer
    head = "✅ Correct!" if right else f"❌ Not quite — the answer is {answer + 1}) {body['options'][answer]}"
    return message(bold(head), "\n", body["explanation"], "\n", progress_line(points, streak, week_points))


def roleplay_feedback(
    grade: Grade, model_answer: str, *, points: int, streak: int, week_points: int
) -> Message:
    parts: list[str | Span] = [bold(f"Score {grade.score:.0f}/100"), "\n"]
    for point in grade.points:
        parts.append(f"{'✓' if point.hit else '✗'} {point.point}\n")
    for flag in grade.flags:
        parts += [bold("⚠ Compliance: "), f"“{flag.phrase}” — {flag.reason}\n"]
    parts += [bold("Model answer: "), model_answer, "\n", progress_line(points, streak, week_points)]
    return message(*parts)


def reflow(text: str) -> str:
    """Join the hard-wrapped lines of a YAML block into paragraphs; chat clients wrap by themselves."""
    paragraphs = [" ".join(block.split()) for block in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def lesson(topic_name: str, text: str) -> Message:
    return message(bold(f"📘 Quick lesson — {topic_name}"), "\n", reflow(text))


def answer_too_long(length: int, limit: int) -> Message:
    return message(
        f"That answer is {length:,} characters long; I grade up to {limit:,}."
        " Please shorten it and send it again."
    )


def which_roleplay(numbered: Sequence[tuple[int, str]]) -> Message:
    """The open role-plays by number (numbers need not start at 1: they stay put as others are answered)."""
    lines = "\n".join(f"{number}) {_excerpt(scenario)}" for number, scenario in numbered)
    return message(
        f"You have {len(numbered)} open role-plays:\n",
        lines,
        "\nStart your answer with its number, e.g. ",
        bold(f"{numbered[0][0]}: I understand your concern…"),
    )


def _excerpt(text: str, limit: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _trend(now: float | None, before: float | None, unit: str = "", *, lower_is_better: bool = False) -> str:
    if now is None or before is None:
        return ""
    delta = now - before
    if abs(delta) < 0.5:
        return " (= last week)"
    up = delta > 0
    arrow = "▲" if up != lower_is_better else "▼"
    return f" ({arrow} {'+' if up else '−'}{abs(delta):.0f}{unit} vs last week)"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def stats(week_label: str, this: RepWeek, last_week: RepWeek) -> Message:
    last = last_week if last_week.attempts else _NO_WEEK
    if this.attempts == 0:
        skill = "no answers yet this week"
    else:
        precision = (
            f"precision {this.precision:.0%} of {_count(this.mcq_answered, 'MCQ')}"
            if this.precision is not None
            else "no MCQs yet"
        )
        skill = f"{this.skill or 0:.0f}/100, {precision}{_trend(this.skill, last.skill)}"
    effort = f"{_duration(this.time_spent_seconds)} over {_count(this.attempts, 'answer')}"
    if last.attempts:
        effort += _trend(this.time_spent_seconds / 60, last.time_spent_seconds / 60, " min")
    agility = (
        f"{this.recovered} of {this.after_miss} earlier misses now right ({this.agility:.0%})"
        if this.agility is not None
        else "no earlier misses came back yet"
    )
    initiative = f"median first response {_duration(this.median_first_response_seconds)}"
    initiative_minutes = (
        this.median_first_response_seconds / 60 if this.median_first_response_seconds is not None else None
    )
    last_minutes = (
        last.median_first_response_seconds / 60 if last.median_first_response_seconds is not None else None
    )
    initiative += _trend(initiative_minutes, last_minutes, " min", lower_is_better=True)
    return message(
        bold(f"Your week {week_label}"),
        "\n",
        bold("Capability: "),
        skill,
        "\n",
        bold("Effort: "),
        effort,
        "\n",
        bold("Agility: "),
        agility,
        "\n",
        bold("Initiative: "),
        initiative,
    )


_NO_WEEK = RepWeek(
    attempts=0,
    mcq_answered=0,
    mcq_correct=0,
    skill=None,
    precision=None,
    time_spent_seconds=0.0,
    recovered=0,
    after_miss=0,
    median_first_response_seconds=None,
)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def leaderboard(week_label: str, rows: Sequence[tuple[int, str, int]], me: int, *, on_team: bool) -> Message:
    if not rows:
        if on_team:
            return message("No team leaderboard yet — your team has no reps.")
        return message("No team leaderboard yet — you're not on a team.")
    lines = []
    for rank, (person_id, name, points) in enumerate(rows, start=1):
        marker = " ← you" if person_id == me else ""
        if rank <= 10 or person_id == me:
            lines.append(f"{rank}. {name} — {points}{marker}")
    return message(bold(f"Leaderboard {week_label}"), "\n", "\n".join(lines))
