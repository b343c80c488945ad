"""Odd command input in chat, over the real engine (SQLite, Postgres): the rep's view and what is stored.

A rep's typo gets a reply that says what to type, never "something went wrong on my side", and writes
nothing. The same goes for an admin whose roster names a time-zone area instead of a zone, in chat and on
the command line. The fake clock starts on Wednesday 2026-12-02 (see ``tests/bot/transcript.py``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlmodel import col, select
from typer.testing import CliRunner

from bot.cli import app
from bot.events import FileEvent
from bot.settings import Settings
from storage.models import Activity, Person
from tests.bot.transcript import Transcript, load_content
from tests.conftest import DATA, Database, snapshot

COUNT_ERROR = "bot> The count must be a whole number between 1 and 1000."
UNKNOWN_ZONE = "bot> Unknown time zone — use a name such as Europe/Berlin or America/New_York."
OUR_FAULT = "something went wrong on my side"
RITA_IN_BERLIN = (
    "{email: rita@example.com, name: Rita Rossi, role: rep, team: north, timezone: Europe/Berlin}"
)


@pytest.fixture
def rita(db: Database) -> Transcript:
    """Rita, a rep of team north (Europe/Berlin), in the console; the pack and roster are loaded."""
    load_content(db.engine)
    return Transcript.start(db.engine, "rita@example.com")


def activities(t: Transcript) -> list[tuple[str, int, date | None, str | None, str]]:
    rows = t.read(select(Activity).order_by(col(Activity.id)))
    return [(a.type_key, a.count, a.follow_up_on, a.note, a.source) for a in rows]


def rita_row(t: Transcript) -> Person:
    (person,) = t.read(select(Person).where(Person.email == "rita@example.com"))
    assert isinstance(person, Person)
    return person


def roster_with_rita_in(zone: str) -> str:
    roster = (DATA / "coach-roster.yaml").read_text(encoding="utf-8")
    assert roster.count(RITA_IN_BERLIN) == 1
    return roster.replace(RITA_IN_BERLIN, RITA_IN_BERLIN.replace("Europe/Berlin", zone))


# --- log ------------------------------------------------------------------------------------------


async def test_a_follow_up_written_as_two_words_is_stored(rita: Transcript) -> None:
    await rita.play(
        [
            (
                "log visit 2 follow up 2027-01-10 Dr Rao",
                "bot> Logged 2 × Doctor visit. I'll remind you about the follow-up on 2027-01-10.",
            ),
            (
                "log visit Follow Up 2026-12-03",
                "bot> Logged 1 × Doctor visit. I'll remind you about the follow-up on 2026-12-03.",
            ),
            (
                "log visit 3 followup 2026-12-04 call back",
                "bot> Logged 3 × Doctor visit. I'll remind you about the follow-up on 2026-12-04.",
            ),
            (
                "/log visit FU 2026-12-05",
                "bot> Logged 1 × Doctor visit. I'll remind you about the follow-up on 2026-12-05.",
            ),
        ]
    )
    assert activities(rita) == [
        ("visit", 2, date(2027, 1, 10), "Dr Rao", "chat"),
        ("visit", 1, date(2026, 12, 3), None, "chat"),
        ("visit", 3, date(2026, 12, 4), "call back", "chat"),
        ("visit", 1, date(2026, 12, 5), None, "chat"),
    ]


async def test_a_count_that_is_not_a_whole_number_is_refused_and_nothing_is_stored(rita: Transcript) -> None:
    before = snapshot(rita.engine)
    await rita.play(
        [
            ("log visits -3", COUNT_ERROR),
            ("log visits 3.5", COUNT_ERROR),
            ("log visit 1,5 Dr Rao", COUNT_ERROR),
            ("/log visit 0", COUNT_ERROR),
            ("log visit 5000", COUNT_ERROR),
        ]
    )
    after = snapshot(rita.engine)
    assert activities(rita) == []
    assert {k: v for k, v in after.items() if k != "processed_update"} == {
        k: v for k, v in before.items() if k != "processed_update"
    }


@pytest.mark.parametrize("count", ["\u00b2", "\u0663", "\uff13", "9" * 5000])
async def test_a_count_in_other_digits_gets_a_clear_reply_not_an_apology(
    rita: Transcript, count: str
) -> None:
    """'²' passed str.isdigit() and then crashed int(); '٣' was silently read as 3."""
    reply = await rita.say(f"log visit {count}")
    assert OUR_FAULT not in reply
    assert reply.rstrip("\n") == COUNT_ERROR
    assert activities(rita) == []


# --- pause, settings ------------------------------------------------------------------------------


async def test_a_pause_until_a_date_that_does_not_exist_is_refused(rita: Transcript) -> None:
    await rita.play(
        [
            (
                "pause until 2026-13-01",
                "bot> There is no date 2026-13-01. "
                "Use `pause until YYYY-MM-DD`, e.g. `pause until 2026-12-24`.",
            ),
            ("pause until 20261224", "bot> Use `pause until YYYY-MM-DD`, e.g. `pause until 2026-12-24`."),
        ]
    )
    assert rita_row(rita).paused_until is None


@pytest.mark.parametrize("zone", ["Europe", "America", "localtime", "Factory", "posixrules"])
async def test_a_time_zone_area_is_refused_and_nothing_changes(rita: Transcript, zone: str) -> None:
    """'Europe' is a folder of zone files: ZoneInfo raised IsADirectoryError and the rep got an apology."""
    before = snapshot(rita.engine)
    await rita.play([(f"settings timezone {zone}", UNKNOWN_ZONE), (f"/settings tz {zone}", UNKNOWN_ZONE)])
    after = snapshot(rita.engine)
    assert after["person"] == before["person"]
    assert after["audit_log"] == before["audit_log"]
    assert rita_row(rita).timezone == "Europe/Berlin"
    await rita.play(
        [("settings timezone America/New_York", "bot> Done — your time zone is now America/New_York.")]
    )
    assert rita_row(rita).timezone == "America/New_York"


# --- rosters --------------------------------------------------------------------------------------


async def test_a_roster_sent_in_chat_with_a_time_zone_area_is_refused(db: Database) -> None:
    load_content(db.engine)
    ada = Transcript.start(db.engine, "ada@example.com")
    before = snapshot(db.engine)
    event = FileEvent(
        sender=ada.address,
        key=ada.next_key(),
        received_at=ada.clock(),
        filename="roster.yaml",
        content=roster_with_rita_in("America").encode(),
        caption="",
    )
    reply = await ada.handle(event)
    assert OUR_FAULT not in reply
    assert reply.splitlines() == [
        "bot> roster.yaml was not loaded — 1 problem(s):",
        "     roster.yaml:11:83: people[2].timezone: "
        "unknown time zone; use an IANA name such as Europe/Berlin",
    ]
    assert snapshot(db.engine) == before


@pytest.mark.parametrize("zone", ["America", "Europe", "localtime"])
def test_roster_load_refuses_a_time_zone_area_naming_the_row_and_writes_nothing(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    for name in (str(field.validation_alias) for field in Settings.model_fields.values()):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no developer `.env`
    load_content(db.engine)
    roster = tmp_path / "roster.yaml"
    roster.write_text(roster_with_rita_in(zone), encoding="utf-8")
    before = snapshot(db.engine)

    result = CliRunner().invoke(app, ["roster", "load", str(roster)], env={"DATABASE_URL": db.url})

    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{roster}:11:83: people[2].timezone: unknown time zone; use an IANA name such as Europe/Berlin",
        "1 problem(s) found; nothing was written.",
    ]
    assert snapshot(db.engine) == before
