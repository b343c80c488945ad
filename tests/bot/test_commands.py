"""What a rep types after `log` and `pause`: what is stored, and what is refused with a message for them.

Every refusal is a :class:`CommandError` (the engine shows its text); any other exception would reach the
rep as "something went wrong on my side".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from bot.commands import CommandError, LogRequest, parse_log, parse_pause

TODAY = date(2026, 12, 2)
COUNT_ERROR = "The count must be a whole number between 1 and 1000."
FOLLOW_UP_USAGE = "Give the follow-up date as YYYY-MM-DD, e.g. `follow-up 2026-12-10`."
PAUSE_USAGE = "Use `pause until YYYY-MM-DD`, e.g. `pause until 2026-12-24`."
JAN_10 = date(2027, 1, 10)


def _log(args: str) -> tuple[str, int, date | None, str | None]:
    request = parse_log(args, today=TODAY)
    assert isinstance(request, LogRequest)
    return request.type_word, request.count, request.follow_up_on, request.note


def _refusal(parse: Callable[..., object], args: str) -> str:
    with pytest.raises(CommandError) as caught:
        parse(args, today=TODAY)
    return str(caught.value)


# --- log: what is stored ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "stored"),
    [
        pytest.param("visit", ("visit", 1, None, None), id="type-only"),
        pytest.param("Visits 3", ("visits", 3, None, None), id="count"),
        pytest.param("visit 1000", ("visit", 1000, None, None), id="largest-count"),
        pytest.param("visit 3 Dr Rao liked it", ("visit", 3, None, "Dr Rao liked it"), id="count-and-note"),
        pytest.param("visit Dr Rao", ("visit", 1, None, "Dr Rao"), id="note-without-count"),
        pytest.param(
            "visit 1 follow-up 2027-01-10 Dr Rao", ("visit", 1, JAN_10, "Dr Rao"), id="follow-up-dashed"
        ),
        pytest.param(
            "visit 2 follow up 2027-01-10 Dr Rao", ("visit", 2, JAN_10, "Dr Rao"), id="follow-up-two-words"
        ),
        pytest.param(
            "visit 2 Follow Up 2027-01-10", ("visit", 2, JAN_10, None), id="follow-up-two-words-caps"
        ),
        pytest.param("visit followup 2027-01-10", ("visit", 1, JAN_10, None), id="followup-one-word"),
        pytest.param("visit FOLLOW-UP 2027-01-10", ("visit", 1, JAN_10, None), id="follow-up-upper-case"),
        pytest.param("visit 4 fu 2027-01-10 call back", ("visit", 4, JAN_10, "call back"), id="fu"),
        pytest.param("visit Fu 2026-12-02", ("visit", 1, TODAY, None), id="fu-today"),
        pytest.param("follow-up 2", ("follow-up", 2, None, None), id="the-follow-up-type"),
        pytest.param(
            "visit follow the new guideline",
            ("visit", 1, None, "follow the new guideline"),
            id="follow-without-up-is-a-note",
        ),
        pytest.param("visit 1st call", ("visit", 1, None, "1st call"), id="a-word-with-a-digit-is-a-note"),
        pytest.param("visit 007", ("visit", 7, None, None), id="leading-zeros"),
        pytest.param("visit " + "0" * 5000 + "7", ("visit", 7, None, None), id="more-zeros-than-int-reads"),
        pytest.param(
            "visit 2026-11-30 Dr Rao", ("visit", 1, None, "2026-11-30 Dr Rao"), id="a-date-is-a-note"
        ),
    ],
)
def test_log_reads_type_count_follow_up_and_note(
    args: str, stored: tuple[str, int, date | None, str | None]
) -> None:
    assert _log(args) == stored


# --- log: what is refused -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "count",
    [
        pytest.param("-3", id="negative"),
        pytest.param("+3", id="signed"),
        pytest.param("\u22123", id="unicode-minus"),
        pytest.param("3.5", id="decimal"),
        pytest.param("3,5", id="decimal-comma"),
        pytest.param("1,000", id="thousands-comma"),
        pytest.param("1_000", id="underscore"),
        pytest.param("0", id="zero"),
        pytest.param("1001", id="too-many"),
        pytest.param("9" * 5000, id="more-digits-than-int-reads"),
        pytest.param("\u00b2", id="superscript-two"),
        pytest.param("\u0663", id="arabic-indic-three"),
        pytest.param("\uff13", id="fullwidth-three"),
        pytest.param("\u00bd", id="one-half"),
    ],
)
def test_log_refuses_a_count_that_is_not_a_whole_number_from_1_to_1000(count: str) -> None:
    """Such a count was stored as a note on 1 activity, or crashed the command ('²', '9' * 5000)."""
    assert _refusal(parse_log, f"visits {count} Dr Rao") == COUNT_ERROR


@pytest.mark.parametrize(
    ("args", "reply"),
    [
        pytest.param("visit 2 follow up 2026-12-01 Dr Rao", "That follow-up date is in the past.", id="past"),
        pytest.param("visit follow up", FOLLOW_UP_USAGE, id="two-words-no-date"),
        pytest.param("visit follow up next week", FOLLOW_UP_USAGE, id="two-words-no-iso-date"),
        pytest.param("visit fu 20270110", FOLLOW_UP_USAGE, id="compact-iso-date"),
        pytest.param("visit follow-up 2027-W02-1", FOLLOW_UP_USAGE, id="iso-week-date"),
        pytest.param("visit follow-up 2027-1-10", FOLLOW_UP_USAGE, id="one-digit-month"),
        pytest.param(
            "visit follow-up \u0662\u0660\u0662\u0667-01-10", FOLLOW_UP_USAGE, id="arabic-indic-year"
        ),
        pytest.param(
            "visit follow-up 2027-13-01", f"There is no date 2027-13-01. {FOLLOW_UP_USAGE}", id="month-13"
        ),
        pytest.param(
            "visit follow up 2027-02-29", f"There is no date 2027-02-29. {FOLLOW_UP_USAGE}", id="feb-29"
        ),
    ],
)
def test_log_refuses_a_follow_up_without_a_usable_date(args: str, reply: str) -> None:
    assert _refusal(parse_log, args) == reply


# --- pause ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "outcome"),
    [
        pytest.param("", None, id="until-resumed"),
        pytest.param("until 2026-12-24", date(2026, 12, 24), id="until-date"),
        pytest.param("UNTIL 2026-12-02", TODAY, id="until-today"),
        pytest.param("2027-01-04", date(2027, 1, 4), id="date-without-until"),
        pytest.param("until 2026-13-01", f"There is no date 2026-13-01. {PAUSE_USAGE}", id="month-13"),
        pytest.param("until 2026-12-32", f"There is no date 2026-12-32. {PAUSE_USAGE}", id="day-32"),
        pytest.param("until 0000-01-01", f"There is no date 0000-01-01. {PAUSE_USAGE}", id="year-0"),
        pytest.param("until 20261224", PAUSE_USAGE, id="compact-iso-date"),
        pytest.param("until 2026-W52", PAUSE_USAGE, id="iso-week"),
        pytest.param("until 2026W524", PAUSE_USAGE, id="compact-iso-week-date"),
        pytest.param("until soon", PAUSE_USAGE, id="a-word"),
        pytest.param("until 2026-11-30", "That date is in the past.", id="past"),
        pytest.param("until", "Use `pause` or `pause until YYYY-MM-DD`.", id="no-date"),
        pytest.param("until 2026-12-24 please", "Use `pause` or `pause until YYYY-MM-DD`.", id="extra-words"),
    ],
)
def test_pause_takes_nothing_or_a_real_date_from_today(args: str, outcome: date | str | None) -> None:
    """'20261224' and '2026-W52' were taken by date.fromisoformat as days the rep did not write."""
    if isinstance(outcome, str):
        assert _refusal(parse_pause, args) == outcome
    else:
        assert parse_pause(args, today=TODAY) == outcome


# --- nothing but CommandError ---------------------------------------------------------------------

ODD_WORDS = [
    "\u00b2",
    "\u00b9\u00b2",
    "\u0663",
    "\u2167",
    "\u4e09",
    "\u00bd",
    "-",
    "--3",
    "3-",
    ".",
    "1e3",
    "0x10",
    "inf",
    "nan",
    "\x00",
    "9" * 5000,
    "2026-02-30",
    "9999-12-31",
    "0001-01-01",
    "follow",
    "up",
]


def _parsed_or_refused(parse: Callable[..., object], args: str) -> None:
    try:
        parse(args, today=TODAY)
    except CommandError as exc:
        message = str(exc)
        assert message, f"{args!r} was refused without a message"


@pytest.mark.parametrize("word", ODD_WORDS)
def test_odd_input_is_parsed_or_refused_with_a_message_never_a_crash(word: str) -> None:
    for args in (
        f"visit {word}",
        f"visit {word} {word}",
        f"visit follow-up {word}",
        f"visit follow up {word}",
        f"visit 2 fu {word} note",
    ):
        _parsed_or_refused(parse_log, args)
    for args in (word, f"until {word}"):
        _parsed_or_refused(parse_pause, args)
