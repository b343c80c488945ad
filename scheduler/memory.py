"""The memory model: FSRS through the ``fsrs`` package. Pure: no I/O, no clock of its own.

coachbot is a once-a-day coach, so the scheduler has no learning or relearning steps. fsrs defaults to
steps of 1 and 10 minutes, which would re-ask a missed question within the hour; with empty steps a new or
lapsed card goes straight to the Review state and comes back after at least a day.

Ratings:

* MCQ: wrong → Again; right but slower than the item's ``target_seconds`` → Hard; right → Good.
* Role-play score (0–100): below 50 → Again; 50–69 → Hard; 70–89 → Good; 90 and up → Easy.
  A compliance flag caps the score (see the rubric grader), so a flagged answer is never rated Easy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fsrs import Card, Rating, Scheduler, State

ROLEPLAY_BANDS = ((90.0, Rating.Easy), (70.0, Rating.Good), (50.0, Rating.Hard))


def make_scheduler(*, fuzzing: bool = True, desired_retention: float = 0.9) -> Scheduler:
    return Scheduler(
        desired_retention=desired_retention,
        learning_steps=(),
        relearning_steps=(),
        enable_fuzzing=fuzzing,
    )


def as_utc(moment: datetime) -> datetime:
    """fsrs accepts only ``datetime.timezone.utc``; zoneinfo's UTC or an offset of zero is refused."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: give an aware time")
    return moment.astimezone(UTC)


def rate_mcq(*, correct: bool, response_seconds: float, target_seconds: float) -> Rating:
    if not correct:
        return Rating.Again
    return Rating.Hard if response_seconds > target_seconds else Rating.Good


def rate_roleplay(score: float) -> Rating:
    for threshold, rating in ROLEPLAY_BANDS:
        if score >= threshold:
            return rating
    return Rating.Again


@dataclass(frozen=True)
class Review:
    state: dict[str, Any]
    due: datetime
    lapsed: bool


def new_card_state(card_id: int, now: datetime) -> dict[str, Any]:
    return dict(Card(card_id=card_id, due=as_utc(now)).to_dict())


def review(scheduler: Scheduler, state: dict[str, Any], rating: Rating, reviewed_at: datetime) -> Review:
    """Apply one review; returns the new card state (as stored) and when the card is next due."""
    card = Card.from_dict(state)  # type: ignore[arg-type]
    was_reviewed = card.state != State.Learning or card.last_review is not None
    updated, _log = scheduler.review_card(card, rating, review_datetime=as_utc(reviewed_at))
    return Review(
        state=dict(updated.to_dict()),
        due=updated.due,
        lapsed=was_reviewed and rating == Rating.Again,
    )


def predicted_recall(scheduler: Scheduler, state: dict[str, Any], at: datetime) -> float:
    """Probability the rep recalls this item at ``at`` (0 for an item never reviewed)."""
    card = Card.from_dict(state)  # type: ignore[arg-type]
    return float(scheduler.get_card_retrievability(card, current_datetime=as_utc(at)))
