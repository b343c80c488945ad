"""Which item a rep practises next: due reviews first, then new items from their weakest topics."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime

from storage.learning import Candidate

AGAIN = 1


def topic_weakness(candidates: Sequence[Candidate]) -> dict[str, float]:
    """Share of a topic's reviewed items whose last rating was Again (0 when none reviewed)."""
    reviewed: dict[str, int] = defaultdict(int)
    missed: dict[str, int] = defaultdict(int)
    for candidate in candidates:
        if candidate.last_rating is not None:
            reviewed[candidate.topic_key] += 1
            missed[candidate.topic_key] += candidate.last_rating == AGAIN
    return {topic: missed[topic] / count for topic, count in reviewed.items()}


def choose_next(
    candidates: Sequence[Candidate],
    *,
    now: datetime,
    exclude_item_ids: Collection[int] = (),
    topic_key: str | None = None,
    prefer_kind: str | None = None,
) -> Candidate | None:
    """Deterministic: the most overdue review; else a new item, weakest topic first; else the next review.

    ``prefer_kind`` breaks ties among new items of equally weak topics, so a session mixes role-plays with
    quiz questions instead of exhausting one kind first.
    """
    pool = [
        c
        for c in candidates
        if c.item_id not in exclude_item_ids and (topic_key is None or c.topic_key == topic_key)
    ]
    seen = [c for c in pool if c.card_state]
    due = sorted(
        (c for c in seen if c.due_at is not None and c.due_at <= now), key=lambda c: (c.due_at, c.item_id)
    )
    if due:
        return due[0]
    weakness = topic_weakness(candidates)
    order = {c.topic_key: i for i, c in reversed(list(enumerate(candidates)))}
    fresh = sorted(
        (c for c in pool if not c.card_state),
        key=lambda c: (-weakness.get(c.topic_key, 0.0), c.kind != prefer_kind, order[c.topic_key], c.item_id),
    )
    if fresh:
        return fresh[0]
    ahead = sorted((c for c in seen if c.due_at is not None), key=lambda c: (c.due_at, c.item_id))
    return ahead[0] if ahead else None
