"""`coachbot run` with only the Telegram or only the Slack settings talks to a Bot API / Web API server
(here local fakes) as to the real one: PTB calls getMe and Bolt calls auth.test at start-up."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from bot.adapters.telegram.service import fingerprinted_url
from tests.bot.test_run import free_port
from tests.conftest import Database
from tests.fakes.slack_server import BOT_TOKEN as SLACK_TOKEN
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.telegram_server import DEFAULT_TOKEN as TELEGRAM_TOKEN
from tests.fakes.telegram_server import FakeTelegramServer

SIGNING_SECRET = "signing-secret-for-tests"
WEBHOOK_SECRET = "webhook_secret-0123"
PLATFORM_VARIABLES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_BASE_URL",
    "TELEGRAM_WEBHOOK_URL",
    "TELEGRAM_WEBHOOK_SECRET",
    "OPENAI_API_KEY",
)


@asynccontextmanager
async def coachbot_run(db: Database, cwd: Path, settings: dict[str, str]) -> AsyncIterator[str]:
    """Start `coachbot run` with these settings; yield its base URL once it answers; SIGINT at the end."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in PLATFORM_VARIABLES}
    env.update({"DATABASE_URL": db.url, "COACHBOT_HTTP_PORT": str(port), **settings})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 30
            while True:
                if process.returncode is not None:
                    output = (await process.stdout.read()).decode() if process.stdout else ""
                    pytest.fail(f"coachbot run exited early:\n{output}")
                try:
                    await client.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        pytest.fail("coachbot run did not answer /healthz")
                    await asyncio.sleep(0.2)
        yield base
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        output = (await asyncio.wait_for(process.communicate(), timeout=20))[0].decode()
        assert process.returncode == 0, output
        assert "Traceback" not in output, output
        for secret in (TELEGRAM_TOKEN, SLACK_TOKEN, SIGNING_SECRET, WEBHOOK_SECRET):
            assert secret not in output, "a secret reached the log"


async def coachbot_run_fails(db: Database, cwd: Path, settings: dict[str, str]) -> tuple[int, str]:
    """Run `coachbot run` that is expected to give up at start-up: its exit code and output."""
    env = {k: v for k, v in os.environ.items() if k not in PLATFORM_VARIABLES}
    env.update({"DATABASE_URL": db.url, "COACHBOT_HTTP_PORT": str(free_port()), **settings})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output = (await asyncio.wait_for(process.communicate(), timeout=60))[0].decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, output


async def test_a_telegram_token_telegram_refuses_ends_run_with_one_clear_line(
    db: Database, tmp_path: Path
) -> None:
    wrong = "123456:wrong-token-for-tests"
    async with FakeTelegramServer() as telegram:
        settings = {"TELEGRAM_BOT_TOKEN": wrong, "TELEGRAM_API_BASE_URL": telegram.base_url}
        code, output = await coachbot_run_fails(db, tmp_path, settings)
    assert code == 1, output
    assert "TELEGRAM_BOT_TOKEN: Telegram refused it at getMe" in output
    assert "Traceback" not in output, output
    assert wrong not in output


async def test_telegram_long_polling(db: Database, tmp_path: Path) -> None:
    async with FakeTelegramServer() as telegram:
        settings = {"TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_API_BASE_URL": telegram.base_url}
        async with coachbot_run(db, tmp_path, settings) as base, httpx.AsyncClient() as client:
            ready = (await client.get(f"{base}/readyz")).json()
            assert ready == {"ready": True, "checks": {"database": True, "telegram": True}}
            await telegram.wait_for(lambda: bool(telegram.calls_to("getUpdates")))
            assert (await client.post(f"{base}/telegram/webhook", json={})).status_code == 404
        assert telegram.calls_to("getMe")
        assert telegram.calls_to("setMyCommands")


async def test_telegram_webhook_checks_its_secret_and_sets_the_webhook_once(
    db: Database, tmp_path: Path
) -> None:
    async with FakeTelegramServer() as telegram:
        settings = {
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_API_BASE_URL": telegram.base_url,
            "TELEGRAM_WEBHOOK_URL": "https://coach.example.com/telegram/webhook",
            "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        async with coachbot_run(db, tmp_path, settings) as base, httpx.AsyncClient() as client:
            hook = f"{base}/telegram/webhook"
            update = {
                "update_id": 9001,
                "message": {
                    "message_id": 1,
                    "date": 1764840000,
                    "chat": {"id": 555, "type": "private"},
                    "from": {"id": 555, "is_bot": False, "first_name": "Stranger"},
                    "text": "hello",
                },
            }
            assert (await client.post(hook, json=update)).status_code == 401
            wrong = {"X-Telegram-Bot-Api-Secret-Token": "not-the-secret"}
            assert (await client.post(hook, json=update, headers=wrong)).status_code == 401
            good = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
            bad_body = await client.post(hook, content=b"{not json", headers=good)
            assert bad_body.status_code == 400
            assert (await client.post(hook, json={"no": "update"}, headers=good)).status_code == 400
            assert (await client.post(hook, json=update, headers=good)).status_code == 200
            await telegram.wait_for(lambda: bool(telegram.sent_texts(555)))
            assert "ask your coachbot admin" in telegram.sent_texts(555)[0]
        assert not telegram.calls_to("getUpdates")
        (set_webhook,) = telegram.calls_to("setWebhook")
        expected = fingerprinted_url(
            settings["TELEGRAM_WEBHOOK_URL"], token=TELEGRAM_TOKEN, secret=WEBHOOK_SECRET
        )
        assert set_webhook.params["url"] == expected
        assert set_webhook.params["secret_token"] == WEBHOOK_SECRET

        async with coachbot_run(db, tmp_path, settings):
            pass  # same URL and secret: no second setWebhook
        assert len(telegram.calls_to("setWebhook")) == 1


def test_a_new_webhook_secret_changes_the_url_telegram_stores() -> None:
    url = "https://coach.example.com/telegram/webhook"
    first = fingerprinted_url(url, token=TELEGRAM_TOKEN, secret="one")
    assert first.startswith(url + "?v=")
    assert first != fingerprinted_url(url, token=TELEGRAM_TOKEN, secret="two")
    assert "one" not in first.split("?v=")[1]


async def test_slack_http_mode(db: Database, tmp_path: Path) -> None:
    async with FakeSlackServer() as slack:
        settings = {
            "SLACK_BOT_TOKEN": SLACK_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
        }
        async with coachbot_run(db, tmp_path, settings) as base, httpx.AsyncClient() as client:
            ready = (await client.get(f"{base}/readyz")).json()
            assert ready == {"ready": True, "checks": {"database": True, "slack": True}}
            body = json.dumps({"type": "url_verification", "challenge": "abc"}).encode()
            forged = await client.post(
                f"{base}/slack/events",
                content=body,
                headers={"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=00"},
            )
            assert forged.status_code == 401
            timestamp = str(int(time.time()))
            basestring = f"v0:{timestamp}:".encode() + body
            signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), basestring, hashlib.sha256).hexdigest()
            signed = await client.post(
                f"{base}/slack/events",
                content=body,
                headers={
                    "X-Slack-Request-Timestamp": timestamp,
                    "X-Slack-Signature": signature,
                    "Content-Type": "application/json",
                },
            )
            assert signed.status_code == 200
            assert signed.json() == {"challenge": "abc"}
        assert slack.of("auth.test")
