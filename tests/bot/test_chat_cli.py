"""`coachbot chat --as EMAIL [--item PACK/ITEM]` as a person uses it: a script piped into its own process.

These runs use the real clock (the command has no other), so they only say what does not depend on it:
every answer comes within milliseconds of its question, so fast-answer bonuses are certain, and the week
label is computed here in the rep's time zone. Durations printed by `stats` are matched as "N s".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.settings import Settings
from tests.bot.transcript import PACK, ROSTER, expected_text

SETTING_NAMES = frozenset(str(field.validation_alias) for field in Settings.model_fields.values())


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def coachbot(args: list[str], *, cwd: Path, database: Path | None, stdin: str = "") -> Run:
    """`python -m bot ARGS` in its own process, with no developer settings and no `.env` around."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    if database is not None:
        env["DATABASE_URL"] = f"sqlite:///{database}"
    proc = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    run = Run(proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in run.stdout + run.stderr, run
    return run


def ok(run: Run) -> Run:
    assert run.code == 0, run
    return run


@pytest.fixture(scope="module")
def coach_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the test pack and roster, loaded with the command line as an admin would."""
    folder = tmp_path_factory.mktemp("coach-cli")
    database = folder / "coach.db"
    ok(coachbot(["db", "upgrade"], cwd=folder, database=database))
    ok(coachbot(["pack", "load", str(PACK)], cwd=folder, database=database))
    ok(coachbot(["roster", "load", str(ROSTER)], cwd=folder, database=database))
    return database


@pytest.fixture
def coach_db(coach_template: Path, tmp_path: Path) -> Path:
    database = tmp_path / "coach.db"
    shutil.copyfile(coach_template, database)
    return database


def week_label(timezone: str) -> str:
    """The ISO week in the rep's time zone now (asked before and after a run that might straddle Sunday)."""
    year, week, _ = datetime.now(ZoneInfo(timezone)).isocalendar()
    return f"{year}-W{week:02d}"


# --- a scripted preview, compared whole ----------------------------------------------------------


SCRIPT = """\
2
quiz
3
log visit 1 follow-up 2099-12-31 bring the trial summary
settings
what now?
quit
help
"""

EXPECTED = """
    bot> Hi Rita! Type help for commands, quit to leave.
    bot> Question
         Dr. Weber: 'Too expensive.' Your first move?

         1) Offer a discount
         2) Ask what she compares it with
         3) Change the subject
         (reply 1-3)
    bot> ✅ Correct!
         Knowing the comparison tells you which data to bring.
         +15 points · 1-day streak · 15 points this week
    bot> Question
         Dr. Weber: 'I have no time.' Best reply?

         1) Ask for two minutes
         2) Talk faster
         3) Leave a brochure
         (reply 1-3)
    bot> ❌ Not quite — the answer is 1) Ask for two minutes
         A short, specific ask respects her time.
         +1 point · 1-day streak · 16 points this week
    bot> 📘 Quick lesson — Objections
         Acknowledge the concern first, then bring the approved data.
    bot> Logged 1 × Doctor visit. I'll remind you about the follow-up on 2099-12-31.
    bot> Your settings
         Time zone: Europe/Berlin
         Session time: 09:30
         Days: mon,tue,wed,thu,fri
         Change with `settings timezone Europe/Berlin` or `settings time 08:30`.
    bot> I didn't catch that. Send quiz for a question or help for commands.
"""


def test_scripted_chat_with_an_item_prints_the_whole_conversation(coach_db: Path, tmp_path: Path) -> None:
    run = ok(
        coachbot(
            ["chat", "--as", "rita@example.com", "--item", "coach/ob-1"],
            cwd=tmp_path,
            database=coach_db,
            stdin=SCRIPT,
        )
    )
    assert expected_text(run.stdout) == expected_text(EXPECTED)
    assert run.stderr == ""


def test_chat_remembers_across_runs(coach_db: Path, tmp_path: Path) -> None:
    """A second run on the same database continues where the first stopped: no question repeats today."""
    ok(
        coachbot(
            ["chat", "--as", "rita@example.com", "--item", "coach/ob-1"],
            cwd=tmp_path,
            database=coach_db,
            stdin="2\n",
        )
    )
    run = ok(coachbot(["chat", "--as", "rita@example.com"], cwd=tmp_path, database=coach_db, stdin="quiz\n"))
    assert expected_text(run.stdout) == expected_text(
        """
        bot> Hi Rita! Type help for commands, quit to leave.
        bot> Question
             Dr. Weber: 'I have no time.' Best reply?

             1) Ask for two minutes
             2) Talk faster
             3) Leave a brochure
             (reply 1-3)
        """
    )


# --- bad invocations ------------------------------------------------------------------------------


def test_unknown_email_exits_1_with_a_clear_message(coach_db: Path, tmp_path: Path) -> None:
    run = coachbot(["chat", "--as", "nobody@example.com"], cwd=tmp_path, database=coach_db, stdin="help\n")
    assert run.code == 1
    assert run.stdout == ""
    assert run.stderr == "nobody@example.com is not on the roster; load it with `coachbot roster load`\n"


def test_unknown_item_exits_1_with_a_clear_message(coach_db: Path, tmp_path: Path) -> None:
    run = coachbot(
        ["chat", "--as", "rita@example.com", "--item", "nope/nope"],
        cwd=tmp_path,
        database=coach_db,
        stdin="2\n",
    )
    assert run.code == 1
    assert run.stderr == "no live item 'nope/nope'; use PACK/ITEM as listed by the pack file\n"
    assert "Question" not in run.stdout


def test_an_item_already_had_today_exits_1_saying_so(coach_db: Path, tmp_path: Path) -> None:
    """One delivery per item a day: a second preview the same day is refused, not called unknown."""
    arguments = ["chat", "--as", "rita@example.com", "--item", "coach/ob-1"]
    ok(coachbot(arguments, cwd=tmp_path, database=coach_db, stdin="2\n"))
    run = coachbot(arguments, cwd=tmp_path, database=coach_db, stdin="2\n")
    assert run.code == 1
    assert run.stderr == (
        "rita@example.com already had 'coach/ob-1' today; it can be asked again tomorrow"
        " (or preview it --as someone else)\n"
    )
    assert "Question" not in run.stdout


# --- the bundled sample data, on the embedded SQLite default ---------------------------------------


STATS = re.compile(
    r"bot> Your week (?P<week>\d{4}-W\d{2})\n"
    r"     Capability: (?P<capability>.*)\n"
    r"     Effort: (?P<effort_time>\d+ s|—) over (?P<answers>\d+ answers?)\n"
    r"     Agility: (?P<agility>.*)\n"
    r"     Initiative: median first response (?P<initiative>\d+ s|—)\n"
)


def stats_of(stdout: str) -> dict[str, str]:
    found = list(STATS.finditer(stdout))
    assert len(found) == 1, stdout
    return found[0].groupdict()


def test_a_sample_rep_answers_an_mcq_and_a_roleplay_and_sees_stats_update(tmp_path: Path) -> None:
    ok(coachbot(["demo", "--out", str(tmp_path / "demo")], cwd=tmp_path, database=None))
    demo_db = tmp_path / "demo" / "demo.db"
    assert demo_db.exists()
    alex = ["chat", "--as", "alex@example.com"]

    def chat(*args: str, stdin: str) -> tuple[str, dict[str, str]]:
        week = week_label("Europe/Berlin")
        run = ok(coachbot([*alex, *args], cwd=tmp_path, database=demo_db, stdin=stdin))
        stats = stats_of(run.stdout)
        assert stats.pop("week") in {week, week_label("Europe/Berlin")}
        return expected_text(run.stdout), stats

    _, before = chat(stdin="stats\n")
    assert before == {
        "capability": "no answers yet this week",
        "effort_time": "0 s",
        "answers": "0 answers",
        "agility": "no earlier misses came back yet",
        "initiative": "—",
    }

    said, after_mcq = chat("--item", "pharma-cardio/he-01", stdin="2\nstats\n")
    assert "     (reply 1-4)\nbot> ✅ Correct!\n" in said
    assert "\n     +15 points · 1-day streak · 15 points this week\n" in said
    assert (after_mcq["capability"], after_mcq["answers"]) == ("100/100, precision 100% of 1 MCQ", "1 answer")
    assert after_mcq["initiative"] != "—"

    answer = "How many of your post-MI patients are still above goal on their statin?"
    said, after_roleplay = chat("--item", "pharma-cardio/he-rp-01", stdin=f"{answer}\nstats\n")
    feedback = "\n".join(
        [
            "bot> Score 50/100",
            "     ✗ Respects the time limit and gets straight to the point",
            "     ✓ Opens with a clinical question about the doctor's own patients",
            "     ✗ Secures a specific next step",
            f"     Model answer: {MODEL_ANSWER}",
            "     +6 points · 1-day streak · 21 points this week",
            "bot> Your week",
        ]
    )
    assert feedback in said
    assert (after_roleplay["capability"], after_roleplay["answers"]) == (
        "75/100, precision 100% of 1 MCQ",
        "2 answers",
    )


MODEL_ANSWER = (
    "I'll keep it to two minutes. Quick question: how many of your post-MI patients are still above their "
    "LDL-C goal on a maximally tolerated statin? [Listen.] That's exactly the group Cardivex is indicated "
    "for. "
    "As an add-on to a statin it reduced CV death, MI or stroke versus placebo in the VANTAGE-2 outcomes "
    "trial, and the most common side effect was injection-site reactions. Could I come back after clinic "
    "next week for 15 minutes to take you through the data and the safety profile properly?"
)
