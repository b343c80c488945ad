"""`coachbot invite`: one-time Telegram deep links for roster people who have not connected yet."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import app
from storage.db import read_session, write_session
from storage.models import AuditLog, Invite
from storage.onboarding import redeem_invite
from tests.bot.transcript import load_content
from tests.conftest import Database
from tests.fakes.telegram_server import DEFAULT_TOKEN, FakeTelegramServer

LINK = re.compile(r"^(\S+)\t([^\t]+)\thttps://t\.me/coach_test_bot\?start=([A-Za-z0-9_-]{1,64})$")


def invite(db: Database, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["invite", "--bot-username", "coach_test_bot", *args], env={"DATABASE_URL": db.url}
    )
    return result.exit_code, result.stdout, result.stderr


def links(stdout: str) -> dict[str, str]:
    found = {}
    for line in stdout.splitlines():
        match = LINK.match(line)
        assert match, f"not an invite line: {line!r}"
        found[match[1]] = match[3]
    return found


def test_invites_cover_everyone_not_connected_and_each_code_works_once(db: Database) -> None:
    load_content(db.engine)
    code, stdout, stderr = invite(db)
    assert code == 0, stderr
    codes = links(stdout)
    assert sorted(codes) == ["ada@example.com", "ben@example.com", "mia@example.com", "rita@example.com"]
    assert "4 link(s), each valid once for 14 days" in stderr
    with read_session(db.engine) as session:
        stored = session.exec(select(Invite)).all()
        audit = session.exec(select(AuditLog).where(AuditLog.action == "invite.create")).one()
    assert all(code not in {i.code_hash for i in stored} for code in codes.values())
    assert all(code not in str(audit.details) for code in codes.values())

    now = datetime.now(UTC)
    with write_session(db.engine) as session:
        person = redeem_invite(
            session, code=codes["rita@example.com"], platform="telegram", workspace="", user_id="777", now=now
        )
    assert person is not None and person.email == "rita@example.com"  # noqa: PT018
    with write_session(db.engine) as session:
        again = redeem_invite(
            session, code=codes["rita@example.com"], platform="telegram", workspace="", user_id="778", now=now
        )
    assert again is None

    _, stdout, _ = invite(db, "--team", "north")
    assert sorted(links(stdout)) == [
        "ben@example.com",
        "mia@example.com",
    ]  # Rita is connected; Ada has no team


def test_an_expired_code_binds_nobody(db: Database) -> None:
    load_content(db.engine)
    _, stdout, _ = invite(db, "--days", "1")
    code = links(stdout)["ben@example.com"]
    with write_session(db.engine) as session:
        late = datetime.now(UTC) + timedelta(days=2)
        assert (
            redeem_invite(session, code=code, platform="telegram", workspace="", user_id="9", now=late)
            is None
        )


def test_an_unknown_team_is_a_clear_error(db: Database) -> None:
    load_content(db.engine)
    code, stdout, stderr = invite(db, "--team", "nowhere")
    assert code == 1
    assert "no team 'nowhere'" in stderr
    assert "Traceback" not in stdout + stderr


def test_without_a_token_or_a_username_invite_says_what_it_needs(db: Database) -> None:
    result = CliRunner().invoke(app, ["invite"], env={"DATABASE_URL": db.url, "TELEGRAM_BOT_TOKEN": ""})
    assert result.exit_code == 1
    assert "TELEGRAM_BOT_TOKEN: needed" in result.stderr


async def test_the_bot_username_comes_from_get_me(db: Database, tmp_path: Path) -> None:
    load_content(db.engine)
    async with FakeTelegramServer() as telegram:
        env = {
            **os.environ,
            "DATABASE_URL": db.url,
            "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
            "TELEGRAM_API_BASE_URL": telegram.base_url,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "invite", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    assert telegram.calls_to("getMe")
    first = stdout.decode().splitlines()[0]
    assert re.search(r"\thttps://t\.me/\w+\?start=[A-Za-z0-9_-]+$", first)
