"""Activity import: the sample CSV (about 1,000 rows) through the real import path on SQLite, as a ratio to a
raw sqlite3 baseline that inserts the same rows in one ``BEGIN IMMEDIATE`` transaction with the same PRAGMAs.

Run with ``make bench``. Prints medians over several rounds; not part of ``make test``.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from content.activities import KnownPerson, parse_activity_rows
from content.loading import import_activity_rows, load_packs, load_roster, read_activity_file
from storage.db import make_engine, read_session
from storage.packs import active_activity_types
from storage.people import people_by_email
from storage.schema import upgrade_database

REPO = Path(__file__).resolve().parent.parent
ROUNDS = 7
NOW = datetime(2026, 12, 4, tzinfo=UTC)


def _median_seconds(action: Callable[[], None], reset: Callable[[], None]) -> float:
    timings = []
    for _ in range(ROUNDS):
        reset()
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade_database(engine)
        load_packs(engine, sorted((REPO / "content" / "packs").glob("*.yaml")), actor="bench")
        load_roster(engine, REPO / "content" / "samples" / "roster.yaml", actor="bench")
        source = REPO / "content" / "samples" / "activities.csv"
        rows = read_activity_file(source)

        def reset() -> None:
            with engine.begin() as connection:
                connection.execute(text("DELETE FROM activity"))
                connection.execute(text("DELETE FROM audit_log"))

        def coachbot_import() -> None:
            import_activity_rows(
                engine, rows, file=str(source), actor="bench", default_timezone="UTC", now=NOW
            )

        with read_session(engine) as session:
            people = {
                e: KnownPerson(id=p.id or 0, timezone=p.timezone) for e, p in people_by_email(session).items()
            }
            types = active_activity_types(session)
        parsed = parse_activity_rows(
            rows, file=str(source), people=people, activity_types=types, default_timezone="UTC", now=NOW
        )
        values = [
            (
                a.person_id,
                a.type_key,
                a.count,
                a.value,
                a.occurred_at.strftime("%Y-%m-%d %H:%M:%S.%f"),
                a.account,
                a.note,
                a.follow_up_on.isoformat() if a.follow_up_on else None,
                "csv",
                a.external_key,
                NOW.strftime("%Y-%m-%d %H:%M:%S.%f"),
            )
            for a in parsed
        ]
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA busy_timeout=10000")
        raw.execute("PRAGMA foreign_keys=ON")
        raw.execute("PRAGMA synchronous=NORMAL")

        def baseline() -> None:
            raw.execute("BEGIN IMMEDIATE")
            raw.executemany(
                "INSERT INTO activity (person_id, type_key, count, value, occurred_at, account, note,"
                " follow_up_on, source, external_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            raw.execute("COMMIT")

        def parse_only() -> None:
            parse_activity_rows(
                rows, file=str(source), people=people, activity_types=types, default_timezone="UTC", now=NOW
            )

        base = _median_seconds(baseline, reset)
        full = _median_seconds(coachbot_import, reset)
        parsing = _median_seconds(parse_only, lambda: None)
        raw.close()
        engine.dispose()
    print(f"activity import, {len(rows)} rows, SQLite, median of {ROUNDS}:")
    print(f"  raw sqlite3 baseline: {base * 1000:8.1f} ms")
    print(f"  coachbot import:      {full * 1000:8.1f} ms  (ratio {full / base:.1f}x)")
    print(
        f"    of which validation:{parsing * 1000:8.1f} ms; storage and ORM: {(full - parsing) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
