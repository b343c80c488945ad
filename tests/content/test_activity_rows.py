"""Activity files: every bad row is named by line and column, and row keys make re-imports idempotent."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from content.activities import KnownPerson, parse_activity_rows, read_activity_csv
from content.packs import read_pack_file
from content.problems import ContentError, Problem
from content.roster import read_roster_file
from storage.activities import ActivityImport
from tests.conftest import REPO

SAMPLES = REPO / "content" / "samples"
FILE = "activities.csv"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BOM = b"\xef\xbb\xbf"
HEADER = "email,type,occurred_at,count,value,account,external_id,note,follow_up_on"

PEOPLE = {
    "alex@example.com": KnownPerson(id=1, timezone="Europe/Berlin"),
    "dana@example.com": KnownPerson(id=2, timezone="America/New_York"),
    "sam@example.com": KnownPerson(id=3, timezone=None),
}
TYPES = {"visit": "Doctor visit", "engaged_visit": "Visit with a clinical discussion", "first_rx": "First Rx"}
DEFAULT_TZ = "Europe/London"


def csv_bytes(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


def parse(
    data: bytes,
    *,
    people: dict[str, KnownPerson] | None = None,
    types: dict[str, str] | None = None,
    now: datetime = NOW,
) -> list[ActivityImport]:
    rows = read_activity_csv(data, file=FILE)
    return parse_activity_rows(
        rows,
        file=FILE,
        people=PEOPLE if people is None else people,
        activity_types=TYPES if types is None else types,
        default_timezone=DEFAULT_TZ,
        now=now,
    )


def errors(data: bytes) -> list[Problem]:
    with pytest.raises(ContentError) as info:
        parse(data)
    return info.value.errors


# ------------------------------------------------------------------------------------------- samples


@pytest.fixture(scope="module")
def sample_people() -> dict[str, KnownPerson]:
    roster = read_roster_file(SAMPLES / "roster.yaml")
    return {
        person.email: KnownPerson(id=number, timezone=person.timezone)
        for number, person in enumerate(roster.spec.people, start=1)
    }


@pytest.fixture(scope="module")
def pack_types() -> dict[str, str]:
    return {
        activity_type.key: activity_type.name
        for path in sorted((REPO / "content" / "packs").glob("*.yaml"))
        for activity_type in read_pack_file(path).spec.activity_types
    }


def test_sample_activities_parse(sample_people: dict[str, KnownPerson], pack_types: dict[str, str]) -> None:
    data = (SAMPLES / "activities.csv").read_bytes()
    data_lines = len([line for line in data.decode("utf-8").splitlines()[1:] if line.strip()])

    imports = parse(data, people=sample_people, types=pack_types)

    assert len(imports) == data_lines > 500
    keys = [activity.external_key for activity in imports]
    assert len(set(keys)) == len(keys)
    assert {activity.person_id for activity in imports} <= {person.id for person in sample_people.values()}
    assert {activity.type_key for activity in imports} <= set(pack_types)
    assert all(activity.occurred_at.tzinfo is not None for activity in imports)
    first = imports[0]
    assert first == ActivityImport(
        person_id=sample_people["alex@example.com"].id,
        type_key="follow_up",
        occurred_at=datetime(2026, 10, 5, 6, 5, tzinfo=UTC),
        count=1,
        value=None,
        account=None,
        note=None,
        follow_up_on=None,
        external_key="ext:CRM-000170",
    )
    followed = [activity for activity in imports if activity.follow_up_on is not None]
    assert date(2026, 10, 12) in {activity.follow_up_on for activity in followed}
    assert any(activity.value == 18.0 and activity.type_key == "first_rx" for activity in imports)


def test_sample_activities_keys_are_stable(
    sample_people: dict[str, KnownPerson], pack_types: dict[str, str]
) -> None:
    data = (SAMPLES / "activities.csv").read_bytes()
    first = parse(data, people=sample_people, types=pack_types)
    second = parse(data, people=sample_people, types=pack_types)
    assert first == second


# ---------------------------------------------------------------------------------------- happy rows

GOOD = [
    "alex@example.com,visit,2026-11-03T10:00:00+01:00,3,,Praxis Dr. Rao,CRM-1,Left samples,2026-11-10",
    "dana@example.com,engaged_visit,2026-11-03T09:30:00-05:00,,,,,,",
    "alex@example.com,first_rx,2026-11-04,1,21.5,,CRM-2,,",
]


def test_good_rows_become_imports() -> None:
    visit, engaged, first_rx = parse(csv_bytes(*GOOD))
    assert (visit.person_id, visit.type_key, visit.count, visit.account, visit.note) == (
        1,
        "visit",
        3,
        "Praxis Dr. Rao",
        "Left samples",
    )
    assert visit.occurred_at == datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    assert visit.follow_up_on == date(2026, 11, 10)
    assert (engaged.count, engaged.value, engaged.account, engaged.note, engaged.follow_up_on) == (
        1,
        None,
        None,
        None,
        None,
    )
    assert engaged.occurred_at == datetime(2026, 11, 3, 14, 30, tzinfo=UTC)
    assert first_rx.value == 21.5


def test_email_is_matched_case_insensitively() -> None:
    [activity] = parse(csv_bytes(GOOD[0].replace("alex@example.com", " Alex@Example.COM ")))
    assert activity.person_id == 1


# ------------------------------------------------------------------------------------------ bad rows

BAD_ROWS = [
    ("unknown-email", "zed@example.com,visit,2026-11-03T10:00:00,,,,,,", "email", "zed@example.com"),
    ("not-an-email", "alex,visit,2026-11-03T10:00:00,,,,,,", "email", "not an email"),
    (
        "unknown-type",
        "alex@example.com,vist,2026-11-03T10:00:00,,,,,,",
        "type",
        "unknown activity type 'vist'",
    ),
    ("bad-date", "alex@example.com,visit,2026-13-03T10:00:00,,,,,,", "occurred_at", "ISO 8601"),
    ("not-a-date", "alex@example.com,visit,yesterday,,,,,,", "occurred_at", "ISO 8601"),
    ("missing-date", "alex@example.com,visit,,,,,,,", "occurred_at", "required"),
    ("count-abc", "alex@example.com,visit,2026-11-03T10:00:00,abc,,,,,", "count", "whole number"),
    ("count-zero", "alex@example.com,visit,2026-11-03T10:00:00,0,,,,,", "count", "between 1"),
    ("count-negative", "alex@example.com,visit,2026-11-03T10:00:00,-2,,,,,", "count", "between 1"),
    ("count-fraction", "alex@example.com,visit,2026-11-03T10:00:00,1.5,,,,,", "count", "whole number"),
    ("value-nan", "alex@example.com,first_rx,2026-11-03T10:00:00,1,NaN,,,,", "value", "finite"),
    ("value-inf", "alex@example.com,first_rx,2026-11-03T10:00:00,1,inf,,,,", "value", "finite"),
    ("value-text", "alex@example.com,first_rx,2026-11-03T10:00:00,1,twelve,,,,", "value", "not a number"),
    (
        "bad-follow-up",
        "alex@example.com,visit,2026-11-03T10:00:00,,,,,,next week",
        "follow_up_on",
        "YYYY-MM-DD",
    ),
    ("far-future", "alex@example.com,visit,2027-06-01T10:00:00,,,,,,", "occurred_at", "future"),
    ("long-account", f"alex@example.com,visit,2026-11-03T10:00:00,,,{'a' * 201},,,", "account", "200"),
]
BAD_ROW = {case[0]: case[1] for case in BAD_ROWS}


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_ROWS],
)
def test_bad_row_is_named_by_line_and_column(row: str, column: str, message: str) -> None:
    # The bad row sits between good ones: the whole file is refused, and only the bad line is named.
    problems = errors(csv_bytes(GOOD[0], GOOD[1], row, GOOD[2]))
    assert len(problems) == 1, [str(p) for p in problems]
    assert problems[0].line == 4
    assert str(problems[0]).startswith(f"{FILE}:4: column {column}: ")
    assert message in problems[0].message


def test_every_bad_row_is_reported() -> None:
    rows = [
        GOOD[0],
        BAD_ROW["unknown-email"],  # line 3
        GOOD[1],
        BAD_ROW["count-abc"],  # line 5
        BAD_ROW["bad-follow-up"],  # line 6
        GOOD[2],
    ]
    problems = errors(csv_bytes(*rows))
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [
        (3, "column email"),
        (5, "column count"),
        (6, "column follow_up_on"),
    ]


def test_line_numbers_follow_blank_lines_and_multiline_notes() -> None:
    rows = [
        GOOD[0],
        "",
        'alex@example.com,visit,2026-11-03T11:00:00,,,,,"a note\nover two lines",',
        BAD_ROW["unknown-email"],
    ]
    problems = errors(csv_bytes(*rows))
    assert [p.line for p in problems] == [6]


def test_a_slightly_fast_crm_clock_is_accepted() -> None:
    [activity] = parse(csv_bytes("alex@example.com,visit,2026-12-01T14:00:00+00:00,,,,,,"))
    assert activity.occurred_at > NOW


def test_future_is_judged_against_now() -> None:
    row = "alex@example.com,visit,2027-06-01T10:00:00,,,,,,"
    assert parse(csv_bytes(row), now=datetime(2027, 6, 2, tzinfo=UTC))
    with pytest.raises(ContentError):
        parse(csv_bytes(row), now=NOW)


def test_no_activity_types_is_a_clear_error() -> None:
    with pytest.raises(ContentError) as info:
        parse(csv_bytes(GOOD[0]), types={})
    assert "no activity types" in info.value.errors[0].message


# ------------------------------------------------------------------------------------------ time zones


def utc(year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("email", "occurred_at", "expected"),
    [
        pytest.param("alex@example.com", "2026-11-03T10:00", utc(2026, 11, 3, 9), id="berlin-winter"),
        pytest.param("alex@example.com", "2026-10-05T10:00", utc(2026, 10, 5, 8), id="berlin-summer"),
        pytest.param("alex@example.com", "2026-11-03", utc(2026, 11, 2, 23), id="berlin-bare-date"),
        pytest.param("dana@example.com", "2026-11-03", utc(2026, 11, 3, 5), id="new-york-bare-date"),
        pytest.param("dana@example.com", "2026-11-03T10:00", utc(2026, 11, 3, 15), id="new-york"),
        pytest.param("sam@example.com", "2026-07-01T10:00", utc(2026, 7, 1, 9), id="default-zone"),
        pytest.param("alex@example.com", "2026-11-03T10:00Z", utc(2026, 11, 3, 10), id="explicit-utc"),
        pytest.param(
            "alex@example.com", "2026-11-03T10:00-05:00", utc(2026, 11, 3, 15), id="explicit-offset"
        ),
    ],
)
def test_occurred_at_time_zones(email: str, occurred_at: str, expected: datetime) -> None:
    [activity] = parse(csv_bytes(f"{email},visit,{occurred_at},,,,,,"))
    assert activity.occurred_at == expected
    offset = activity.occurred_at.utcoffset()
    assert offset is not None
    assert offset.total_seconds() == 0, "stored in UTC"


# ----------------------------------------------------------------------------------------------- keys

PLAIN = "alex@example.com,visit,2026-11-03T10:00:00,2,,,,,"


def keys(*rows: str) -> list[str]:
    return [activity.external_key for activity in parse(csv_bytes(*rows))]


def test_external_id_gives_the_key() -> None:
    assert keys(GOOD[0], GOOD[2]) == ["ext:CRM-1", "ext:CRM-2"]


def test_identical_rows_without_external_id_get_distinct_keys() -> None:
    found = keys(PLAIN, PLAIN, PLAIN)
    assert len(set(found)) == 3
    assert not any(key.startswith("ext:") for key in found)


def test_same_rows_give_the_same_keys() -> None:
    rows = [PLAIN, GOOD[1], PLAIN, GOOD[0]]
    assert keys(*rows) == keys(*rows)


def test_keys_do_not_depend_on_other_rows() -> None:
    before = keys(PLAIN, GOOD[1], PLAIN)
    after = keys(GOOD[0], PLAIN, "dana@example.com,visit,2026-11-02T10:00:00,,,,,,", GOOD[1], PLAIN)
    assert after[1] == before[0]
    assert after[3] == before[1]
    assert after[4] == before[2]


def test_different_rows_get_different_keys() -> None:
    changed = PLAIN.replace(",2,", ",3,")
    assert keys(PLAIN) != keys(changed)
    assert keys(PLAIN) != keys(PLAIN.replace(",,,,,", ",,,a note,,"))


def test_repeated_external_id_names_both_lines() -> None:
    rows = [GOOD[0], GOOD[1], GOOD[0].replace(",3,", ",4,")]
    problems = errors(csv_bytes(*rows))
    assert len(problems) == 1
    assert problems[0].line == 4
    assert str(problems[0]).startswith(f"{FILE}:4: column external_id: ")
    assert "CRM-1" in problems[0].message
    assert "line 2" in problems[0].message


# ---------------------------------------------------------------------------------------------- files


def test_bom_prefixed_file_works() -> None:
    assert parse(BOM + csv_bytes(*GOOD)) == parse(csv_bytes(*GOOD))


def test_crlf_file_works() -> None:
    assert parse(csv_bytes(*GOOD).replace(b"\n", b"\r\n")) == parse(csv_bytes(*GOOD))


def test_columns_may_be_in_any_order_and_optional_ones_left_out() -> None:
    [activity] = parse(
        csv_bytes("visit,2026-11-03T10:00:00+01:00,alex@example.com", header="type,occurred_at,email")
    )
    assert (activity.person_id, activity.type_key, activity.count) == (1, "visit", 1)
    assert activity.external_key.startswith("row:")


def test_empty_file_needs_a_header() -> None:
    with pytest.raises(ContentError) as info:
        read_activity_csv(b"", file=FILE)
    assert [str(p) for p in info.value.errors] == [f"{FILE}:1: empty file; a header row is required"]


@pytest.mark.parametrize(
    "data",
    [csv_bytes(), csv_bytes("", ",,,,,,,,"), BOM + HEADER.encode()],
    ids=["header-only", "blank-rows", "bom-no-newline"],
)
def test_header_only_file_has_no_rows(data: bytes) -> None:
    assert read_activity_csv(data, file=FILE) == []
    assert parse(data) == []


@pytest.mark.parametrize(
    ("header", "message"),
    [
        pytest.param(HEADER + ",rep", "unknown column 'rep'", id="unknown-column"),
        pytest.param(HEADER.replace("type,", ""), "missing column 'type'", id="missing-column"),
    ],
)
def test_header_problems(header: str, message: str) -> None:
    with pytest.raises(ContentError) as info:
        read_activity_csv(csv_bytes(header=header), file=FILE)
    assert f"{FILE}:1: {message}" in [str(p) for p in info.value.errors]


def test_row_with_too_many_fields_is_named() -> None:
    with pytest.raises(ContentError) as info:
        read_activity_csv(csv_bytes(GOOD[0], GOOD[1] + ",extra"), file=FILE)
    assert [str(p) for p in info.value.errors] == [f"{FILE}:3: expected 9 fields, found 10"]


def test_invalid_utf8_names_the_line() -> None:
    data = csv_bytes(*GOOD).replace(b"Left samples", b"Left \xff samples")
    with pytest.raises(ContentError) as info:
        read_activity_csv(data, file=FILE)
    assert [p.line for p in info.value.errors] == [2]


def test_file_name_is_in_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "crm-export.csv"
    path.write_bytes(csv_bytes(BAD_ROW["unknown-email"]))
    rows = read_activity_csv(path.read_bytes(), file=str(path))
    with pytest.raises(ContentError) as info:
        parse_activity_rows(
            rows, file=str(path), people=PEOPLE, activity_types=TYPES, default_timezone=DEFAULT_TZ, now=NOW
        )
    assert str(info.value.errors[0]).startswith(f"{path}:2: column email: ")
