"""The `coachbot` command line, on SQLite and Postgres: what an admin types and what they are told."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app
from bot.settings import Settings
from tests.conftest import REPO, Database, snapshot

PACKS = sorted((REPO / "content" / "packs").glob("*.yaml"))
SAMPLES = REPO / "content" / "samples"
ROSTER = SAMPLES / "roster.yaml"
ACTIVITIES = SAMPLES / "activities.csv"
SETTING_NAMES = frozenset(str(field.validation_alias) for field in Settings.model_fields.values())
PROBLEM_LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<message>\S.*)$")
HEAVY_MODULES = (
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "psycopg",
    "slack_bolt",
    "slack_sdk",
    "telegram",
    "matplotlib",
    "openai",
    "fsrs",
    "fastapi",
    "uvicorn",
    "apscheduler",
)


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    env.update(extra)
    return env


def run_process(args: list[str], *, cwd: Path, **env: str) -> Outcome:
    """Run `python -m bot ARGS` as a user would: its own process, no `.env` in the working directory."""
    proc = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    outcome = Outcome(proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in outcome.stdout + outcome.stderr, outcome
    return outcome


def run_cli(args: list[str], **env: str) -> Outcome:
    """Run the Typer app in this process; an uncaught exception fails the test."""
    result = CliRunner().invoke(app, args, env=env, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"coachbot {' '.join(args)} raised {result.exception!r}") from result.exception
    outcome = Outcome(result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in outcome.stdout + outcome.stderr, outcome
    return outcome


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """In-process runs see no developer settings and no `.env` file."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def _ok(outcome: Outcome) -> Outcome:
    assert outcome.code == 0, outcome
    return outcome


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _pack_items() -> dict[str, int]:
    counts = {}
    for path in PACKS:
        data = _yaml(path)
        counts[data["pack"]] = len(data["items"])
    return counts


def _roster_people() -> list[dict[str, Any]]:
    people: list[dict[str, Any]] = _yaml(ROSTER)["people"]
    return people


def _activity_rows() -> tuple[list[str], list[list[str]]]:
    with ACTIVITIES.open(encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows


def _never_connected() -> list[str]:
    return sorted(p["email"] for p in _roster_people() if "slack" not in p and "telegram" not in p)


# --- help and import cost -------------------------------------------------------------------------


def test_help_imports_no_heavy_module(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        import bot.cli
        try:
            bot.cli.main(["--help"])
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        else:
            raise AssertionError("--help did not exit")
        heavy = {HEAVY_MODULES!r}
        loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))
        print("HEAVY=" + ",".join(loaded))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "HEAVY=", proc.stdout.splitlines()[-1]


