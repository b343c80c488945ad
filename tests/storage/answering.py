"""A question sent to Rita (test pack and roster), for storage tests of the answer path."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import Engine

from content.loading import load_packs, load_roster
from storage import learning
from storage.db import write_session
from storage.models import DeliveryKind, Platform
from tests.conftest import DATA

EMAIL = "rita@example.com"
SESSION_DATE = date(2026, 12, 2)  # a Wednesday
SENT_AT = datetime(2026, 12, 2, 8, 0, 0, 123456, tzinfo=UTC)
# Not UTC on purpose: the bind processors must store the same instant, and it must come back as UTC.
IST = timezone(timedelta(hours=5, minutes=30))
ANSWERED_AT = datetime(2026, 12, 2, 13, 30, 7, 654321, tzinfo=IST)


@dataclass(frozen=True)
class Question:
    """A question delivery that went out to Rita (test roster) for an item of the ``coach`` test pack."""

    person_id: int
    item_id: int
    revision_id: int
    topic_id: int
    delivery_id: int
    sent_at: datetime


def sent_question(engine: Engine, *, item_key: str = "ob-1") -> Question:
    """Load the test pack and roster, bind Rita's console identity and send her one question."""
    load_packs(engine, [DATA / "coach-pack.yaml"], actor="test")
    load_roster(engine, DATA / "coach-roster.yaml", actor="test")
    with write_session(engine) as session:
        person = learning.person_by_email(session, email=EMAIL)
        candidate = learning.candidate_by_key(session, pack_key="coach", item_key=item_key)
        assert person is not None
        assert candidate is not None
        learning.bind_identity(
            session, person_id=person.id, platform=Platform.CONSOLE, workspace="", user_id=EMAIL
        )
        delivery = learning.create_delivery(
            session,
            person_id=person.id,
            kind=DeliveryKind.QUESTION,
            local_date=SESSION_DATE,
            scheduled_at=SENT_AT,
            item_id=candidate.item_id,
            revision_id=candidate.revision_id,
            topic_id=candidate.topic_id,
        )
        assert delivery.id is not None
        learning.mark_sent(session, delivery_id=delivery.id, message_ref="console:1", sent_at=SENT_AT)
    return Question(
        person_id=person.id,
        item_id=candidate.item_id,
        revision_id=candidate.revision_id,
        topic_id=candidate.topic_id,
        delivery_id=delivery.id,
        sent_at=SENT_AT,
    )
