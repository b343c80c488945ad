"""Rosters in YAML and CSV: the samples agree, and every mistake is reported where it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from content.problems import ContentError, Problem
from content.roster import (
    ValidatedRoster,
    parse_roster_csv,
    parse_roster_yaml,
    read_roster_file,
    to_import,
)
from storage.models import Role
from storage.people import PersonImport
from tests.conftest import REPO

SAMPLES = REPO / "content" / "samples"
YAML_FILE = "roster.yaml"
CSV_FILE = "roster.csv"
BOM = b"\xef\xbb\xbf"


def yaml_errors(text: str) -> list[Problem]:
    with pytest.raises(ContentError) as info:
        parse_roster_yaml(text, file=YAML_FILE)
    return info.value.errors


def csv_errors(data: bytes) -> list[Problem]:
    with pytest.raises(ContentError) as info:
        parse_roster_csv(data, file=CSV_FILE)
    return info.value.errors


def by_email(roster: ValidatedRoster) -> dict[str, PersonImport]:
    return {person.email: person for person in to_import(roster).people}


# ------------------------------------------------------------------------------------------- samples


@pytest.fixture(scope="module")
def sample_yaml() -> ValidatedRoster:
    return read_roster_file(SAMPLES / "roster.yaml")


@pytest.fixture(scope="module")
def sample_csv() -> ValidatedRoster:
    return read_roster_file(SAMPLES / "roster.csv")


def test_samples_are_read_in_their_own_format(
    sample_yaml: ValidatedRoster, sample_csv: ValidatedRoster
) -> None:
    assert not sample_yaml.from_csv
    assert sample_csv.from_csv
    assert sample_yaml.file == str(SAMPLES / "roster.yaml")


def test_sample_yaml_roster_describes_the_teams(sample_yaml: ValidatedRoster) -> None:
    teams = {team.key: team for team in to_import(sample_yaml).teams}
    assert set(teams) == {"cardio-north", "saas-east"}
    assert teams["cardio-north"].manager_email == "priya@example.com"
    assert teams["cardio-north"].packs == ("pharma-cardio",)
    assert teams["saas-east"].manager_email == "marcus@example.com"
    assert teams["saas-east"].packs == ("b2b-software",)
    assert (teams["saas-east"].digest_day, teams["saas-east"].digest_time) == (0, "08:30")
    assert (teams["saas-east"].working_hours_start, teams["saas-east"].working_hours_end) == (
        "08:30",
        "17:30",
    )


def test_sample_rosters_describe_the_same_people(
    sample_yaml: ValidatedRoster, sample_csv: ValidatedRoster
) -> None:
    from_yaml = by_email(sample_yaml)
    from_csv = by_email(sample_csv)
    assert len(from_yaml) == 13
    assert from_csv == from_yaml


def test_sample_roster_facts(sample_yaml: ValidatedRoster) -> None:
    people = by_email(sample_yaml)
    roles = [person.role for person in people.values()]
    assert (roles.count(Role.MANAGER), roles.count(Role.REP), roles.count(Role.ADMIN)) == (2, 10, 1)
    alex = people["alex@example.com"]
    assert (alex.team_key, alex.timezone, alex.telegram, alex.slack) == (
        "cardio-north",
        "Europe/Berlin",
        "100002",
        None,
    )
    assert (alex.session_time, alex.per_day, alex.workdays) == ("08:45", 2, None)
    assert people["maya@example.com"].slack == ("T0001", "U0004")
    assert people["ethan@example.com"].workdays == "mon,wed,fri"
    assert people["chloe@example.com"].timezone == "America/Chicago"
    sam = people["sam@example.com"]
    assert (sam.role, sam.team_key, sam.timezone) == (Role.ADMIN, None, "Europe/London")


# -------------------------------------------------------------------------------------- YAML errors

ROSTER_YAML = """\
# A small roster for tests.
teams:
  - key: north
    name: North
    manager: priya@example.com
    packs: [pharma-cardio]
    schedule: {time: "09:30", working_hours: ["08:00", "18:00"]}
  - key: south
    name: South
