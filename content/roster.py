"""Rosters (YAML or CSV): who is on which team, their role, time zone, schedule and chat ids."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from content.fields import WEEKDAYS, ClockTime, Email, TimeZoneName, Weekday, WeekdayList
from content.files import read_limited
from content.problems import ContentError, Problem
from content.validation import known_fields, problems_from_validation
from content.yamlsafe import Located, read_yaml
from storage.models import Role
from storage.people import PersonImport, RosterImport, TeamImport

Key = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
SlackId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Z0-9]{2,40}$")]

CSV_COLUMNS = (
    "email",
    "name",
    "role",
    "team",
    "timezone",
    "slack_team",
    "slack_user",
    "telegram_user",
    "session_time",
    "days",
    "per_day",
)
_CSV_REQUIRED = ("email", "name", "role")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, frozen=True)


class ScheduleSpec(_Spec):
    time: ClockTime | None = None
    days: WeekdayList | None = Field(default=None, min_length=1)
    per_day: int | None = Field(default=None, ge=1, le=20)
    working_hours: tuple[ClockTime, ClockTime] | None = None

    @field_validator("working_hours")
    @classmethod
    def _hours_in_order(cls, value: tuple[str, str] | None) -> tuple[str, str] | None:
        if value is not None and value[0] >= value[1]:
            raise ValueError("working_hours must start before they end")
        return value


class DigestSpec(_Spec):
    day: Weekday = "mon"
    time: ClockTime = "09:00"


class TeamSpec(_Spec):
    key: Key
    name: Name
    manager: Email | None = None
    packs: list[Key] = Field(default_factory=list)
    digest: DigestSpec = Field(default_factory=DigestSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)


class SlackSpec(_Spec):
    team: SlackId
    user: SlackId


class PersonSpec(_Spec):
    email: Email
    name: Name
    role: Role
    team: Key | None = Field(default=None, validate_default=True)
    timezone: TimeZoneName | None = None
    slack: SlackSpec | None = None
    telegram: int | None = Field(default=None, gt=0)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)

    @field_validator("team")
    @classmethod
    def _reps_need_a_team(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("role") == Role.REP:
            raise ValueError("a rep needs a team")
        return value


class RosterSpec(_Spec):
    teams: list[TeamSpec] = Field(default_factory=list)
    people: list[PersonSpec]


_VOCABULARY = known_fields((RosterSpec, TeamSpec, PersonSpec, ScheduleSpec, DigestSpec, SlackSpec))


@dataclass(frozen=True)
class ValidatedRoster:
    spec: RosterSpec
    file: str
    from_csv: bool


def read_roster_file(path: FsPath) -> ValidatedRoster:
    data = read_limited(path)
    if path.suffix.lower() == ".csv":
        return parse_roster_csv(data, file=str(path))
    return parse_roster_yaml(data, file=str(path))


def parse_roster_yaml(text: str | bytes, *, file: str) -> ValidatedRoster:
    located = read_yaml(text, file=file)
    if not isinstance(located.data, dict):
        raise ContentError([located.problem((), "a roster is a mapping with keys teams and people")])
    problems: list[Problem] = []
    spec: RosterSpec | None = None
    try:
        spec = RosterSpec.model_validate(located.data)
    except ValidationError as exc:
        problems.extend(problems_from_validation(exc, located, vocabulary=_VOCABULARY))
    problems.extend(_cross_check(located))
    if spec is None or problems:
        raise ContentError(list(dict.fromkeys(problems)))
    return ValidatedRoster(spec=spec, file=file, from_csv=False)


def _cross_check(located: Located) -> list[Problem]:
    data: dict[str, Any] = located.data
    problems: list[Problem] = []
    teams = (
        [t for t in data.get("teams") or [] if isinstance(t, dict)]
        if isinstance(data.get("teams"), list)
        else []
    )
    people_raw = data.get("people") if isinstance(data.get("people"), list) else []
    team_keys: set[str] = set()
    for i, team in enumerate(teams):
        key = team.get("key")
        if isinstance(key, str):
            if key in team_keys:
                problems.append(located.problem(("teams", i, "key"), f"duplicate team key '{key}'"))
            team_keys.add(key)
    roles: dict[str, str] = {}
    seen_ids: dict[tuple[str, str], str] = {}
    for i, person in enumerate(people_raw or []):
        if not isinstance(person, dict):
            continue
        email = str(person.get("email", "")).strip().lower()
        if email:
            if email in roles:
                problems.append(located.problem(("people", i, "email"), f"duplicate person {email}"))
            roles[email] = str(person.get("role"))
        team_ref = person.get("team")
        if isinstance(team_ref, str) and team_ref not in team_keys:
            problems.append(
                located.problem(("people", i, "team"), f"unknown team '{team_ref}' (define it under teams)")
            )
        slack = person.get("slack")
        ids = []
        if isinstance(slack, dict):
            ids.append((("people", i, "slack"), ("slack", f"{slack.get('team')}/{slack.get('user')}")))
        if person.get("telegram") is not None:
            ids.append((("people", i, "telegram"), ("telegram", str(person.get("telegram")))))
        for path, identity in ids:
            if identity in seen_ids:
                problems.append(
                    located.problem(
                        path, f"{identity[0]} id {identity[1]} is already given to {seen_ids[identity]}"
                    )
                )
            seen_ids[identity] = email
    for i, team in enumerate(teams):
        manager = team.get("manager")
        if isinstance(manager, str):
            role = roles.get(manager.strip().lower())
            if role is None:
                problems.append(
                    located.problem(("teams", i, "manager"), f"manager {manager} is not in people")
                )
            elif role not in (Role.MANAGER, Role.ADMIN):
                problems.append(
                    located.problem(
                        ("teams", i, "manager"), f"{manager} has role {role}, not manager or admin"
                    )
                )
    return problems


def parse_roster_csv(data: bytes, *, file: str) -> ValidatedRoster:
    """The CSV form: one person per row; teams it names are created if new (settings kept if not)."""
    rows = read_csv_rows(data, file=file, allowed=CSV_COLUMNS, required=_CSV_REQUIRED)
    problems: list[Problem] = []
    people: list[PersonSpec] = []
    seen: dict[str, int] = {}
    seen_ids: dict[tuple[str, str], tuple[str, int]] = {}
    for line, row in rows:
        raw: dict[str, Any] = {"email": row.get("email"), "name": row.get("name"), "role": row.get("role")}
        for column in ("team", "timezone"):
            if row.get(column):
                raw[column] = row[column]
        if row.get("slack_team") or row.get("slack_user"):
            raw["slack"] = {"team": row.get("slack_team") or "", "user": row.get("slack_user") or ""}
        if row.get("telegram_user"):
            raw["telegram"] = row["telegram_user"]
        schedule = {
            name: row[column]
            for name, column in (("time", "session_time"), ("days", "days"), ("per_day", "per_day"))
            if row.get(column)
        }
        if schedule:
            raw["schedule"] = schedule
        try:
            person = PersonSpec.model_validate(raw)
        except ValidationError as exc:
            for detail in exc.errors(include_url=False, include_input=False):
                column = _csv_column(detail["loc"])
                message = str(detail["msg"]).removeprefix("Value error, ")
                problems.append(Problem(file, line, 0, f"column {column}: {message}"))
            continue
        if person.email in seen:
            problems.append(
                Problem(
                    file,
                    line,
                    0,
                    f"column email: duplicate person {person.email} (first on line {seen[person.email]})",
                )
            )
        seen[person.email] = line
        for column, identity in _platform_ids(person):
            if identity in seen_ids:
                owner, first = seen_ids[identity]
                message = f"column {column}: {identity[0]} id {identity[1]} is already given to {owner}"
                problems.append(Problem(file, line, 0, f"{message} (line {first})"))
            seen_ids[identity] = (person.email, line)
        people.append(person)
    if problems:
        raise ContentError(problems)
    return ValidatedRoster(spec=RosterSpec(teams=[], people=people), file=file, from_csv=True)


def _platform_ids(person: PersonSpec) -> list[tuple[str, tuple[str, str]]]:
    ids = []
    if person.slack is not None:
        ids.append(("slack_team/slack_user", ("slack", f"{person.slack.team}/{person.slack.user}")))
    if person.telegram is not None:
        ids.append(("telegram_user", ("telegram", str(person.telegram))))
    return ids


def _csv_column(loc: tuple[str | int, ...]) -> str:
    names = {"slack": "slack_team/slack_user", "telegram": "telegram_user", "time": "session_time"}
    if not loc:
        return "(row)"
    if loc[0] == "schedule" and len(loc) > 1:
        return names.get(str(loc[1]), str(loc[1]))
    return names.get(str(loc[0]), str(loc[0]))


def read_csv_rows(
    data: bytes, *, file: str, allowed: tuple[str, ...], required: tuple[str, ...]
) -> list[tuple[int, dict[str, str]]]:
    """Decode a UTF-8 CSV (a BOM is fine), check its header, and return ``(line, row)`` pairs."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ContentError([Problem(file, line, 0, "not valid UTF-8 (save the file as UTF-8)")]) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ContentError([Problem(file, 1, 0, "empty file; a header row is required")]) from None
    except csv.Error as exc:
        raise ContentError([Problem(file, 1, 0, f"malformed CSV: {exc}")]) from None
    columns = [name.strip().lower() for name in header]
    problems = [Problem(file, 1, 0, f"unknown column '{name}'") for name in columns if name not in allowed]
    problems += [Problem(file, 1, 0, f"missing column '{name}'") for name in required if name not in columns]
    duplicates = {name for name in columns if columns.count(name) > 1}
    problems += [Problem(file, 1, 0, f"column '{name}' appears twice") for name in sorted(duplicates)]
    if problems:
        raise ContentError(problems)
    rows: list[tuple[int, dict[str, str]]] = []
    while True:
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(file, line, 0, f"malformed CSV: {exc}"))
            break
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(columns):
            problems.append(Problem(file, line, 0, f"expected {len(columns)} fields, found {len(values)}"))
            continue
        rows.append((line, {name: value.strip() for name, value in zip(columns, values, strict=True)}))
    if problems:
        raise ContentError(problems)
    return rows


