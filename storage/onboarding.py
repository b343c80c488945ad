"""Repository functions for joining a chat platform: invites, identity binding, reachability, dedupe.

Invite codes are random (``secrets.token_urlsafe``), shown once and stored only as a SHA-256 hash; a code
expires after its time to live and works once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, update
from sqlmodel import Session, col, select

from storage.errors import NotFound
from storage.learning import PersonView
from storage.models import ChatIdentity, Delivery, DeliveryKind, Invite, Person, ProcessedUpdate, Team

CODE_BYTES = 16
"""22 URL-safe characters: within Telegram's 64-character ``start`` parameter alphabet ``A-Za-z0-9_-``."""


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _view(person: Person) -> PersonView:
    return PersonView(**{name: getattr(person, name) for name in PersonView.__dataclass_fields__})


def create_invites(
    session: Session, *, team_key: str | None, platform: str, ttl: timedelta, now: datetime
) -> list[tuple[PersonView, str]]:
    """A fresh one-time code for each active person (of the team, if given) without an identity on
    ``platform``; returns the people with their codes (the only time a code is visible)."""
    bound = exists().where(
        col(ChatIdentity.person_id) == col(Person.id), col(ChatIdentity.platform) == platform
    )
    query = select(Person).where(col(Person.active).is_(True), ~bound).order_by(col(Person.email))
    if team_key is not None:
        team_id = session.exec(select(Team.id).where(Team.key == team_key)).first()
        if team_id is None:
            raise NotFound(f"no team {team_key!r} in the roster")
        query = query.where(Person.team_id == team_id)
    invites: list[tuple[PersonView, str]] = []
    for person in session.exec(query).all():
        assert person.id is not None
        code = secrets.token_urlsafe(CODE_BYTES)
        session.add(
            Invite(
                person_id=person.id,
                platform=platform,
                code_hash=hash_code(code),
                created_at=now,
                expires_at=now + ttl,
            )
        )
        invites.append((_view(person), code))
    session.flush()
    return invites


def redeem_invite(
    session: Session, *, code: str, platform: str, workspace: str, user_id: str, now: datetime
) -> PersonView | None:
    """Use a code once: bind ``user_id`` to its person in this transaction and return the person.

    An unknown, expired or used code, an inactive person, a platform id bound to someone else, or a person
    already bound to another id on the platform return ``None`` and write nothing.
    """
    invite = session.exec(
        select(Invite).where(
            Invite.code_hash == hash_code(code),
            Invite.platform == platform,
            col(Invite.used_at).is_(None),
            col(Invite.expires_at) > now,
        )
    ).first()
    if invite is None:
        return None
    person = session.get(Person, invite.person_id)
    if person is None or not person.active:
        return None
    by_user = session.exec(
        select(ChatIdentity).where(
            ChatIdentity.platform == platform,
            ChatIdentity.workspace == workspace,
            ChatIdentity.user_id == user_id,
        )
    ).first()
    by_person = session.exec(
        select(ChatIdentity).where(
            ChatIdentity.person_id == person.id,
            ChatIdentity.platform == platform,
            ChatIdentity.workspace == workspace,
        )
    ).first()
    if (by_user is not None and by_user.person_id != person.id) or (
        by_person is not None and by_person.user_id != user_id
    ):
        return None
    # Claim the code with a conditional update: of two concurrent redemptions only one changes the row.
    claimed = session.execute(
        update(Invite)
        .where(col(Invite.id) == invite.id, col(Invite.used_at).is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    if by_user is None:
        assert person.id is not None
        session.add(
            ChatIdentity(person_id=person.id, platform=platform, workspace=workspace, user_id=user_id)
        )
    person.reachable = True
    person.updated_at = now
    session.add(person)
    session.flush()
    return _view(person)


def mark_unreachable(session: Session, *, person_id: int) -> None:
    """The person blocked the bot (or deleted their account): stop sending until they come back."""
    session.execute(
        update(Person)
        .where(col(Person.id) == person_id, col(Person.reachable).is_(True))
        .values(reachable=False)
        .execution_options(synchronize_session=False)
    )


def mark_reachable(session: Session, *, person_id: int) -> None:
    """The person wrote to the bot again (they unblocked it): send to them again."""
    session.execute(
        update(Person)
        .where(col(Person.id) == person_id, col(Person.reachable).is_(False))
        .values(reachable=True)
        .execution_options(synchronize_session=False)
    )


def delivery_for_message_ref(session: Session, *, ref: str) -> int | None:
    """The question delivery sent as the platform message ``ref`` (the latest one, should a ref repeat)."""
    return session.exec(
        select(Delivery.id)
        .where(Delivery.platform_message_ref == ref, Delivery.kind == DeliveryKind.QUESTION)
        .order_by(col(Delivery.id).desc())
    ).first()


def purge_processed_updates(session: Session, *, before: datetime) -> int:
    """Forget processed update ids received before ``before``; returns how many were removed."""
    result = session.execute(
        delete(ProcessedUpdate)
        .where(col(ProcessedUpdate.received_at) < before)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
