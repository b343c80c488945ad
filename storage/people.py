"""Roster repository: teams, people and their chat identities."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from storage.errors import IntegrityProblem
from storage.models import ChatIdentity, Person, Platform, Role, Team, TeamManager, TeamPack, utcnow


@dataclass(frozen=True)
class TeamImport:
    """A team as a roster describes it; ``None`` keeps the stored value (or the default for a new team)."""

    key: str
    name: str | None = None
    manager_email: str | None = None
    packs: tuple[str, ...] | None = None
    digest_day: int | None = None
    digest_time: str | None = None
    session_time: str | None = None
    workdays: str | None = None
    per_day: int | None = None
    working_hours_start: str | None = None
    working_hours_end: str | None = None


@dataclass(frozen=True)
class PersonImport:
    email: str
    name: str
    role: Role
    team_key: str | None = None
    timezone: str | None = None
    session_time: str | None = None
    workdays: str | None = None
    per_day: int | None = None
    working_hours_start: str | None = None
    working_hours_end: str | None = None
    slack: tuple[str, str] | None = None  # (workspace id, user id)
    telegram: str | None = None


@dataclass(frozen=True)
class RosterImport:
    teams: tuple[TeamImport, ...]
    people: tuple[PersonImport, ...]


@dataclass
class RosterReport:
    teams_added: list[str] = field(default_factory=list)
    teams_updated: list[str] = field(default_factory=list)
    people_added: list[str] = field(default_factory=list)
    people_updated: list[str] = field(default_factory=list)
    people_reactivated: list[str] = field(default_factory=list)
    people_deactivated: list[str] = field(default_factory=list)

    @property
    def changed_anything(self) -> bool:
        return any(
            (
                self.teams_added,
                self.teams_updated,
                self.people_added,
                self.people_updated,
                self.people_reactivated,
                self.people_deactivated,
            )
        )


_TEAM_FIELDS = (
    "name",
    "digest_day",
    "digest_time",
    "session_time",
    "workdays",
    "per_day",
    "working_hours_start",
    "working_hours_end",
)
_PERSON_FIELDS = (
    "name",
    "role",
    "timezone",
    "session_time",
    "workdays",
    "per_day",
    "working_hours_start",
    "working_hours_end",
)


def apply_roster(session: Session, *, roster: RosterImport) -> RosterReport:
    """Make the stored people and teams match ``roster``, the one source of truth for who may do what.

    People missing from it are deactivated, never deleted, so their history stays. Writing nothing when
    nothing differs keeps a reload from touching the database.
    """
    report = RosterReport()
    teams = {t.key: t for t in session.exec(select(Team))}
    for incoming in roster.teams:
        _upsert_team(session, teams, incoming, report)
    for person in roster.people:
        if person.team_key is not None and person.team_key not in teams:
            _upsert_team(session, teams, TeamImport(key=person.team_key), report)
    session.flush()

    people = {p.email: p for p in session.exec(select(Person))}
    for listed_person in roster.people:
        _upsert_person(session, people, teams, listed_person, report)
    listed = {p.email for p in roster.people}
    now = utcnow()
    for email, stored in people.items():
        if email not in listed and stored.active:
            stored.active = False
            stored.deactivated_at = now
            stored.updated_at = now
            session.add(stored)
            report.people_deactivated.append(email)
    session.flush()
    _sync_identities(session, people, roster.people)
    _sync_managers(session, people, teams, roster, report)
    _sync_team_packs(session, teams, roster.teams, report)
    return report


def _upsert_team(
    session: Session, teams: dict[str, Team], incoming: TeamImport, report: RosterReport
) -> None:
    stored = teams.get(incoming.key)
    if stored is None:
        stored = Team(key=incoming.key, name=incoming.name or incoming.key)
        teams[incoming.key] = stored
        report.teams_added.append(incoming.key)
        _apply_fields(stored, incoming, _TEAM_FIELDS)
        session.add(stored)
        return
    if _apply_fields(stored, incoming, _TEAM_FIELDS) and incoming.key not in report.teams_added:
        stored.updated_at = utcnow()
        session.add(stored)
        report.teams_updated.append(incoming.key)


def _upsert_person(
    session: Session,
    people: dict[str, Person],
    teams: dict[str, Team],
    incoming: PersonImport,
    report: RosterReport,
) -> None:
    team_id = teams[incoming.team_key].id if incoming.team_key is not None else None
    stored = people.get(incoming.email)
    if stored is None:
        stored = Person(email=incoming.email, name=incoming.name, role=incoming.role, team_id=team_id)
        _apply_fields(stored, incoming, _PERSON_FIELDS, keep_none=False)
        people[incoming.email] = stored
        session.add(stored)
        report.people_added.append(incoming.email)
        return
    changed = _apply_fields(stored, incoming, _PERSON_FIELDS, keep_none=False)
    if stored.team_id != team_id:
        stored.team_id = team_id
        changed = True
    if not stored.active:
        stored.active = True
        stored.deactivated_at = None
        report.people_reactivated.append(incoming.email)
    elif changed:
        report.people_updated.append(incoming.email)
    if changed or incoming.email in report.people_reactivated:
        stored.updated_at = utcnow()
        session.add(stored)


def _apply_fields(target: Any, source: Any, names: tuple[str, ...], *, keep_none: bool = True) -> bool:
    changed = False
    for name in names:
        value = getattr(source, name)
        if value is None and keep_none:
            continue
        if getattr(target, name) != value:
            setattr(target, name, value)
            changed = True
    return changed


def _sync_identities(session: Session, people: dict[str, Person], incoming: tuple[PersonImport, ...]) -> None:
    """Bind the platform ids the roster gives; an id already bound to someone else is an error."""
    wanted: list[tuple[Person, str, str, str]] = []
    for listed in incoming:
        stored = people[listed.email]
        if listed.slack is not None:
            wanted.append((stored, Platform.SLACK, listed.slack[0], listed.slack[1]))
        if listed.telegram is not None:
            wanted.append((stored, Platform.TELEGRAM, "", listed.telegram))
    if not wanted:
        return
    by_platform_id = {(i.platform, i.workspace, i.user_id): i for i in session.exec(select(ChatIdentity))}
    by_person = {(i.person_id, i.platform, i.workspace): i for i in by_platform_id.values()}
    for person, platform, workspace, user_id in wanted:
        bound = by_platform_id.get((platform, workspace, user_id))
        if bound is not None:
            if bound.person_id != person.id:
                owner = session.get(Person, bound.person_id)
                raise IntegrityProblem(
                    f"{platform} user {user_id} is bound to {owner.email if owner else 'someone else'}, "
                    f"not {person.email}"
                )
            continue
        assert person.id is not None
        previous = by_person.get((person.id, platform, workspace))
        if previous is not None:
            # The roster moved this person to a new account on the same platform.
            del by_platform_id[(previous.platform, previous.workspace, previous.user_id)]
            previous.user_id = user_id
            previous.dm_channel = None
            session.add(previous)
            by_platform_id[(platform, workspace, user_id)] = previous
            continue
        identity = ChatIdentity(person_id=person.id, platform=platform, workspace=workspace, user_id=user_id)
        session.add(identity)
        by_platform_id[(platform, workspace, user_id)] = identity
        by_person[(person.id, platform, workspace)] = identity


def _sync_managers(
    session: Session,
    people: dict[str, Person],
    teams: dict[str, Team],
    roster: RosterImport,
    report: RosterReport,
) -> None:
    wanted: dict[str, str] = {}
    for person in roster.people:  # CSV rosters name a manager by giving them a team
        if person.role == Role.MANAGER and person.team_key is not None:
            wanted.setdefault(person.team_key, person.email)
    for team in roster.teams:
        if team.manager_email is not None:
            wanted[team.key] = team.manager_email
    current = {m.team_id: m for m in session.exec(select(TeamManager))}
    for team_key, email in wanted.items():
        team_id, person_id = teams[team_key].id, people[email].id
        assert team_id is not None
        assert person_id is not None
        link = current.get(team_id)
        if link is None:
            session.add(TeamManager(team_id=team_id, person_id=person_id))
        elif link.person_id != person_id:
            link.person_id = person_id
            session.add(link)
        else:
            continue
        if team_key not in report.teams_added and team_key not in report.teams_updated:
            report.teams_updated.append(team_key)


def _sync_team_packs(
    session: Session, teams: dict[str, Team], incoming: tuple[TeamImport, ...], report: RosterReport
) -> None:
    for team in incoming:
        if team.packs is None:
            continue
        team_id = teams[team.key].id
        rows = session.exec(select(TeamPack).where(TeamPack.team_id == team_id)).all()
        have = {row.pack_key for row in rows}
        if have == set(team.packs):
            continue
        for row in rows:
            if row.pack_key not in team.packs:
                session.delete(row)
        for key in team.packs:
            if key not in have:
                assert team_id is not None
                session.add(TeamPack(team_id=team_id, pack_key=key))
        if team.key not in report.teams_added and team.key not in report.teams_updated:
            report.teams_updated.append(team.key)


def people_by_email(session: Session) -> dict[str, Person]:
    return {p.email: p for p in session.exec(select(Person))}


def team_keys(session: Session) -> set[str]:
    return set(session.exec(select(Team.key)).all())


def team_pack_keys(session: Session) -> list[tuple[str, str]]:
    """(team key, pack key) for every pack assigned to a team."""
    rows = session.exec(
        select(Team.key, TeamPack.pack_key).join(TeamPack, col(TeamPack.team_id) == col(Team.id))
    )
    return [(team, pack) for team, pack in rows.all()]
