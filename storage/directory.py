"""Directory repository: chat identities found by email, DM channels, and inbound event claims.

Synchronous, keyword-only functions on a caller's :class:`~sqlmodel.Session`, like the rest of ``storage``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import Session, col, select

from storage import learning
from storage.models import ChatIdentity, Delivery, Person


@dataclass(frozen=True)
class Unbound:
    """An active roster person with no identity on a platform yet (to be found by email)."""

    id: int
    email: str
    name: str


def set_dm_channel(session: Session, *, platform: str, workspace: str, user_id: str, channel: str) -> bool:
    """Remember the bot's DM channel with this identity; False if there is no such identity."""
    identity = learning.identity_by_platform_id(
        session, platform=platform, workspace=workspace, user_id=user_id
    )
    if identity is None:
        return False
    if identity.dm_channel != channel:
        identity.dm_channel = channel
        session.add(identity)
    return True


def dm_channel(session: Session, *, platform: str, workspace: str, user_id: str) -> str | None:
    return session.exec(
        select(ChatIdentity.dm_channel).where(
            ChatIdentity.platform == platform,
            ChatIdentity.workspace == workspace,
            ChatIdentity.user_id == user_id,
        )
    ).first()


def people_without_identity(session: Session, *, platform: str) -> list[Unbound]:
    """Active people with no identity on ``platform``, by email."""
    bound = select(ChatIdentity.person_id).where(ChatIdentity.platform == platform)
    rows = session.exec(
        select(Person.id, Person.email, Person.name)
        .where(col(Person.active).is_(True), col(Person.id).not_in(bound))
        .order_by(col(Person.email))
    ).all()
    return [Unbound(id=person_id, email=email, name=name) for person_id, email, name in rows if person_id]


def bind_identity_by_email(
    session: Session, *, email: str, platform: str, workspace: str, user_id: str
) -> bool:
    """Bind a platform id to the roster person with this email; False if no active person has it, or the
    person or the platform id is bound already."""
    person = learning.person_by_email(session, email=email)
    if person is None or not person.active:
        return False
    clash = session.exec(
        select(ChatIdentity.id).where(
            (col(ChatIdentity.person_id) == person.id) & (ChatIdentity.platform == platform)
            | (ChatIdentity.platform == platform)
            & (ChatIdentity.workspace == workspace)
            & (ChatIdentity.user_id == user_id)
        )
    ).first()
    if clash is not None:
        return False
    session.add(ChatIdentity(person_id=person.id, platform=platform, workspace=workspace, user_id=user_id))
    session.flush()
    return True


class Claim(StrEnum):
    FRESH = "fresh"
    """A known person's event, seen for the first time: process it."""
    REPLAY = "replay"
    """Seen before (a platform retry, a repeated click): change nothing."""
    UNKNOWN = "unknown"
    """Nobody is bound to this platform id: nothing is written, the engine tells them to ask an admin."""


def claim_inbound(session: Session, *, platform: str, workspace: str, user_id: str, update_key: str) -> Claim:
    """Claim an inbound platform event once, only for a person we know (nothing is written otherwise).

    A concurrent claim of the same key (another process) raises IntegrityError at flush; the caller's
    transaction rolls back and the caller treats it as a replay.
    """
    person = learning.person_for_identity(session, platform=platform, workspace=workspace, user_id=user_id)
    if person is None:
        return Claim.UNKNOWN
    return (
        Claim.FRESH
        if learning.claim_update(session, platform=platform, update_key=update_key)
        else Claim.REPLAY
    )


def delivery_for_message(session: Session, *, message_ref: str) -> int | None:
    """The delivery whose message has this platform reference (the latest, if sent more than once)."""
    return session.exec(
        select(Delivery.id)
        .where(Delivery.platform_message_ref == message_ref)
        .order_by(col(Delivery.id).desc())
    ).first()


__all__ = [
    "Claim",
    "Unbound",
    "bind_identity_by_email",
    "claim_inbound",
    "delivery_for_message",
    "dm_channel",
    "people_without_identity",
    "set_dm_channel",
]
