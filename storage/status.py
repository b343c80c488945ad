"""What an operator checks first: backlog, who cannot be reached, and digest freshness."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.models import ChatIdentity, Delivery, DeliveryStatus, Digest, Person, Team


@dataclass
class DeploymentStatus:
    active_people: int = 0
    inactive_people: int = 0
    outbox: dict[str, int] = field(default_factory=dict)
    never_connected: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    last_digest: dict[str, str | None] = field(default_factory=dict)


_OPEN = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.FAILED)


def deployment_status(session: Session) -> DeploymentStatus:
    report = DeploymentStatus()
    for active, count in session.exec(select(Person.active, func.count()).group_by(col(Person.active))):
        if active:
            report.active_people = count
        else:
            report.inactive_people = count
    rows = session.exec(
        select(Delivery.status, func.count()).where(col(Delivery.status).in_(_OPEN)).group_by(Delivery.status)
    )
    report.outbox = dict(rows.all())
    connected = select(ChatIdentity.person_id)
    report.never_connected = list(
        session.exec(
            select(Person.email)
            .where(col(Person.active).is_(True), col(Person.id).not_in(connected))
            .order_by(Person.email)
        )
    )
    report.unreachable = list(
        session.exec(
            select(Person.email)
            .where(col(Person.active).is_(True), col(Person.reachable).is_(False))
            .order_by(Person.email)
        )
    )
    latest = dict(
        session.exec(select(Digest.team_id, func.max(Digest.iso_week)).group_by(col(Digest.team_id))).all()
    )
    for team in session.exec(select(Team).order_by(Team.key)):
        assert team.id is not None
        report.last_digest[team.key] = latest.get(team.id)
    return report
