"""Rep metrics for one week: Capability, Effort, Agility and Initiative.

* Capability: skill score (mean of MCQ correctness as 0/100 and role-play scores) and precision (share of
  MCQs answered correctly).
* Effort: time spent (each item capped at 3x its target time, so an idle hour is not effort) and attempts.
* Agility: the learning curve, as the share of items missed last time that the rep now gets right.
* Initiative: median first response time, from a question being sent to the rep's answer.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from storage.learning import AttemptFacts

PASS_SCORE = 70.0


@dataclass(frozen=True)
class RepWeek:
    attempts: int
    mcq_answered: int
    mcq_correct: int
    skill: float | None
    precision: float | None
    time_spent_seconds: float
    recovered: int
    after_miss: int
    median_first_response_seconds: float | None

    @property
    def agility(self) -> float | None:
        return self.recovered / self.after_miss if self.after_miss else None


def _succeeded(fact: AttemptFacts) -> bool:
    if fact.kind == "mcq":
        return bool(fact.correct)
    return (fact.score or 0.0) >= PASS_SCORE


def summarize(facts: Sequence[AttemptFacts]) -> RepWeek:
    mcqs = [f for f in facts if f.kind == "mcq"]
    correct = sum(1 for f in mcqs if f.correct)
    scores = [100.0 if f.correct else 0.0 for f in mcqs] + [f.score or 0.0 for f in facts if f.kind != "mcq"]
    retries = [f for f in facts if f.after_miss]
    first_responses = [f.first_response_ms / 1000 for f in facts if f.first_response_ms is not None]
    return RepWeek(
        attempts=len(facts),
        mcq_answered=len(mcqs),
        mcq_correct=correct,
        skill=statistics.fmean(scores) if scores else None,
        precision=correct / len(mcqs) if mcqs else None,
        time_spent_seconds=sum(f.time_spent_ms for f in facts) / 1000,
        recovered=sum(1 for f in retries if _succeeded(f)),
        after_miss=len(retries),
        median_first_response_seconds=statistics.median(first_responses) if first_responses else None,
    )


def week_start(local_day: date) -> date:
    return local_day - timedelta(days=local_day.weekday())


def week_key(local_day: date) -> str:
    year, week, _ = local_day.isocalendar()
    return f"{year}-W{week:02d}"


def week_bounds(local_day: date, timezone: str) -> tuple[datetime, datetime]:
    """Monday 00:00 to the next Monday 00:00 in the rep's time zone, as aware datetimes."""
    start = datetime.combine(week_start(local_day), time(), tzinfo=ZoneInfo(timezone))
    return start, start + timedelta(days=7)
