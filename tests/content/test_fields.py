"""Field checks shared by rosters, activity files and chat settings: a bad value is a clear ValueError."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ValidationError

from content.fields import TimeZoneName, check_clock, check_timezone

UNKNOWN_ZONE = "unknown time zone; use an IANA name such as Europe/Berlin"
ZONE_NAMES = [
    pytest.param("Europe/Berlin", True, id="Europe/Berlin"),
    pytest.param("UTC", True, id="UTC"),
    pytest.param("America/Argentina/Buenos_Aires", True, id="three-parts"),
    pytest.param("Asia/Kolkata", True, id="Asia/Kolkata"),
    pytest.param("Etc/GMT-14", True, id="Etc/GMT-14"),
    pytest.param("Europe", False, id="an-area-is-a-directory"),
    pytest.param("America", False, id="another-area"),
    pytest.param("America/Argentina", False, id="a-sub-area"),
    pytest.param("localtime", False, id="the-hosts-own-setting"),
    pytest.param("posixrules", False, id="a-posix-template"),
    pytest.param("Factory", False, id="a-placeholder-zone"),
    pytest.param("", False, id="empty"),
    pytest.param("../etc/passwd", False, id="a-path-outside"),
    pytest.param("/usr/share/zoneinfo/UTC", False, id="an-absolute-path"),
    pytest.param("Europe/", False, id="trailing-slash"),
    pytest.param("Mars/Olympus", False, id="no-such-zone"),
    pytest.param("europe/berlin", False, id="wrong-case"),
    pytest.param("Europe/Berlin\x00", False, id="nul"),
]


@pytest.mark.parametrize(("name", "real"), ZONE_NAMES)
def test_only_real_iana_zones_are_accepted(name: str, real: bool) -> None:
    """'Europe' raised IsADirectoryError; 'localtime', 'posixrules' and 'Factory' were accepted."""
    if real:
        assert check_timezone(name) == name
        assert ZoneInfo(name).key == name
    else:
        with pytest.raises(ValueError, match=f"^{UNKNOWN_ZONE}$"):
            check_timezone(name)


class _Person(BaseModel):
    timezone: TimeZoneName


@pytest.mark.parametrize("name", ["Europe", "America", "localtime", "Factory"])
def test_a_roster_field_reports_a_bad_zone_as_a_validation_error(name: str) -> None:
    """Pydantic turns only ValueError into a validation error; an OSError would escape the loader."""
    with pytest.raises(ValidationError) as caught:
        _Person(timezone=name)
    [error] = caught.value.errors()
    assert error["loc"] == ("timezone",)
    assert UNKNOWN_ZONE in error["msg"]


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        pytest.param("08:30", "08:30", id="hh-mm"),
        pytest.param("8:05", "08:05", id="h-mm"),
        pytest.param(" 23:59 ", "23:59", id="spaces"),
        pytest.param("24:00", None, id="no-hour-24"),
        pytest.param("08:60", None, id="no-minute-60"),
        pytest.param("0830", None, id="no-colon"),
        pytest.param("1\u0668:30", None, id="arabic-indic-hour-digit"),
        pytest.param("18:3\u0660", None, id="arabic-indic-minute-digit"),
        pytest.param("\uff10\uff18:30", None, id="fullwidth-digits"),
    ],
)
def test_clock_times_are_hh_mm_in_ascii_digits(text: str, stored: str | None) -> None:
    """Other scripts' digits passed the old \\d pattern: '1٨:3٠' was stored as '18:3٠'."""
    if stored is not None:
        assert check_clock(text) == stored
    else:
        with pytest.raises(ValueError, match="HH:MM"):
            check_clock(text)