people:
  - email: priya@example.com
    name: Priya Shah
    role: manager
    timezone: Europe/Berlin
    telegram: 100001
    slack: {team: T0001, user: U0001}
  - email: alex@example.com
    name: Alex Kim
    role: rep
    team: north
    timezone: Europe/Berlin
    telegram: 100002
    schedule: {time: "08:45"}
  - email: sam@example.com
    name: Sam Ortiz
    role: admin
    timezone: Europe/London
"""


def test_base_yaml_roster_is_valid() -> None:
    roster = parse_roster_yaml(ROSTER_YAML, file=YAML_FILE)
    assert [person.email for person in roster.spec.people] == [
        "priya@example.com",
        "alex@example.com",
        "sam@example.com",
    ]


MARK = "# <- here"

# (id, old, new, token the problem points at, message fragment). ``new`` carries MARK on the broken line.
YAML_BREAKAGES = [
    (
        "bad-timezone",
        "    timezone: Europe/Berlin\n    telegram: 100002\n",
        f"    timezone: Mars/Olympus  {MARK}\n    telegram: 100002\n",
        "Mars",
        "unknown time zone",
    ),
    (
        "bad-email",
        "  - email: alex@example.com\n",
        f"  - email: alex-at-example.com  {MARK}\n",
        "alex",
        "not an email address",
    ),
    ("unknown-role", "    role: rep\n", f"    role: ceo  {MARK}\n", "ceo", "role: Input should be 'rep'"),
    (
        "rep-without-team",
        "  - email: alex@example.com\n    name: Alex Kim\n    role: rep\n    team: north\n",
        f"  - email: alex@example.com  {MARK}\n    name: Alex Kim\n    role: rep\n",
        "email",
        "a rep needs a team",
    ),
    ("unknown-team", "    team: north\n", f"    team: west  {MARK}\n", "west", "unknown team 'west'"),
    (
        "manager-not-in-people",
        "    manager: priya@example.com\n",
        f"    manager: boss@example.com  {MARK}\n",
        "boss",
        "manager boss@example.com is not in people",
    ),
    (
        "manager-is-a-rep",
        "    manager: priya@example.com\n",
        f"    manager: alex@example.com  {MARK}\n",
        "alex",
        "has role rep, not manager or admin",
    ),
    (
        "duplicate-email",
        "  - email: sam@example.com\n",
        f"  - email: alex@example.com  {MARK}\n",
        "alex",
        "duplicate person alex@example.com",
    ),
    (
        "duplicate-email-other-case",
        "  - email: sam@example.com\n",
        f"  - email: Alex@Example.COM  {MARK}\n",
        "Alex",
        "duplicate person alex@example.com",
    ),
    (
        "same-telegram-id",
        "    telegram: 100002\n",
        f"    telegram: 100001  {MARK}\n",
        "100001",
        "telegram id 100001 is already given to priya@example.com",
    ),
    (
        "same-slack-id",
        "    role: admin\n",
        f"    role: admin\n    slack: {{team: T0001, user: U0001}}  {MARK}\n",
        "{",
        "slack id T0001/U0001 is already given to priya@example.com",
    ),
    (
        "clock-out-of-range",
        '    schedule: {time: "08:45"}\n',
        f'    schedule: {{time: "25:00"}}  {MARK}\n',
        '"25:00"',
        "HH:MM",
    ),
    (
        "working-hours-out-of-order",
        '    schedule: {time: "09:30", working_hours: ["08:00", "18:00"]}\n',
        f'    schedule: {{time: "09:30", working_hours: ["18:00", "08:00"]}}  {MARK}\n',
        '["18:00"',
        "working_hours must start before they end",
    ),
    (
        "per-day-zero",
        '    schedule: {time: "08:45"}\n',
        f"    schedule: {{per_day: 0}}  {MARK}\n",
        "0",
        "per_day",
    ),
    (
        "duplicate-team",
        "  - key: south\n",
        f"  - key: north  {MARK}\n",
        "north",
        "duplicate team key 'north'",
    ),
    (
        "typo-key",
        "    timezone: Europe/London\n",
        f"    timezon: Europe/London  {MARK}\n",
        "timezon",
        "unknown key 'timezon' (did you mean 'timezone'?)",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "token", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in YAML_BREAKAGES],
)
def test_yaml_roster_error_points_at_the_line(old: str, new: str, token: str, message: str) -> None:
    assert ROSTER_YAML.count(old) == 1
    text = ROSTER_YAML.replace(old, new)
    [(line, content)] = [(n, s) for n, s in enumerate(text.splitlines(), start=1) if MARK in s]
    column = content.index(token) + 1

    problems = yaml_errors(text)

    matching = [p for p in problems if message in p.message]
    assert len(matching) == 1, [str(p) for p in problems]
    assert (matching[0].line, matching[0].column) == (line, column), str(matching[0])
    assert str(matching[0]).startswith(f"{YAML_FILE}:{line}:{column}: ")


def test_every_yaml_problem_is_reported() -> None:
    text = (
        ROSTER_YAML.replace("    timezone: Europe/London\n", "    timezone: Mars/Olympus\n")
        .replace("    team: north\n", "    team: west\n")
        .replace("    manager: priya@example.com\n", "    manager: boss@example.com\n")
    )
    problems = yaml_errors(text)
    assert len(problems) == 3
    assert [p.line for p in problems] == sorted(p.line for p in problems)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("- a\n- b\n", id="list"),
        pytest.param("", id="empty"),
        pytest.param("teams: []\n", id="no-people"),
    ],
)
def test_malformed_yaml_roster_is_refused(text: str) -> None:
    assert yaml_errors(text)


def test_unquoted_clock_time_is_read_as_a_time() -> None:
    text = ROSTER_YAML.replace('schedule: {time: "08:45"}', "schedule: {time: 08:45}")
    alex = parse_roster_yaml(text, file=YAML_FILE).spec.people[1]
    assert alex.schedule.time == "08:45"


# --------------------------------------------------------------------------------------- CSV errors

CSV_HEADER = "email,name,role,team,timezone,slack_team,slack_user,telegram_user,session_time,days,per_day"
CSV_ROWS = [
    "priya@example.com,Priya Shah,manager,north,Europe/Berlin,T0001,U0001,100001,,,",
    "alex@example.com,Alex Kim,rep,north,Europe/Berlin,,,100002,08:45,mon tue,2",
    "sam@example.com,Sam Ortiz,admin,,Europe/London,,,,,,",
]


def roster_csv(*rows: str, header: str = CSV_HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


def test_base_csv_roster_is_valid() -> None:
    people = by_email(parse_roster_csv(roster_csv(*CSV_ROWS), file=CSV_FILE))
    assert list(people) == ["priya@example.com", "alex@example.com", "sam@example.com"]
    assert people["priya@example.com"].slack == ("T0001", "U0001")
    assert people["alex@example.com"].workdays == "mon,tue"
    assert people["alex@example.com"].per_day == 2


ALEX = CSV_ROWS[1]

# (id, row index to replace, replacement, column (None: any), message fragment)
CSV_BREAKAGES = [
    ("bad-timezone", 1, ALEX.replace("Europe/Berlin", "Mars/Olympus"), "timezone", "unknown time zone"),
    ("bad-email", 1, ALEX.replace("alex@example.com", "alex-at-example"), "email", "not an email address"),
    ("unknown-role", 1, ALEX.replace(",rep,", ",ceo,"), "role", "Input should be 'rep'"),
    # A row-level rule: any column name will do, as long as the line is right.
    ("rep-without-team", 1, ALEX.replace(",north,", ",,"), None, "a rep needs a team"),
    ("clock-out-of-range", 1, ALEX.replace("08:45", "25:00"), "session_time", "HH:MM"),
    ("unknown-day", 1, ALEX.replace("mon tue", "mon funday"), "days", "unknown day"),
    ("per-day-zero", 1, ALEX.replace(",mon tue,2", ",mon tue,0"), "per_day", "greater than or equal to 1"),
    ("telegram-not-a-number", 1, ALEX.replace("100002", "@alex"), "telegram_user", "valid integer"),
    ("duplicate-email", 2, CSV_ROWS[2].replace("sam@example.com", "ALEX@example.com"), "email", "duplicate"),
    (
        "same-telegram-id",
        1,
        ALEX.replace("100002", "100001"),
        "telegram_user",
        "100001 is already given to priya@example.com",
    ),
    (
        "same-slack-id",
        2,
        CSV_ROWS[2].replace(",,,,,,", ",T0001,U0001,,,,"),
        "slack_team/slack_user",
        "T0001/U0001 is already given to priya@example.com",
    ),
]


@pytest.mark.parametrize(
    ("index", "row", "column", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in CSV_BREAKAGES],
)
def test_csv_roster_error_names_line_and_column(
    index: int, row: str, column: str | None, message: str
) -> None:
    rows = list(CSV_ROWS)
    assert rows[index] != row
    rows[index] = row
    line = index + 2  # the header is line 1

    problems = csv_errors(roster_csv(*rows))

    matching = [p for p in problems if message in p.message]
    assert len(matching) == 1, [str(p) for p in problems]
    prefix = f"{CSV_FILE}:{line}: column " + ("" if column is None else f"{column}: ")
    assert str(matching[0]).startswith(prefix), str(matching[0])


def test_every_bad_csv_row_is_reported() -> None:
    rows = [
        CSV_ROWS[0],
        ALEX.replace("Europe/Berlin", "Mars/Olympus"),
        CSV_ROWS[2].replace(",admin,", ",boss,"),
    ]
    problems = csv_errors(roster_csv(*rows))
    assert [p.line for p in problems] == [3, 4]


def test_csv_line_numbers_count_blank_lines() -> None:
    problems = csv_errors(roster_csv(CSV_ROWS[0], "", ",,,,,,,,,,", ALEX.replace(",rep,", ",ceo,")))
    assert [p.line for p in problems] == [5]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        pytest.param(CSV_HEADER + ",phone", "unknown column 'phone'", id="unknown-column"),
        pytest.param(CSV_HEADER.replace(",role", ""), "missing column 'role'", id="missing-column"),
        pytest.param(CSV_HEADER + ",email", "column 'email' appears twice", id="duplicate-column"),
    ],
)
def test_csv_header_problems(header: str, message: str) -> None:
    problems = csv_errors(roster_csv(header=header))
    assert [str(p) for p in problems] == [f"{CSV_FILE}:1: {message}"]


def test_csv_header_is_case_insensitive_and_columns_optional() -> None:
    data = roster_csv("Sam@Example.com,Sam Ortiz,admin", header="Email,Name, ROLE ")
    [sam] = parse_roster_csv(data, file=CSV_FILE).spec.people
    assert (sam.email, sam.role, sam.timezone) == ("sam@example.com", Role.ADMIN, None)


def test_csv_row_with_wrong_field_count_is_named() -> None:
    problems = csv_errors(roster_csv(CSV_ROWS[0], CSV_ROWS[1] + ",extra"))
    assert [str(p) for p in problems] == [f"{CSV_FILE}:3: expected 11 fields, found 12"]


def test_empty_csv_is_refused() -> None:
    assert "header" in csv_errors(b"")[0].message


def test_csv_invalid_utf8_names_the_line() -> None:
    data = roster_csv(*CSV_ROWS).replace(b"Sam Ortiz", b"S\xe4m Ortiz")
    assert [p.line for p in csv_errors(data)] == [4]


def test_csv_with_bom_is_accepted() -> None:
    plain = parse_roster_csv(roster_csv(*CSV_ROWS), file=CSV_FILE)
    with_bom = parse_roster_csv(BOM + roster_csv(*CSV_ROWS), file=CSV_FILE)
    assert by_email(with_bom) == by_email(plain)


def test_yaml_with_bom_is_accepted() -> None:
    roster = parse_roster_yaml(BOM + ROSTER_YAML.encode("utf-8"), file=YAML_FILE)
    assert len(roster.spec.people) == 3


def test_sample_csv_with_bom_and_crlf_is_accepted(tmp_path: Path, sample_csv: ValidatedRoster) -> None:
    path = tmp_path / "excel-export.csv"
    path.write_bytes(BOM + (SAMPLES / "roster.csv").read_bytes().replace(b"\n", b"\r\n"))
    assert by_email(read_roster_file(path)) == by_email(sample_csv)


# ---------------------------------------------------------------------------------------------- days


@pytest.mark.parametrize(
    "days",
    ["mon tue", "Monday,Tuesday", "MON;Tue", " monday , tuesday ", "mon, Tuesday"],
)
def test_csv_days_spellings(days: str) -> None:
    row = ALEX.replace("mon tue", f'"{days}"')
    alex = by_email(parse_roster_csv(roster_csv(row), file=CSV_FILE))["alex@example.com"]
    assert alex.workdays == "mon,tue"


@pytest.mark.parametrize("days", ['"mon tue"', '"Monday,Tuesday"', "[Monday, tue]", "[mon, TUESDAY]"])
def test_yaml_days_spellings(days: str) -> None:
    text = ROSTER_YAML.replace('schedule: {time: "08:45"}', f"schedule: {{days: {days}}}")
    alex = parse_roster_yaml(text, file=YAML_FILE).spec.people[1]
    assert alex.schedule.days == ["mon", "tue"]


def test_empty_days_are_refused() -> None:
    text = ROSTER_YAML.replace('schedule: {time: "08:45"}', "schedule: {days: []}")
    assert any("days" in p.message for p in yaml_errors(text))


# ----------------------------------------------------------------------------------------- schedules


def test_team_schedule_defaults_fill_what_is_not_given() -> None:
    teams = {team.key: team for team in to_import(parse_roster_yaml(ROSTER_YAML, file=YAML_FILE)).teams}
    north, south = teams["north"], teams["south"]
    assert (north.session_time, north.working_hours_start, north.working_hours_end) == (
        "09:30",
        "08:00",
        "18:00",
    )
    assert (north.workdays, north.per_day) == ("mon,tue,wed,thu,fri", 3)
    assert (south.session_time, south.workdays, south.per_day) == ("09:30", "mon,tue,wed,thu,fri", 3)
    assert (south.working_hours_start, south.working_hours_end) == ("08:00", "18:00")
    assert (south.digest_day, south.digest_time) == (0, "09:00")
    assert (south.manager_email, south.packs) == (None, ())


def test_person_schedule_stays_unset_unless_given() -> None:
    people = by_email(parse_roster_yaml(ROSTER_YAML, file=YAML_FILE))
    priya, alex = people["priya@example.com"], people["alex@example.com"]
    assert (
        priya.session_time,
        priya.workdays,
        priya.per_day,
        priya.working_hours_start,
        priya.working_hours_end,
    ) == (None, None, None, None, None)
    assert (alex.session_time, alex.workdays, alex.per_day, alex.working_hours_start) == (
        "08:45",
        None,
        None,
        None,
    )


def test_person_schedule_is_unset_in_csv_too() -> None:
    sam = by_email(parse_roster_csv(roster_csv(*CSV_ROWS), file=CSV_FILE))["sam@example.com"]
    assert (sam.session_time, sam.workdays, sam.per_day, sam.telegram, sam.slack, sam.team_key) == (
        None,
        None,
        None,
        None,
        None,
        None,
    )


def test_digest_day_is_a_weekday_index() -> None:
    text = ROSTER_YAML.replace(
        "    name: South\n", '    name: South\n    digest: {day: Friday, time: "16:00"}\n'
    )
    south = {t.key: t for t in to_import(parse_roster_yaml(text, file=YAML_FILE)).teams}["south"]
    assert (south.digest_day, south.digest_time) == (4, "16:00")


# ------------------------------------------------------------------------------------------- files


@pytest.mark.parametrize(
    ("name", "content", "from_csv"),
    [
        pytest.param("team.yaml", ROSTER_YAML.encode(), False, id="yaml"),
        pytest.param("team.yml", ROSTER_YAML.encode(), False, id="yml"),
        pytest.param("team.csv", roster_csv(*CSV_ROWS), True, id="csv"),
        pytest.param("TEAM.CSV", roster_csv(*CSV_ROWS), True, id="csv-upper"),
    ],
)
def test_read_roster_file_picks_the_format(tmp_path: Path, name: str, content: bytes, from_csv: bool) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    roster = read_roster_file(path)
    assert roster.from_csv is from_csv
    assert roster.file == str(path)
    assert len(roster.spec.people) == 3


def test_read_roster_file_names_the_file_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "team.csv"
    path.write_bytes(roster_csv(ALEX.replace(",rep,", ",ceo,")))
    with pytest.raises(ContentError) as info:
        read_roster_file(path)
    assert str(info.value.errors[0]).startswith(f"{path}:2: column role: ")


def test_missing_roster_file_is_a_content_error(tmp_path: Path) -> None:
    with pytest.raises(ContentError) as info:
        read_roster_file(tmp_path / "nope.yaml")
    assert "no such file" in info.value.errors[0].message
