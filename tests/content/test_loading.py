"""Loading packs, rosters and activities into the database: one transaction, idempotent, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from content.loading import import_activities, load_packs, load_roster
from content.problems import ContentError
from storage.db import read_session, write_session
from storage.errors import IntegrityProblem
from storage.models import (
    Activity,
    AuditLog,
    ChatIdentity,
    Item,
    ItemRevision,
    Person,
    Team,
    TeamManager,
    TeamPack,
)
from tests.conftest import DATA, REPO, snapshot

PACKS = sorted((REPO / "content" / "packs").glob("*.yaml"))
ROSTER_YAML = REPO / "content" / "samples" / "roster.yaml"
ROSTER_CSV = REPO / "content" / "samples" / "roster.csv"
ACTIVITIES = REPO / "content" / "samples" / "activities.csv"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _load_everything(engine: Engine) -> None:
    load_packs(engine, PACKS, actor="test")
    load_roster(engine, ROSTER_YAML, actor="test")
    import_activities(engine, ACTIVITIES, actor="test", default_timezone="UTC", now=NOW)


def test_loading_everything_twice_leaves_the_database_unchanged(engine: Engine) -> None:
    _load_everything(engine)
    first = snapshot(engine)
    assert len(first["item"]) >= 2 * 38
    assert len(first["person"]) == 13
    assert len(first["activity"]) > 1000
    assert {row[2] for row in first["audit_log"]} == {"pack.load", "roster.load", "activities.import"}

    _load_everything(engine)
    assert snapshot(engine) == first


def _edited_pack(tmp_path: Path, *, prompt: str | None = None, drop_rp: bool = False) -> Path:
    text = (DATA / "mini-pack.yaml").read_text()
    if prompt is not None:
        text = text.replace("A doctor says her patients are fine. What do you do first?", prompt)
    if drop_rp:
        text = text[: text.index("  - key: rp1")]
    path = tmp_path / "mini.yaml"
    path.write_text(text)
    return path


def test_a_changed_item_gets_a_new_revision_and_old_revisions_stay(engine: Engine, tmp_path: Path) -> None:
    first = load_packs(engine, [DATA / "mini-pack.yaml"], actor="test").packs[0]
    assert (first.status, sorted(first.items_added)) == ("new", ["q1", "rp1"])

    report = load_packs(
        engine, [_edited_pack(tmp_path, prompt="What do you say first?")], actor="test"
    ).packs[0]
    assert (report.status, report.items_changed, report.items_added, report.items_retired) == (
        "changed",
        ["q1"],
        [],
        [],
    )
    with read_session(engine) as session:
        item = session.exec(select(Item).where(Item.key == "q1")).one()
        revisions = session.exec(
            select(ItemRevision).where(ItemRevision.item_id == item.id).order_by(col(ItemRevision.number))
        ).all()
    assert item.current_revision == 2
    assert [r.body["prompt"] for r in revisions] == [
        "A doctor says her patients are fine. What do you do first?",
        "What do you say first?",
    ]


def test_a_removed_item_is_retired_and_comes_back_when_restored(engine: Engine, tmp_path: Path) -> None:
    load_packs(engine, [DATA / "mini-pack.yaml"], actor="test")
    report = load_packs(engine, [_edited_pack(tmp_path, drop_rp=True)], actor="test").packs[0]
    assert report.items_retired == ["rp1"]
    with read_session(engine) as session:
        retired = session.exec(select(Item).where(Item.key == "rp1")).one()
    assert retired.retired_at is not None

    restored = load_packs(engine, [DATA / "mini-pack.yaml"], actor="test").packs[0]
    assert restored.items_added == ["rp1"]
    assert restored.items_changed == []
    with read_session(engine) as session:
        item = session.exec(select(Item).where(Item.key == "rp1")).one()
        count = len(session.exec(select(ItemRevision).where(ItemRevision.item_id == item.id)).all())
    assert item.retired_at is None
    assert count == 1


def test_a_dry_run_reports_changes_and_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    before = snapshot(engine)
    batch = load_packs(engine, PACKS, actor="test", dry_run=True)
    assert [r.status for r in batch.packs] == ["new", "new"]
    roster = load_roster(engine, ROSTER_YAML, actor="test", dry_run=True)
    assert len(roster.changes.people_added) == 13
    assert snapshot(engine) == before


def test_one_bad_file_means_no_pack_is_written(engine: Engine, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text((DATA / "mini-pack.yaml").read_text().replace("answer: 1", "answer: 9"))
    before = snapshot(engine)
    with pytest.raises(ContentError) as caught:
        load_packs(engine, [*PACKS, broken], actor="test")
    assert [p.message for p in caught.value.errors] == [
        "answer 9 is out of range: options are numbered 0 to 2"
    ]
    assert snapshot(engine) == before


def test_the_roster_sets_teams_managers_packs_and_chat_ids(engine: Engine) -> None:
    load_roster(engine, ROSTER_YAML, actor="test")
    with read_session(engine) as session:
        team = session.exec(select(Team).where(Team.key == "cardio-north")).one()
        manager_link = session.exec(select(TeamManager).where(TeamManager.team_id == team.id)).one()
        manager = session.get(Person, manager_link.person_id)
        packs = session.exec(select(TeamPack.pack_key).where(TeamPack.team_id == team.id)).all()
        alex = session.exec(select(Person).where(Person.email == "alex@example.com")).one()
        alex_ids = session.exec(select(ChatIdentity).where(ChatIdentity.person_id == alex.id)).all()
    assert manager is not None and manager.email == "priya@example.com"  # noqa: PT018
    assert list(packs) == ["pharma-cardio"]
    assert (team.session_time, team.workdays, team.per_day) == ("09:30", "mon,tue,wed,thu,fri", 3)
    assert (alex.session_time, alex.per_day, alex.timezone, alex.team_id) == (
        "08:45",
        2,
        "Europe/Berlin",
        team.id,
    )
    assert [(i.platform, i.user_id) for i in alex_ids] == [("telegram", "100002")]


def test_people_left_out_are_deactivated_with_history_kept_and_come_back(
    engine: Engine, tmp_path: Path
) -> None:
    _load_everything(engine)
    without_alex = tmp_path / "roster.yaml"
    lines = ROSTER_YAML.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if "alex@example.com" in line and "email" in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("- "))
    without_alex.write_text("".join(lines[:start] + lines[end:]))

    result = load_roster(engine, without_alex, actor="test")
    assert result.changes.people_deactivated == ["alex@example.com"]
    with read_session(engine) as session:
        alex = session.exec(select(Person).where(Person.email == "alex@example.com")).one()
        activities = session.exec(select(Activity).where(Activity.person_id == alex.id)).all()
    assert not alex.active
    assert alex.deactivated_at is not None
    assert activities

    back = load_roster(engine, ROSTER_YAML, actor="test")
    assert back.changes.people_reactivated == ["alex@example.com"]
    with read_session(engine) as session:
        assert session.exec(select(Person.active).where(Person.email == "alex@example.com")).one()


def test_a_csv_roster_after_the_yaml_one_keeps_team_settings(engine: Engine) -> None:
    load_roster(engine, ROSTER_YAML, actor="test")
    before = snapshot(engine)
    result = load_roster(engine, ROSTER_CSV, actor="test")
    assert not result.changes.changed_anything
    assert snapshot(engine) == before


def test_a_chat_id_bound_to_someone_else_is_refused_and_nothing_is_written(
    engine: Engine, tmp_path: Path
) -> None:
    load_roster(engine, ROSTER_YAML, actor="test")
    stolen = tmp_path / "roster.yaml"
    stolen.write_text(
        "teams:\n  - {key: solo, name: Solo}\n"
        "people:\n  - {email: new@example.com, name: New Rep, role: rep, team: solo, telegram: 100002}\n"
    )
    before = snapshot(engine)
    with pytest.raises(IntegrityProblem, match=r"telegram user 100002 is bound to alex@example.com"):
        load_roster(engine, stolen, actor="test")
    assert snapshot(engine) == before


def test_activities_are_all_or_nothing(engine: Engine, tmp_path: Path) -> None:
    _load_everything(engine)
    bad = tmp_path / "activities.csv"
    rows = ACTIVITIES.read_text().splitlines()
    rows.insert(3, "alex@example.com,visit,yesterday,1,,,,,")
    rows.append("nobody@example.com,visit,2026-11-02T10:00:00+01:00,1,,,,,")
    bad.write_text("\n".join(rows) + "\n")
    before = snapshot(engine)
    with pytest.raises(ContentError) as caught:
        import_activities(engine, bad, actor="test", default_timezone="UTC", now=NOW)
    assert [str(p) for p in caught.value.errors] == [
        f"{bad}:4: column occurred_at: not an ISO 8601 date-time (e.g. 2026-11-03T10:15:00+01:00)",
        f"{bad}:{len(rows)}: column email: nobody@example.com is not on the roster",
    ]
    assert snapshot(engine) == before


def test_a_corrected_crm_row_updates_the_stored_activity(engine: Engine, tmp_path: Path) -> None:
    load_packs(engine, PACKS, actor="test")
    load_roster(engine, ROSTER_YAML, actor="test")
    header = "email,type,occurred_at,count,value,account,external_id,note,follow_up_on\n"
    path = tmp_path / "crm.csv"
    path.write_text(header + "alex@example.com,visit,2026-11-02T10:00:00,2,,Praxis Nord,CRM-1,,\n")
    first = import_activities(engine, path, actor="test", default_timezone="UTC", now=NOW)
    path.write_text(header + "alex@example.com,visit,2026-11-02T10:00:00,3,,Praxis Nord,CRM-1,,2026-11-09\n")
    second = import_activities(engine, path, actor="test", default_timezone="UTC", now=NOW)
    assert (first.added, second.added, second.updated) == (1, 0, 1)
    with read_session(engine) as session:
        activity = session.exec(select(Activity)).one()
    assert activity.count == 3
    assert activity.follow_up_on is not None
    # No offset: the time is Alex's local time in Berlin (UTC+1 in November).
    assert activity.occurred_at == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_audit_records_name_the_actor_and_what_changed(engine: Engine) -> None:
    load_packs(engine, [DATA / "mini-pack.yaml"], actor="cli:sam")
    load_packs(engine, [DATA / "mini-pack.yaml"], actor="cli:sam")
    with read_session(engine) as session:
        records = session.exec(select(AuditLog)).all()
    assert len(records) == 1
    assert (records[0].actor, records[0].action, records[0].details["pack"]) == (
        "cli:sam",
        "pack.load",
        "mini",
    )
    assert sorted(records[0].details["added"]) == ["q1", "rp1"]


def test_identical_rows_without_external_ids_are_kept_apart_and_not_duplicated_on_reimport(
    engine: Engine, tmp_path: Path
) -> None:
    load_packs(engine, PACKS, actor="test")
    load_roster(engine, ROSTER_YAML, actor="test")
    header = "email,type,occurred_at,count,value,account,external_id,note,follow_up_on\n"
    row = "alex@example.com,visit,2026-11-02T10:00:00+01:00,1,,,,,\n"
    path = tmp_path / "same.csv"
    path.write_text(header + row + row)
    assert import_activities(engine, path, actor="test", default_timezone="UTC", now=NOW).added == 2
    assert import_activities(engine, path, actor="test", default_timezone="UTC", now=NOW).added == 0
    path.write_text(header + row + row + row)
    assert import_activities(engine, path, actor="test", default_timezone="UTC", now=NOW).added == 1
    with write_session(engine) as session:
        assert len(session.exec(select(Activity)).all()) == 3
