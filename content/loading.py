"""Load packs, rosters and activity files into the database: validate everything, then one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import select

from content import activities as activity_files
from content import packs as pack_files
from content import roster as roster_files
from content.files import MAX_CSV_BYTES, read_limited
from content.problems import ContentError, Problem
from storage.activities import ActivityReport, upsert_activities
from storage.audit import record_audit
from storage.db import write_session
from storage.models import ActivitySource, Pack
from storage.packs import PackLoadReport, active_activity_types, upsert_pack
from storage.people import RosterReport, apply_roster, people_by_email, team_pack_keys

Progress = Callable[[str], None]


@dataclass
class PackBatchReport:
    packs: list[PackLoadReport]
    warnings: list[Problem] = field(default_factory=list)


def validate_pack_files(paths: Sequence[Path]) -> tuple[list[pack_files.ValidatedPack], list[Problem]]:
    """Validate every file; return the valid packs and every problem (errors and warnings) found."""
    valid: list[pack_files.ValidatedPack] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            pack = pack_files.read_pack_file(path)
        except ContentError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(pack.warnings)
        if pack.spec.pack in seen:
            problems.append(
                Problem(str(path), 1, 1, f"pack '{pack.spec.pack}' is also defined in {seen[pack.spec.pack]}")
            )
            continue
        seen[pack.spec.pack] = str(path)
        valid.append(pack)
    return valid, problems


def load_packs(
    engine: Engine,
    paths: Sequence[Path],
    *,
    actor: str,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> PackBatchReport:
    """Validate all files first; then upsert every pack in one transaction (nothing if any file is bad)."""
    valid, problems = validate_pack_files(paths)
    if any(not p.warning for p in problems):
        raise ContentError(problems)
    return load_validated_packs(
        engine, valid, actor=actor, dry_run=dry_run, progress=progress, warnings=problems
    )


def load_validated_packs(
    engine: Engine,
    valid: Sequence[pack_files.ValidatedPack],
    *,
    actor: str,
    dry_run: bool = False,
    progress: Progress | None = None,
    warnings: Sequence[Problem] = (),
) -> PackBatchReport:
    """Upsert packs that :func:`validate_pack_files` accepted, all in one transaction."""
    reports = []
    with write_session(engine, dry_run=dry_run) as session:
        for pack in valid:
            report = upsert_pack(session, pack=pack_files.to_import(pack.spec), on_item=progress)
            if report.changed_anything:
                record_audit(
                    session,
                    actor=actor,
                    action="pack.load",
                    details={
                        "pack": report.pack_key,
                        "file": pack.file,
                        "status": report.status,
                        "added": report.items_added,
                        "changed": report.items_changed,
                        "retired": report.items_retired,
                    },
                )
            reports.append(report)
    return PackBatchReport(packs=reports, warnings=list(warnings))


@dataclass
class RosterLoadReport:
    changes: RosterReport
    warnings: list[str]


def describe_pack_report(report: PackLoadReport) -> str:
    """What a load changed, for people: counts, and the item keys when an existing pack changed."""
    if report.status == "unchanged":
        return f"{report.pack_key}: unchanged"
    parts = [
        f"{len(report.items_added)} added",
        f"{len(report.items_changed)} changed (new revision)",
        f"{len(report.items_retired)} retired",
    ]
    lines = [f"{report.pack_key}: {report.status}: {', '.join(parts)}"]
    for label, keys in (
        ("added", report.items_added),
        ("changed", report.items_changed),
        ("retired", report.items_retired),
    ):
        if keys and report.status != "new":
            lines.append(f"  {label}: {', '.join(keys)}")
    return "\n".join(lines)


def load_roster(engine: Engine, path: Path, *, actor: str, dry_run: bool = False) -> RosterLoadReport:
    return load_validated_roster(engine, roster_files.read_roster_file(path), actor=actor, dry_run=dry_run)


def load_validated_roster(
    engine: Engine, roster: roster_files.ValidatedRoster, *, actor: str, dry_run: bool = False
) -> RosterLoadReport:
    """Apply a parsed roster in one transaction (from a file on the host or one an admin sent in chat)."""
    warnings: list[str] = []
    with write_session(engine, dry_run=dry_run) as session:
        report = apply_roster(session, roster=roster_files.to_import(roster))
        loaded = set(session.exec(select(Pack.key)).all())
        for team_key, pack_key in team_pack_keys(session):
            if pack_key not in loaded:
                warnings.append(f"team {team_key} uses pack '{pack_key}', which is not loaded yet")
        if report.changed_anything:
            record_audit(
                session,
                actor=actor,
                action="roster.load",
                details={
                    "file": roster.file,
                    "teams_added": report.teams_added,
                    "teams_updated": report.teams_updated,
                    "people_added": report.people_added,
                    "people_updated": report.people_updated,
                    "people_reactivated": report.people_reactivated,
                    "people_deactivated": report.people_deactivated,
                },
            )
    return RosterLoadReport(changes=report, warnings=warnings)


def import_activities(
    engine: Engine,
    path: Path,
    *,
    actor: str,
    default_timezone: str,
    dry_run: bool = False,
    now: datetime | None = None,
) -> ActivityReport:
    """All rows or none: every bad row is reported, and nothing is stored unless every row is good."""
    rows = read_activity_file(path)
    return import_activity_rows(
        engine, rows, file=str(path), actor=actor, default_timezone=default_timezone, dry_run=dry_run, now=now
    )


def read_activity_file(path: Path) -> list[tuple[int, dict[str, str]]]:
    return activity_files.read_activity_csv(read_limited(path, limit=MAX_CSV_BYTES), file=str(path))


def import_activity_rows(
    engine: Engine,
    rows: list[tuple[int, dict[str, str]]],
    *,
    file: str,
    actor: str,
    default_timezone: str,
    dry_run: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
    source: str = ActivitySource.CSV,
) -> ActivityReport:
    """Validate ``(line, row)`` pairs against the roster and the packs, then store them in one transaction.

    CSV files and the CRM API share this path, so both get the same checks, all-or-nothing and keys.
    """
    with write_session(engine, dry_run=dry_run) as session:
        people = {
            email: activity_files.KnownPerson(id=person.id, timezone=person.timezone)
            for email, person in people_by_email(session).items()
            if person.id is not None
        }
        imports = activity_files.parse_activity_rows(
            rows,
            file=file,
            people=people,
            activity_types=active_activity_types(session),
            default_timezone=default_timezone,
            now=now or datetime.now(UTC),
        )
        report = upsert_activities(session, rows=imports, source=source, on_row=progress)
        if report.changed_anything:
            record_audit(
                session,
                actor=actor,
                action="activities.import",
                details={
                    "file": file,
                    "source": source,
                    "added": report.added,
                    "updated": report.updated,
                    "rows": len(imports),
                },
            )
    return report
