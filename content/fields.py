"""Field types shared by rosters and activity files, with messages that never echo secrets."""

from __future__ import annotations

import functools
import re
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, BeforeValidator, StringConstraints

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")  # [0-9]: \d takes other scripts' digits
# Files in the zone database that are not zones a person lives in: the host's own setting, a template
# for POSIX TZ strings, and a placeholder zone whose abbreviation is "-00".
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@functools.cache
def known_timezones() -> frozenset[str]:
    """The IANA zone names ``ZoneInfo`` can load here; read from disk once, on first use."""
    return frozenset(available_timezones() - _NOT_ZONES)


def check_timezone(value: str) -> str:
    """An IANA zone name, exactly as the database spells it: 'Europe/Berlin', 'UTC'.

    A name is looked up, never opened: ``ZoneInfo("Europe")`` raises IsADirectoryError, and
    ``ZoneInfo("localtime")`` reads whatever the host is set to.
    """
    if value not in known_timezones():
        raise ValueError("unknown time zone; use an IANA name such as Europe/Berlin")
    return value


def check_clock(value: str) -> str:
    match = _CLOCK.fullmatch(value.strip())
    if match is None:
        raise ValueError('expected a time of day as "HH:MM" (quote it in YAML)')
    return f"{int(match[1]):02d}:{match[2]}"


def check_email(value: str) -> str:
    value = value.strip().lower()
    if not _EMAIL.match(value):
        raise ValueError("not an email address")
    return value


def weekday(value: str) -> str:
    """'mon', 'Monday' and 'MON' all mean the same day; returns the three-letter form."""
    text = value.strip().lower()
    if text in WEEKDAYS:
        return text
    if text in _FULL_DAYS:
        return WEEKDAYS[_FULL_DAYS.index(text)]
    raise ValueError(f"unknown day; use one of {', '.join(WEEKDAYS)}")


def _split_days(value: object) -> object:
    if isinstance(value, str):
        return [part for part in re.split(r"[\s,;]+", value) if part]
    return value


TimeZoneName = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(check_timezone)]
ClockTime = Annotated[str, AfterValidator(check_clock)]
Email = Annotated[str, AfterValidator(check_email)]
Weekday = Annotated[str, AfterValidator(weekday)]
WeekdayList = Annotated[list[Weekday], BeforeValidator(_split_days)]