def test_installed_script_lists_the_commands(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "coachbot"
    assert script.exists(), f"{script} is not installed (pip install -e '.[test]')"
    proc = subprocess.run(
        [str(script), "--help"],
        cwd=tmp_path,
        env=_clean_env(COLUMNS="100"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    for command in ("db", "pack", "roster", "activities", "status", "demo"):
        assert re.search(rf"(?m)^\W*{command}\s", proc.stdout), f"{command} not listed:\n{proc.stdout}"


# --- pack validate --------------------------------------------------------------------------------


def test_pack_validate_accepts_the_bundled_packs(tmp_path: Path) -> None:
    assert len(PACKS) == 2
    outcome = _ok(run_process(["pack", "validate", *map(str, PACKS)], cwd=tmp_path))
    for path, (key, count) in zip(PACKS, _pack_items().items(), strict=True):
        line = next((line for line in outcome.lines if line.startswith(f"{path}: ok")), None)
        assert line is not None, outcome.stdout
        assert key in line
        mcqs, roleplays = map(int, re.findall(r"(\d+) (?:MCQs|role-plays)", line))
        assert mcqs + roleplays == count
    assert outcome.stderr == ""


def test_pack_validate_reports_every_problem_with_file_line_and_column(tmp_path: Path) -> None:
    source = PACKS[0]
    text = source.read_text(encoding="utf-8")
    first_item = _yaml(source)["items"][0]["key"]
    marker = f"  - key: {first_item}\n"
    assert text.count(marker) == 1
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace(marker, marker + "    bogus_key: 1\n"), encoding="utf-8")
    bogus_line = broken.read_text(encoding="utf-8").splitlines().index("    bogus_key: 1") + 1
    unparsable = tmp_path / "unparsable.yaml"
    unparsable.write_text("pack: x\nitems: [\n", encoding="utf-8")

    outcome = run_cli(["pack", "validate", str(broken), str(PACKS[1]), str(unparsable)])
    assert outcome.code == 1
    problems = [PROBLEM_LINE.match(line) for line in outcome.stderr.splitlines()[:-1]]
    assert problems
    assert all(problems), outcome.stderr
    found = {(m["file"], int(m["line"]), int(m["col"])) for m in problems if m}
    assert (str(broken), bogus_line, 5) in found
    assert any(m["file"] == str(unparsable) for m in problems if m)
    assert any("bogus_key" in m["message"] for m in problems if m)
    assert not any(m["file"] == str(PACKS[1]) for m in problems if m)
    assert "2 of 3 file(s)" in outcome.stderr.splitlines()[-1]
    assert f"{broken}: ok" not in outcome.stdout


# --- end to end, as a user runs it ----------------------------------------------------------------


def test_a_user_loads_everything_from_the_shell(db: Database, tmp_path: Path) -> None:
    url = db.url
    cwd = tmp_path / "cwd"  # the SQLite fixture keeps its own file in tmp_path
    cwd.mkdir()
    loaded = _ok(run_process(["pack", "load", *map(str, PACKS)], cwd=cwd, DATABASE_URL=url))
    for key, count in _pack_items().items():
        assert f"{key}: new: {count} added, 0 changed (new revision), 0 retired" in loaded.lines
    roster = _ok(run_process(["roster", "load", str(ROSTER)], cwd=cwd, DATABASE_URL=url))
    assert f"people added ({len(_roster_people())}):" in roster.stdout
    rows = _activity_rows()[1]
    imported = _ok(run_process(["activities", "import", str(ACTIVITIES)], cwd=cwd, DATABASE_URL=url))
    assert f"{len(rows)} rows: {len(rows)} added, 0 updated, 0 unchanged" in imported.lines
    status = _ok(run_process(["status"], cwd=cwd, DATABASE_URL=url))
    never = _never_connected()
    assert f"never connected ({len(never)}): {', '.join(never)}" in status.lines
    assert f"people: {len(_roster_people())} active, 0 deactivated" in status.lines
    assert list(cwd.iterdir()) == [], "a default database was created in the working directory"


# --- packs ----------------------------------------------------------------------------------------


def _edited_copy(source: Path, tmp_path: Path) -> tuple[Path, str, str]:
    """The pack with one MCQ prompt changed and one (other) item deleted."""
    data = _yaml(source)
    items = data["items"]
    changed = next(item for item in items if item["type"] == "mcq")
    changed["prompt"] = changed["prompt"] + " (Reworded after compliance review.)"
    retired = items.pop()
    assert retired is not changed
    path = tmp_path / f"edited-{source.name}"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, changed["key"], retired["key"]


def test_pack_load_dry_run_reload_edit_and_list(db: Database, tmp_path: Path) -> None:
    url = db.url
    counts = _pack_items()
    paths = [str(p) for p in PACKS]
    empty = snapshot(db.engine)

    dry = _ok(run_cli(["pack", "load", *paths, "--dry-run"], DATABASE_URL=url))
    for key, count in counts.items():
        assert f"{key}: new: {count} added, 0 changed (new revision), 0 retired" in dry.lines
    assert "dry run: nothing was written" in dry.lines
    assert snapshot(db.engine) == empty
    assert _ok(run_cli(["pack", "list"], DATABASE_URL=url)).lines == [
        "no packs loaded; try `coachbot pack load FILE.yaml`"
    ]

    _ok(run_cli(["pack", "load", *paths], DATABASE_URL=url))
    listing = _ok(run_cli(["pack", "list"], DATABASE_URL=url))
    assert len(listing.lines) == len(counts)
    for key, count in counts.items():
        line = next(line for line in listing.lines if line.startswith(f"{key} v"))
        assert f"({count} items;" in line

    loaded = snapshot(db.engine)
    again = _ok(run_cli(["pack", "load", *paths], DATABASE_URL=url))
    assert sorted(again.lines) == sorted(f"{key}: unchanged" for key in counts)
    assert snapshot(db.engine) == loaded

    # Reformatting (a YAML round trip: other quoting, no comments) is not a change.
    reformatted = tmp_path / "reformatted.yaml"
    reformatted.write_text(
        yaml.safe_dump(_yaml(PACKS[0]), allow_unicode=True, sort_keys=True, width=60), encoding="utf-8"
    )
    key = _yaml(PACKS[0])["pack"]
    assert _ok(run_cli(["pack", "load", str(reformatted)], DATABASE_URL=url)).lines == [f"{key}: unchanged"]
    assert snapshot(db.engine) == loaded

    edited, changed_key, retired_key = _edited_copy(PACKS[0], tmp_path)
    preview = _ok(run_cli(["pack", "load", str(edited), "--dry-run"], DATABASE_URL=url))
    assert f"{key}: changed: 0 added, 1 changed (new revision), 1 retired" in preview.lines
    assert snapshot(db.engine) == loaded

    applied = _ok(run_cli(["pack", "load", str(edited)], DATABASE_URL=url))
    assert applied.lines == [
        f"{key}: changed: 0 added, 1 changed (new revision), 1 retired",
        f"  changed: {changed_key}",
        f"  retired: {retired_key}",
    ]
    listing = _ok(run_cli(["pack", "list"], DATABASE_URL=url))
    line = next(line for line in listing.lines if line.startswith(f"{key} v"))
    assert f"({counts[key] - 1} items, 1 retired;" in line
    after_edit = snapshot(db.engine)
    assert after_edit != loaded
    assert _ok(run_cli(["pack", "load", str(edited)], DATABASE_URL=url)).lines == [f"{key}: unchanged"]
    assert snapshot(db.engine) == after_edit


def test_pack_load_of_a_broken_file_writes_nothing(db: Database, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(PACKS[0].read_text(encoding="utf-8").replace("    answer: 1\n", "    answer: 99\n"))
    before = snapshot(db.engine)
    outcome = run_cli(["pack", "load", str(PACKS[1]), str(broken)], DATABASE_URL=db.url)
    assert outcome.code == 1
    problem_lines = outcome.stderr.splitlines()[:-1]
    assert problem_lines
    assert all(PROBLEM_LINE.match(line) and line.startswith(f"{broken}:") for line in problem_lines)
    assert "nothing was written" in outcome.stderr.splitlines()[-1]
    assert snapshot(db.engine) == before


# --- roster and status ----------------------------------------------------------------------------


def test_roster_load_dry_run_reload_deactivate_and_status(db: Database, tmp_path: Path) -> None:
    url = db.url
    people = _roster_people()
    empty = snapshot(db.engine)

    dry = _ok(run_cli(["roster", "load", str(ROSTER), "--dry-run"], DATABASE_URL=url))
    assert f"people added ({len(people)}): {', '.join(p['email'] for p in people)}" in dry.lines
    assert "dry run: nothing was written" in dry.lines
    assert snapshot(db.engine) == empty

    loaded = _ok(run_cli(["roster", "load", str(ROSTER)], DATABASE_URL=url))
    teams = [team["key"] for team in _yaml(ROSTER)["teams"]]
    assert f"teams added ({len(teams)}): {', '.join(teams)}" in loaded.lines
    assert f"people added ({len(people)}): {', '.join(p['email'] for p in people)}" in loaded.lines
    # No pack is loaded yet, and the admin is told so.
    assert any(line.startswith("warning: team ") and "not loaded" in line for line in loaded.lines)

    status = _ok(run_cli(["status"], DATABASE_URL=url))
    never = _never_connected()
    assert never
    assert f"never connected ({len(never)}): {', '.join(never)}" in status.lines
    assert f"people: {len(people)} active, 0 deactivated" in status.lines
    assert "outbox: empty" in status.lines
    for team in teams:
        assert f"team {team}: last digest never" in status.lines

    after_load = snapshot(db.engine)
    again = _ok(run_cli(["roster", "load", str(ROSTER)], DATABASE_URL=url))
    assert "roster unchanged" in again.lines
    assert snapshot(db.engine) == after_load

    leaver = next(p for p in people if p["role"] == "rep")
    data = _yaml(ROSTER)
    data["people"] = [p for p in data["people"] if p["email"] != leaver["email"]]
    assert len(data["people"]) == len(people) - 1
    smaller = tmp_path / "roster-without-one.yaml"
    smaller.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    preview = _ok(run_cli(["roster", "load", str(smaller), "--dry-run"], DATABASE_URL=url))
    assert f"people deactivated (1): {leaver['email']}" in preview.lines
    assert snapshot(db.engine) == after_load

    shrunk = _ok(run_cli(["roster", "load", str(smaller)], DATABASE_URL=url))
    assert f"people deactivated (1): {leaver['email']}" in shrunk.lines
    status = _ok(run_cli(["status"], DATABASE_URL=url))
    assert f"people: {len(people) - 1} active, 1 deactivated" in status.lines
    assert not any(leaver["email"] in line for line in status.lines if line.startswith("never connected"))

    back = _ok(run_cli(["roster", "load", str(ROSTER)], DATABASE_URL=url))
    assert f"people reactivated (1): {leaver['email']}" in back.lines
    status = _ok(run_cli(["status"], DATABASE_URL=url))
    assert f"people: {len(people)} active, 0 deactivated" in status.lines


# --- activities -----------------------------------------------------------------------------------


def test_activities_import_all_or_nothing_dry_run_and_reimport(db: Database, tmp_path: Path) -> None:
    url = db.url
    _ok(run_cli(["pack", "load", *map(str, PACKS)], DATABASE_URL=url))
    _ok(run_cli(["roster", "load", str(ROSTER)], DATABASE_URL=url))
    header, rows = _activity_rows()
    assert len(rows) > 1000
    assert not any("\n" in cell for row in rows for cell in row)
    before = snapshot(db.engine)

    # One bad date in the middle of the file: the row is named, and none of the good rows is stored.
    bad_index = len(rows) // 2
    bad_rows = [list(row) for row in rows]
    bad_rows[bad_index][header.index("occurred_at")] = "the-day-after-tomorrow"
    bad_file = tmp_path / "activities-bad.csv"
    with bad_file.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([header, *bad_rows])
    bad_line = bad_index + 2  # the header is line 1
    failed = run_cli(["activities", "import", str(bad_file)], DATABASE_URL=url)
    assert failed.code == 1
    errors = failed.stderr.splitlines()
    assert errors[0].startswith(f"{bad_file}:{bad_line}:"), errors
    assert "occurred_at" in errors[0]
    assert len(errors) == 2
    assert "nothing was written" in errors[-1]
    assert "added" not in failed.stdout
    assert snapshot(db.engine) == before
    assert snapshot(db.engine)["activity"] == []

    dry = _ok(run_cli(["activities", "import", str(ACTIVITIES), "--dry-run"], DATABASE_URL=url))
    assert f"{len(rows)} rows: {len(rows)} added, 0 updated, 0 unchanged" in dry.lines
    assert "dry run: nothing was written" in dry.lines
    assert snapshot(db.engine) == before

    imported = _ok(run_cli(["activities", "import", str(ACTIVITIES)], DATABASE_URL=url))
    assert f"{len(rows)} rows: {len(rows)} added, 0 updated, 0 unchanged" in imported.lines
    after = snapshot(db.engine)
    assert len(after["activity"]) == len(rows)

    again = _ok(run_cli(["activities", "import", str(ACTIVITIES)], DATABASE_URL=url))
    assert f"{len(rows)} rows: 0 added, 0 updated, {len(rows)} unchanged" in again.lines
    assert snapshot(db.engine) == after

    # A reload of the same packs and roster on a full database still changes nothing.
    assert "roster unchanged" in _ok(run_cli(["roster", "load", str(ROSTER)], DATABASE_URL=url)).lines
    reloaded = _ok(run_cli(["pack", "load", *map(str, PACKS)], DATABASE_URL=url))
    assert all(line.endswith(": unchanged") for line in reloaded.lines)
    assert snapshot(db.engine) == after


# --- schema and settings --------------------------------------------------------------------------


def test_an_unmigrated_database_asks_for_db_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    refused = run_process(["pack", "list"], cwd=tmp_path, DATABASE_URL=url)
    assert refused.code == 1
    assert "run `coachbot db upgrade` first" in refused.stderr
    assert refused.stdout == ""
    for command in (["status"], ["roster", "load", str(ROSTER)]):
        outcome = run_cli(command, DATABASE_URL=url)
        assert outcome.code == 1
        assert "run `coachbot db upgrade` first" in outcome.stderr

    upgraded = _ok(run_cli(["db", "upgrade"], DATABASE_URL=url))
    assert re.fullmatch(r"schema at \S+ \(was empty\)", upgraded.stdout.strip()), upgraded.stdout
    revision = upgraded.stdout.split()[2]
    again = _ok(run_cli(["db", "upgrade"], DATABASE_URL=url))
    assert again.stdout.strip() == f"schema at {revision}"
    assert _ok(run_cli(["pack", "list"], DATABASE_URL=url)).lines == [
        "no packs loaded; try `coachbot pack load FILE.yaml`"
    ]


def test_a_bad_setting_exits_2_naming_the_variable(tmp_path: Path) -> None:
    outcome = run_process(
        ["status"],
        cwd=tmp_path,
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
        COACHBOT_TIMEZONE="Mars/Olympus",
    )
    assert outcome.code == 2
    lines = outcome.stderr.splitlines()
    assert lines
    assert lines[0].startswith("COACHBOT_TIMEZONE: ")
    assert "Olympus" not in outcome.stderr + outcome.stdout
    assert not (tmp_path / "x.db").exists()


def test_an_unsupported_database_url_exits_2_without_echoing_it(tmp_path: Path) -> None:
    outcome = run_cli(["pack", "list"], DATABASE_URL="mysql://admin:Hunter2-Zq8@db.internal/coachbot")
    assert outcome.code == 2
    assert outcome.stderr.startswith("DATABASE_URL: ")
    assert "Hunter2-Zq8" not in outcome.stderr + outcome.stdout


def test_a_bad_setting_in_dot_env_is_reported(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"DATABASE_URL=sqlite:///{tmp_path / 'x.db'}\nCOACHBOT_HTTP_PORT=99999\n", encoding="utf-8"
    )
    outcome = run_cli(["status"])
    assert outcome.code == 2
    assert outcome.stderr.startswith("COACHBOT_HTTP_PORT: ")
    assert "99999" not in outcome.stderr


# --- demo -----------------------------------------------------------------------------------------


def test_demo_loads_everything_on_its_own_file_and_is_idempotent(tmp_path: Path) -> None:
    untouched = tmp_path / "configured.db"
    out = tmp_path / "demo"
    env = {"DATABASE_URL": f"sqlite:///{untouched}"}
    first = _ok(run_process(["demo", "--out", str(out)], cwd=tmp_path, **env))
    counts = _pack_items()
    for key, count in counts.items():
        assert f"pack {key}: new" in first.lines
        assert any(line.strip().startswith(f"{key} v") and f"({count} items)" in line for line in first.lines)
    people = re.search(r"^roster: (\d+) people added$", first.stdout, re.M)
    assert people is not None
    assert int(people[1]) == 13
    activities = re.search(r"^activities: (\d+) added, 0 already there$", first.stdout, re.M)
    assert activities is not None
    assert int(activities[1]) > 1000
    assert (out / "demo.db").exists()
    assert f"database: {(out / 'demo.db').resolve()}" in first.lines

    second = _ok(run_process(["demo", "--out", str(out)], cwd=tmp_path, **env))
    for key in counts:
        assert f"pack {key}: unchanged" in second.lines
    assert "roster: 0 people added" in second.lines
    assert f"activities: 0 added, {activities[1]} already there" in second.lines
    assert not untouched.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