def to_import(roster: ValidatedRoster) -> RosterImport:
    """What storage needs; schedules are stored as comma-separated days and "HH:MM" strings."""
    spec = roster.spec
    teams = tuple(
        TeamImport(
            key=t.key,
            name=t.name,
            manager_email=t.manager,
            packs=tuple(t.packs),
            digest_day=WEEKDAYS.index(t.digest.day),
            digest_time=t.digest.time,
            **_schedule_fields(t.schedule, defaults=True),
        )
        for t in spec.teams
    )
    people = tuple(
        PersonImport(
            email=p.email,
            name=p.name,
            role=p.role,
            team_key=p.team,
            timezone=p.timezone,
            slack=(p.slack.team, p.slack.user) if p.slack else None,
            telegram=str(p.telegram) if p.telegram is not None else None,
            **_schedule_fields(p.schedule, defaults=False),
        )
        for p in spec.people
    )
    return RosterImport(teams=teams, people=people)


_TEAM_DEFAULTS: Mapping[str, Any] = {
    "session_time": "09:30",
    "workdays": "mon,tue,wed,thu,fri",
    "per_day": 3,
    "working_hours_start": "08:00",
    "working_hours_end": "18:00",
}


def _schedule_fields(schedule: ScheduleSpec, *, defaults: bool) -> dict[str, Any]:
    """A team's unset schedule fields take the defaults; a person's stay unset and follow the team."""
    fields: dict[str, Any] = {
        "session_time": schedule.time,
        "workdays": ",".join(schedule.days) if schedule.days else None,
        "per_day": schedule.per_day,
        "working_hours_start": schedule.working_hours[0] if schedule.working_hours else None,
        "working_hours_end": schedule.working_hours[1] if schedule.working_hours else None,
    }
    if defaults:
        fields = {name: _TEAM_DEFAULTS[name] if value is None else value for name, value in fields.items()}
    return fields
