"""Activity files: logged sales work (visits, meetings, deals) that outcome KPIs are computed from."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from content.fields import check_email
from content.problems import ContentError, Problem
from content.roster import read_csv_rows
from storage.activities import ActivityImport

COLUMNS = ("email", "type", "occurred_at", "count", "value", "account", "external_id", "note", "follow_up_on")
REQUIRED = ("email", "type", "occurred_at")
MAX_PROBLEMS = 200
# A CRM clock a little ahead is fine; a date next month is a typo.
FUTURE_TOLERANCE = timedelta(days=1)


@dataclass(frozen=True)
class KnownPerson:
    id: int
    timezone: str | None


class _RowError(ValueError):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(f"column {column}: {message}")


def parse_activity_rows(
    rows: list[tuple[int, dict[str, str]]],
    *,
    file: str,
    people: Mapping[str, KnownPerson],
    activity_types: Mapping[str, str],
    default_timezone: str,
    now: datetime,
) -> list[ActivityImport]:
    """Validate every row; raise :class:`ContentError` naming each bad row, so no row is stored."""
    if not activity_types:
        raise ContentError([Problem(file, 1, 0, "no activity types are defined; load a content pack first")])
    problems: list[Problem] = []
    imports: list[ActivityImport] = []
    external_lines: dict[str, int] = {}
    identical: dict[str, int] = {}
    for line, row in rows:
        try:
            activity = _parse_row(row, people, activity_types, default_timezone, now)
        except _RowError as exc:
            problems.append(Problem(file, line, 0, str(exc)))
            continue
        external_id = row.get("external_id", "")
        if external_id:
            if external_id in external_lines:
                problems.append(
                    Problem(
                        file,
                        line,
                        0,
                        f"column external_id: {external_id} repeats line {external_lines[external_id]}",
                    )
                )
                continue
            external_lines[external_id] = line
            key = f"ext:{external_id}"
        else:
            fingerprint = _fingerprint(activity)
            occurrence = identical.get(fingerprint, 0)
            identical[fingerprint] = occurrence + 1
            key = f"row:{fingerprint}:{occurrence}"
        imports.append(_with_key(activity, key))
    if problems:
        if len(problems) > MAX_PROBLEMS:
            hidden = len(problems) - MAX_PROBLEMS
            problems = [
                *problems[:MAX_PROBLEMS],
                Problem(file, problems[MAX_PROBLEMS].line, 0, f"... and {hidden} more"),
            ]
        raise ContentError(problems)
    return imports


def _parse_row(
    row: dict[str, str],
    people: Mapping[str, KnownPerson],
    activity_types: Mapping[str, str],
    default_timezone: str,
    now: datetime,
) -> ActivityImport:
    try:
        email = check_email(row.get("email", ""))
    except ValueError:
        raise _RowError("email", "not an email address") from None
    person = people.get(email)
    if person is None:
        raise _RowError("email", f"{email} is not on the roster")
    type_key = row.get("type", "")
    if type_key not in activity_types:
        known = ", ".join(sorted(activity_types))
        raise _RowError("type", f"unknown activity type '{type_key}' (known: {known})")
    occurred_at = _parse_datetime(row.get("occurred_at", ""), person.timezone or default_timezone)
    if occurred_at > now + FUTURE_TOLERANCE:
        raise _RowError("occurred_at", "is in the future")
    count = _parse_count(row.get("count", ""))
    value = _parse_value(row.get("value", ""))
    follow_up_on = _parse_date(row.get("follow_up_on", ""))
    account = row.get("account") or None
    if account is not None and len(account) > 200:
        raise _RowError("account", "longer than 200 characters")
    if len(row.get("external_id", "")) > 180:
        raise _RowError("external_id", "longer than 180 characters")
    return ActivityImport(
        person_id=person.id,
        type_key=type_key,
        occurred_at=occurred_at,
        count=count,
        value=value,
        account=account,
        note=row.get("note") or None,
        follow_up_on=follow_up_on,
        external_key="",
    )


def _parse_datetime(text: str, timezone: str) -> datetime:
    """ISO 8601; a time without an offset is taken in the rep's own time zone, a bare date at midnight."""
    if not text:
        raise _RowError("occurred_at", "is required")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _RowError("occurred_at", "not an ISO 8601 date-time (e.g. 2026-11-03T10:15:00+01:00)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(timezone))
    return parsed.astimezone(UTC)


def _parse_count(text: str) -> int:
    if not text:
        return 1
    try:
        count = int(text)
    except ValueError:
        raise _RowError("count", "not a whole number") from None
    if not 1 <= count <= 100_000:
        raise _RowError("count", "must be between 1 and 100000")
    return count


def _parse_value(text: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise _RowError("value", "not a number") from None
    if not math.isfinite(value):
        raise _RowError("value", "not a finite number")
    return value


def _parse_date(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _RowError("follow_up_on", "not a date (YYYY-MM-DD)") from None


def _fingerprint(activity: ActivityImport) -> str:
    parts = (
        str(activity.person_id),
        activity.type_key,
        activity.occurred_at.isoformat(),
        str(activity.count),
        "" if activity.value is None else repr(activity.value),
        activity.account or "",
        activity.note or "",
        "" if activity.follow_up_on is None else activity.follow_up_on.isoformat(),
    )
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def _with_key(activity: ActivityImport, key: str) -> ActivityImport:
    return ActivityImport(**{**activity.__dict__, "external_key": key})


def read_activity_csv(data: bytes, *, file: str) -> list[tuple[int, dict[str, str]]]:
    return read_csv_rows(data, file=file, allowed=COLUMNS, required=REQUIRED)
