"""The Slack adapter in Socket Mode, end to end and offline: the real adapter, slack-bolt's
``AsyncSocketModeHandler`` and slack-sdk's aiohttp Socket Mode client, the real engine and database (SQLite
and Postgres), against a fake Slack (tests/fakes/slack_socket_mode.py: the fake Web API plus
``apps.connections.open`` and the WebSocket it hands out).

Each payload arrives in an envelope on the socket; the test waits for the client's acknowledgement of that
envelope, then for the engine work the adapter started (``drain``), and reads what the bot did on the fake
Web API. Conversations are written as transcripts (see :class:`Rep`): what the rep types in her DM or the
button she clicks (``[2]``), and everything the bot does in reply — ``bot>`` and the mrkdwn ``text`` of
each ``chat.postMessage`` (its buttons shown as ``[label]``), ``bot edits>`` and the new text of each
``chat.update``.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
import os
import sys
import warnings
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSCloseCode
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.adapters.slack import SlackAdapter
from bot.adapters.slack import adapter as slack_adapter
from bot.adapters.slack.adapter import SlackStartError
from bot.adapters.slack.service import SlackService
from bot.engine import Coach
from storage import learning
from storage.db import read_session
from storage.models import Attempt, Delivery
from storage.runner import StorageRunner
from tests.bot.test_run import free_port
from tests.bot.test_slack_adapter import UNHANDLED, unhandled, unhandled_ack
from tests.bot.transcript import STEP, Clock, coach_for_tests, expected_text, load_content
from tests.conftest import Database, snapshot
from tests.fakes.slack_server import BOT_ID, BOT_TOKEN, BOT_USER_ID, Call
from tests.fakes.slack_socket_mode import (
    APP_TOKEN,
    OPEN,
    Ack,
    FakeSocketModeServer,
    SilentServer,
    unused_port,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "slack"
RITA = "U0RITA"
DM = "DU0RITA"
SLACK_USERS = {"rita@example.com": RITA, "ben@example.com": "U0BEN"}
START_TIMEOUT = 10.0
"""``connect_async`` retries for ever when it cannot connect: bound start-up so a broken fake fails fast."""
REVOKED_APP_TOKEN = "xapp-1-A0COACH-1-revoked"
CONNECT_TIMEOUT = 0.5
"""The adapter's ``connect_timeout`` in the tests of a URL that does not connect."""

HELP = """
    bot> *coachbot* — practise in a few minutes a day.
         • quiz [topic] — the next question now (also: practice)
         • stats — your Capability, Effort, Agility and Initiative this week
         • leaderboard — your team's points this week
         • log TYPE [COUNT] [follow-up YYYY-MM-DD] [note] — log sales activity
         • pause [until YYYY-MM-DD] / resume — holidays
         • settings [timezone Area/City | time HH:MM] — your session time
         Answer a question with its number; answer a role-play in your own words.
"""
OB_1 = """
    bot> *Question*
         Dr. Weber: 'Too expensive.' Your first move?

         1) Offer a discount
         2) Ask what she compares it with
         3) Change the subject
         [1] [2] [3]
"""
OB_1_RIGHT = """
    bot> *✅ Correct!*
         Knowing the comparison tells you which data to bring.
         +15 points · 1-day streak · 15 points this week
    bot edits> *Question*
               Dr. Weber: 'Too expensive.' Your first move?

               1) Offer a discount
               2) Ask what she compares it with
               3) Change the subject

               You answered 2 — correct.
"""
ALREADY_ANSWERED = "bot> You've already answered that one. Send *quiz* for the next question."


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    data.pop("_doc")
    return data


def buttons(call: Call) -> list[dict[str, Any]]:
    blocks = call.args.get("blocks") or []
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def shown(calls: Sequence[Call]) -> str:
    """What the bot did in a transcript's terms: ``bot>`` and a posted message's text (then its buttons as
    ``[label]``), ``bot edits>`` and the new text of an updated one."""
    lines: list[str] = []
    for call in calls:
        if call.method not in ("chat.postMessage", "chat.update"):
            continue
        text = str(call.args["text"])
        labels = " ".join(f"[{b['text']['text']}]" for b in buttons(call))
        prefix = "bot> " if call.method == "chat.postMessage" else "bot edits> "
        shown_text = f"{text}\n{labels}" if labels else text
        lines.append(prefix + shown_text.replace("\n", "\n" + " " * len(prefix)))
    return expected_text("\n".join(lines))


@dataclass
class Harness:
    engine: Engine
    server: FakeSocketModeServer
    adapter: SlackAdapter
    coach: Coach
    clock: Clock

    async def deliver(self, envelope: dict[str, Any]) -> Ack:
        """Send an envelope, wait for its acknowledgement, then for the engine work it started."""
        self.clock.advance(STEP)
        ack = await self.server.deliver_envelope(envelope)
        await self.adapter.drain()
        return ack

    async def event(self, body: dict[str, Any], **options: Any) -> Ack:
        return await self.deliver(self.server.envelope("events_api", body, **options))

    async def interaction(self, payload: dict[str, Any]) -> Ack:
        return await self.deliver(self.server.envelope("interactive", payload))

    def posts(self, since: int = 0) -> list[Call]:
        return [c for c in self.server.calls[since:] if c.method == "chat.postMessage"]

    def attempts(self) -> list[Attempt]:
        with Session(self.engine) as session:
            return list(session.exec(select(Attempt)))

    def delivery(self) -> Delivery:
        with Session(self.engine) as session:
            found = session.exec(select(Delivery).order_by(col(Delivery.id).desc())).first()
            assert found is not None
            return found

    async def bind(self) -> None:
        bound = await self.adapter.bind_by_email()
        assert {b.email for b in bound} == {"rita@example.com", "ben@example.com"}


@dataclass
class Rep:
    """A rep in her DM with the bot. A line she types is a ``message.im`` event in an ``events_api``
    envelope (https://api.slack.com/events/message.im); ``[2]`` is her click on the button labelled 2 of
    the last question, a ``block_actions`` payload in an ``interactive`` envelope
    (https://api.slack.com/reference/interaction-payloads/block-actions)."""

    slack: Harness
    user: str = RITA
    channel: str = DM
    numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def message(self, text: str) -> dict[str, Any]:
        number = next(self.numbers)
        ts = f"{1_700_000_100 + number}.000200"
        body = fixture("message_im")
        body["event"] |= {"user": self.user, "channel": self.channel, "text": text, "ts": ts, "event_ts": ts}
        body |= {"event_id": f"Ev0SOCK{number:04d}", "event_time": 1_700_000_100 + number}
        return body

    def click(self, label: str) -> dict[str, Any]:
        """A click on the button ``label`` of the last question the bot posted, with a fresh trigger."""
        question = [c for c in self.slack.posts() if buttons(c)][-1]
        (button,) = [b for b in buttons(question) if b["text"]["text"] == label]
        ref = self.slack.delivery().platform_message_ref
        assert ref is not None
        channel, ts = ref.split(":")
        payload = fixture("block_actions_choice")
        payload["trigger_id"] = f"1111111111.2222222222.click{next(self.numbers):04d}"
        payload["user"]["id"] = self.user
        payload["container"] |= {"message_ts": ts, "channel_id": channel}
        payload["channel"]["id"] = channel
        payload["message"] |= {"ts": ts, "text": question.args["text"]}
        payload["actions"][0] |= {
            "action_id": button["action_id"],
            "value": button["value"],
            "text": {"type": "plain_text", "text": label, "emoji": True},
        }
        return payload

    async def act(self, line: str) -> tuple[Ack, str]:
        """Type ``line`` or, for ``[label]``, click that button; return the acknowledgement and what the
        bot did in reply."""
        before = len(self.slack.server.calls)
        if line.startswith("[") and line.endswith("]"):
            ack = await self.slack.interaction(self.click(line[1:-1]))
        else:
            ack = await self.slack.event(self.message(line))
        return ack, shown(self.slack.server.calls[before:])

    async def act_on(self, body: dict[str, Any], answer: str) -> Ack:
        """Deliver this ``message.im`` event and assert everything the bot does in reply."""
        before = len(self.slack.server.calls)
        ack = await self.slack.event(body)
        assert shown(self.slack.server.calls[before:]) == expected_text(answer)
        return ack

    async def play(self, rows: Sequence[tuple[str, str]]) -> list[Ack]:
        """Assert a conversation: each row is (what the rep does, everything the bot does in reply)."""
        acks: list[Ack] = []
        for number, (line, answer) in enumerate(rows, start=1):
            ack, actual = await self.act(line)
            acks.append(ack)
            expected = expected_text(answer)
            assert actual == expected, (
                f"row {number}: the rep sent {line!r}\n"
                f"--- expected ---\n{expected}\n--- the bot did ---\n{actual}"
            )
        return acks


@pytest.fixture
async def slack(db: Database) -> AsyncIterator[Harness]:
    load_content(db.engine)
    clock = Clock()
    async with FakeSocketModeServer(users_by_email=dict(SLACK_USERS)) as server:
        runner = StorageRunner()
        adapter = SlackAdapter(
            token=BOT_TOKEN,
            app_token=APP_TOKEN,
            engine=db.engine,
            runner=runner,
            api_url=server.api_url,
            pace_seconds=0.0,
            clock=clock,
        )
        coach = coach_for_tests(db.engine, runner, adapter, clock)
        adapter.set_handler(coach.handle)
        try:
            await asyncio.wait_for(adapter.start(), START_TIMEOUT)
            yield Harness(db.engine, server, adapter, coach, clock)
        finally:
            await adapter.stop()


# --- connecting -------------------------------------------------------------------------------------------


async def test_start_opens_a_socket_with_the_app_token(slack: Harness) -> None:
    assert slack.adapter.socket_mode
    assert slack.adapter.started
    (auth,) = slack.server.of("auth.test")
    assert auth.authorization == f"Bearer {BOT_TOKEN}"
    (opened,) = slack.server.of(OPEN)
    assert (opened.http_method, opened.encoding) == ("POST", "none")
    assert opened.authorization == f"Bearer {APP_TOKEN}"  # the app token, never the bot token
    connection = await slack.server.connected()
    assert connection.number == 1
    assert connection.sent[0]["type"] == "hello"

    await slack.bind()  # later Web API calls still carry the bot token
    assert {c.authorization for c in slack.server.calls if c.method != OPEN} == {f"Bearer {BOT_TOKEN}"}


async def web_api(server: FakeSocketModeServer, method: str, token: str, **args: Any) -> dict[str, Any]:
    """One Web API call with this token; Slack's answer whether ``ok`` or not."""
    client = AsyncWebClient(token=token, base_url=server.api_url)
    try:
        response = await client.api_call(method, json=args or None)
    except SlackApiError as exc:
        response = exc.response
    assert isinstance(response.data, dict)
    return response.data


async def test_the_fake_opens_connections_only_for_the_app_token() -> None:
    """apps.connections.open takes an app-level token only (https://api.slack.com/methods/apps.connections.open);
    an app token is no good for other methods."""
    async with FakeSocketModeServer() as server:
        opened = await web_api(server, OPEN, APP_TOKEN)
        assert opened["ok"] is True
        assert str(opened["url"]).startswith(f"{server.socket_base}/link/?ticket=")
        assert await web_api(server, OPEN, BOT_TOKEN) == {"ok": False, "error": "not_allowed_token_type"}
        revoked = await web_api(server, OPEN, "xapp-1-A0COACH-1-revoked")
        assert revoked == {"ok": False, "error": "invalid_auth"}
        posted = await web_api(server, "chat.postMessage", APP_TOKEN, channel=DM, text="hi")
        assert posted == {"ok": False, "error": "not_allowed_token_type"}
        assert [c.authorization for c in server.of(OPEN)] == [
            f"Bearer {APP_TOKEN}",
            f"Bearer {BOT_TOKEN}",
            "Bearer xapp-1-A0COACH-1-revoked",
        ]


# --- start-up failures ------------------------------------------------------------------------------------


@pytest.fixture
def handlers(monkeypatch: pytest.MonkeyPatch) -> list[AsyncSocketModeHandler]:
    """Every Socket Mode handler the adapter creates, to check that a failed start closed it."""
    made: list[AsyncSocketModeHandler] = []

    class Recorded(AsyncSocketModeHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(slack_adapter, "AsyncSocketModeHandler", Recorded)
    return made


def socket_adapter(
    db: Database, server: FakeSocketModeServer, app_token: str, connect_timeout: float = CONNECT_TIMEOUT
) -> SlackAdapter:
    return SlackAdapter(
        token=BOT_TOKEN,
        app_token=app_token,
        engine=db.engine,
        runner=StorageRunner(),
        api_url=server.api_url,
        pace_seconds=0.0,
        connect_timeout=connect_timeout,
    )


async def closed_and_gone(server: FakeSocketModeServer, handler: AsyncSocketModeHandler) -> None:
    """The handler's Socket Mode client is closed, with its aiohttp session, and none of its tasks runs."""
    client = handler.client
    assert client.closed
    assert client.current_session is None or client.current_session.closed
    assert client.aiohttp_client_session.closed
    await server.wait_for(lambda: not pending_tasks())
    assert server.live == []


@pytest.mark.parametrize(
    ("app_token", "error"),
    [
        pytest.param(BOT_TOKEN, "not_allowed_token_type", id="bot-token-as-app-token"),
        pytest.param(REVOKED_APP_TOKEN, "invalid_auth", id="unknown-app-token"),
    ],
)
async def test_a_wrong_app_token_fails_start_at_once_naming_the_setting(
    db: Database,
    handlers: list[AsyncSocketModeHandler],
    caplog: pytest.LogCaptureFixture,
    app_token: str,
    error: str,
) -> None:
    """slack-sdk's client would retry apps.connections.open every 10 s for ever: the adapter asks once
    itself, and a refusal is a :class:`SlackStartError` before any Socket Mode client exists."""
    caplog.set_level(logging.DEBUG)
    async with FakeSocketModeServer() as server:
        adapter = socket_adapter(db, server, app_token)
        before = snapshot(db.engine)
        caplog.clear()
        with pytest.raises(SlackStartError) as caught:
            await asyncio.wait_for(adapter.start(), START_TIMEOUT)
        assert caught.value.setting == "SLACK_APP_TOKEN"
        assert caught.value.error == error
        message = str(caught.value)
        assert message.startswith(f"SLACK_APP_TOKEN: Slack refused it at apps.connections.open ({error})")
        assert app_token not in message
        assert not adapter.started
        assert [c.authorization for c in server.of(OPEN)] == [f"Bearer {app_token}"]
        assert handlers == []  # no Socket Mode client, so no task, session or retry loop
        assert server.connections == []
        assert not pending_tasks()
        assert snapshot(db.engine) == before
        await adapter.stop()  # harmless after a failed start
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING or "Retrying" in r.getMessage()]
    assert problems == [], [r.getMessage() for r in problems]


async def test_a_refused_bot_token_names_slack_bot_token(db: Database) -> None:
    async with FakeSocketModeServer() as server:
        adapter = SlackAdapter(
            token="xoxb-revoked", app_token=APP_TOKEN, engine=db.engine, runner=StorageRunner(),
            api_url=server.api_url,
        )  # fmt: skip
        with pytest.raises(SlackStartError) as caught:
            await asyncio.wait_for(adapter.start(), START_TIMEOUT)
        assert str(caught.value) == "SLACK_BOT_TOKEN: Slack refused it at auth.test (invalid_auth)"
        assert (caught.value.setting, caught.value.error) == ("SLACK_BOT_TOKEN", "invalid_auth")
        assert server.of(OPEN) == []


async def test_a_socket_url_nobody_listens_on_fails_start_after_the_connect_timeout(
    db: Database, handlers: list[AsyncSocketModeHandler]
) -> None:
    """apps.connections.open hands out a URL, but nothing answers there: slack-sdk would retry connecting
    for ever; the adapter gives up after ``connect_timeout`` and closes the client."""
    async with FakeSocketModeServer(ticket_base=f"ws://127.0.0.1:{unused_port()}") as server:
        adapter = socket_adapter(db, server, APP_TOKEN)
        with pytest.raises(SlackStartError) as caught:
            await asyncio.wait_for(adapter.start(), START_TIMEOUT)
        assert str(caught.value) == "Socket Mode did not connect to 127.0.0.1 within 0.5 s"
        assert (caught.value.setting, caught.value.error) == (None, "timeout")
        assert not adapter.started
        assert len(server.of(OPEN)) == 1
        (handler,) = handlers
        await closed_and_gone(server, handler)
        assert server.connections == []


async def test_a_socket_host_that_never_answers_fails_start_after_the_connect_timeout(
    db: Database, handlers: list[AsyncSocketModeHandler]
) -> None:
    """The WebSocket handshake hangs: the timeout ends it, and the client closes its TCP connection."""
    async with SilentServer() as silent, FakeSocketModeServer(ticket_base=silent.base) as server:
        adapter = socket_adapter(db, server, APP_TOKEN)
        with pytest.raises(SlackStartError) as caught:
            await asyncio.wait_for(adapter.start(), START_TIMEOUT)
        assert caught.value.error == "timeout"
        assert silent.accepted == 1
        (handler,) = handlers
        await closed_and_gone(server, handler)
        await server.wait_for(lambda: silent.closed == 1)


async def test_a_start_cancelled_while_connecting_leaves_nothing_behind(
    db: Database, handlers: list[AsyncSocketModeHandler]
) -> None:
    """``coachbot run`` interrupted during start-up: the half-made connection is closed, then the
    cancellation goes on."""
    async with SilentServer() as silent, FakeSocketModeServer(ticket_base=silent.base) as server:
        adapter = socket_adapter(db, server, APP_TOKEN, connect_timeout=START_TIMEOUT)
        starting = asyncio.create_task(adapter.start())
        await server.wait_for(lambda: silent.accepted == 1)
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
        assert not adapter.started
        (handler,) = handlers
        await closed_and_gone(server, handler)
        await server.wait_for(lambda: silent.closed == 1)


async def test_the_service_stops_the_adapter_when_binding_fails(
    db: Database, handlers: list[AsyncSocketModeHandler], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runtime stops only the services that started: one that fails after connecting closes itself."""
    async with FakeSocketModeServer() as server:
        adapter = socket_adapter(db, server, APP_TOKEN)
        service = SlackService(adapter, socket_mode=True)

        async def broken() -> list[Any]:
            raise RuntimeError("the roster could not be read")

        monkeypatch.setattr(adapter, "bind_by_email", broken)
        with pytest.raises(RuntimeError, match="roster"):
            await asyncio.wait_for(service.start(), START_TIMEOUT)
        assert not service.started()
        (connection,) = server.connections
        await server.wait_for(lambda: not connection.open)
        assert connection.closed_by_client
        (handler,) = handlers
        await closed_and_gone(server, handler)


async def test_coachbot_run_with_a_revoked_app_token_exits_at_once_naming_it(
    db: Database, tmp_path: Path
) -> None:
    """Before, start-up never finished (and /healthz never came up): now the process ends with the error."""
    async with FakeSocketModeServer() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TELEGRAM_", "OPENAI_"))}
        env |= {
            "DATABASE_URL": db.url,
            "COACHBOT_HTTP_PORT": str(free_port()),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": REVOKED_APP_TOKEN,
            "SLACK_API_URL": server.api_url,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            output = (await asyncio.wait_for(process.communicate(), 60))[0].decode()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == 1, output
        assert "SLACK_APP_TOKEN: Slack refused it at apps.connections.open (invalid_auth)" in output
        assert "Traceback" not in output, output
        assert len(server.of(OPEN)) == 1
        assert server.connections == []
        for secret in (BOT_TOKEN, REVOKED_APP_TOKEN):
            assert secret not in output


# --- the rep's flows ----------------------------------------------------------------------------------


async def test_a_rep_asks_for_help_and_a_quiz_in_her_dm(slack: Harness) -> None:
    await slack.bind()
    rita = Rep(slack)
    acks = await rita.play(
        [
            ("help", HELP),
            ("quiz", OB_1),
            ("[2]", OB_1_RIGHT),
        ]
    )
    sent = [frame for frame in slack.server.connections[0].sent if "envelope_id" in frame]
    assert [ack.envelope_id for ack in acks] == [frame["envelope_id"] for frame in sent]
    assert all(ack.payload is None and ack.connection == 1 for ack in acks)
    assert all(len(slack.server.acks_for(ack.envelope_id)) == 1 for ack in acks)
    assert {c.args["channel"] for c in slack.posts()} == {DM}
    (attempt,) = slack.attempts()
    assert (attempt.correct, attempt.choice_index) == (True, 1)


async def test_a_redelivered_button_pick_is_acknowledged_but_scored_once(slack: Harness) -> None:
    """Slack redelivers an envelope it got no acknowledgement for: the same envelope id and payload."""
    await slack.bind()
    rita = Rep(slack)
    await rita.play([("quiz", OB_1)])
    pick = slack.server.envelope("interactive", rita.click("2"))
    assert pick["accepts_response_payload"] is False
    before = len(slack.server.calls)
    first = await slack.deliver(pick)
    assert shown(slack.server.calls[before:]) == expected_text(OB_1_RIGHT)
    (attempt,) = slack.attempts()
    assert (attempt.correct, attempt.choice_index) == (True, 1)

    state = snapshot(slack.engine)
    calls = len(slack.server.calls)
    again = await slack.deliver(pick)
    assert first.envelope_id == again.envelope_id == pick["envelope_id"]
    assert (first.payload, again.payload) == (None, None)
    assert [c.method for c in slack.server.calls[calls:] if c.method != "auth.test"] == []  # silent
    assert snapshot(slack.engine) == state

    # A second, real click (a new trigger) is told the question is answered; still one attempt.
    await rita.play([("[3]", ALREADY_ANSWERED)])
    assert len(slack.attempts()) == 1
    assert len(slack.server.of("chat.update")) == 1


async def test_a_redelivered_event_is_acknowledged_and_changes_nothing(slack: Harness) -> None:
    await slack.bind()
    rita = Rep(slack)
    body = rita.message("quiz")
    await rita.act_on(body, OB_1)
    state = snapshot(slack.engine)
    calls = len(slack.server.calls)
    for retry in (1, 2):
        ack = await slack.event(body, retry_attempt=retry, retry_reason="timeout")
        assert ack.payload is None
    assert [c.method for c in slack.server.calls[calls:] if c.method != "auth.test"] == []
    assert snapshot(slack.engine) == state


async def test_a_slash_command_is_acknowledged_and_answered_in_the_dm(slack: Harness) -> None:
    await slack.bind()
    envelope = slack.server.envelope("slash_commands", fixture("slash_command") | {"text": "quiz"})
    assert envelope["accepts_response_payload"] is True
    ack = await slack.deliver(envelope)
    assert ack.payload is None  # nothing shown in the channel the command was typed in
    assert [c.args["users"] for c in slack.server.of("conversations.open")] == [RITA]
    assert shown(slack.posts()) == expected_text(OB_1)
    assert slack.posts()[0].args["channel"] == DM


async def test_a_role_play_is_answered_through_the_modal_and_graded(slack: Harness) -> None:
    await slack.bind()
    with read_session(slack.engine) as session:
        person = learning.person_by_email(session, email="rita@example.com")
    assert person is not None
    assert await slack.coach.start_item(person, "coach", "ob-rp")
    ref = slack.delivery().platform_message_ref
    assert ref is not None
    channel, ts = ref.split(":")

    click = fixture("block_actions_answer")
    click["container"]["message_ts"] = ts
    await slack.interaction(click)
    (opened,) = slack.server.of("views.open")  # opened before the click was acknowledged
    assert opened.args["trigger_id"] == click["trigger_id"]
    view = opened.args["view"]
    assert slack.attempts() == []

    submission = fixture("view_submission")
    submission["view"]["private_metadata"] = view["private_metadata"]
    envelope = slack.server.envelope("interactive", submission)
    assert envelope["accepts_response_payload"] is True
    ack = await slack.deliver(envelope)
    assert ack.payload is None  # an empty acknowledgement closes the modal
    assert "Score 100/100" in slack.posts()[-1].args["text"]
    (update,) = slack.server.of("chat.update")
    assert (update.args["channel"], update.args["ts"]) == (channel, ts)
    (attempt,) = slack.attempts()
    assert attempt.score == 100.0
    assert attempt.delivery_id == slack.delivery().id


# --- what the bot ignores ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["bot_message", "own_echo", "message_changed", "reaction_added", "member_joined_channel"]
)
async def test_ignored_payloads_are_acknowledged_and_store_nothing(slack: Harness, name: str) -> None:
    await slack.bind()
    if name == "own_echo":
        body = fixture("message_im")
        body["event"] |= {"user": BOT_USER_ID, "bot_id": BOT_ID, "text": "*Question*"}
    else:
        body = fixture(name)
    state = snapshot(slack.engine)
    calls = len(slack.server.calls)
    ack = await slack.event(body)
    assert ack.payload is None
    assert [c.method for c in slack.server.calls[calls:] if c.method != "auth.test"] == []
    assert snapshot(slack.engine) == state


@pytest.mark.parametrize("name", UNHANDLED)
async def test_payloads_without_a_listener_are_acknowledged_once_and_store_nothing(
    slack: Harness, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Bolt's Socket Mode adapter acknowledges only a handled payload: without a catch-all, Slack would
    redeliver these and show the person an error."""
    await slack.bind()
    kind, payload = unhandled(name)
    envelope = slack.server.envelope("slash_commands" if kind == "command" else "interactive", payload)
    state = snapshot(slack.engine)
    calls = len(slack.server.calls)
    caplog.set_level(logging.INFO)
    ack = await slack.deliver(envelope)
    assert ack.payload == unhandled_ack(name)
    assert len(slack.server.acks_for(envelope["envelope_id"])) == 1
    assert [c.method for c in slack.server.calls[calls:] if c.method != "auth.test"] == []
    assert snapshot(slack.engine) == state
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == [], [r.getMessage() for r in problems]


# --- the connection -----------------------------------------------------------------------------------


async def test_a_refresh_request_reconnects_and_events_keep_coming(slack: Harness) -> None:
    """Slack asks for a fresh connection with ``disconnect``/``refresh_requested``: the client opens a new
    URL with apps.connections.open, connects, and closes the old socket."""
    await slack.bind()
    old = await slack.server.disconnect()
    await slack.server.wait_for(lambda: not old.open and any(c.sent for c in slack.server.live))
    new = await slack.server.connected()
    assert new.number == 2
    assert new.ticket != old.ticket
    assert (old.closed_by_client, old.close_code, old.unexpected) == (True, WSCloseCode.OK, [])
    assert [c.authorization for c in slack.server.of(OPEN)] == [f"Bearer {APP_TOKEN}"] * 2

    (ack,) = await Rep(slack).play([("help", HELP)])
    assert ack.connection == new.number
    assert slack.server.live == [new]


OUR_CODE = ("/slack_sdk/", "/slack_bolt/", "/bot/", "/scheduler/", "/storage/")


def pending_tasks() -> list[asyncio.Task[Any]]:
    """Unfinished tasks running Slack SDK, Bolt or coachbot code (not the fake servers' own)."""
    current = asyncio.current_task()
    found = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        filename = str(getattr(code, "co_filename", ""))
        if task is not current and not task.done() and any(p in filename for p in OUR_CODE):
            found.append(task)
    return found


async def test_stop_finishes_work_in_flight_and_closes_the_socket_cleanly(
    slack: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await slack.bind()
    connection = await slack.server.connected()
    handler = slack.adapter._socket
    assert handler is not None
    client = handler.client
    assert pending_tasks()  # the client's receiver, monitor and message processor

    # Acknowledged, but the engine's reply may not be posted yet: stop() waits for it.
    before = len(slack.server.calls)
    await slack.server.deliver_envelope(slack.server.envelope("events_api", Rep(slack).message("help")))
    await slack.adapter.stop()
    assert shown(slack.server.calls[before:]) == expected_text(HELP)
    assert not slack.adapter.started

    await slack.server.wait_for(lambda: not connection.open)
    assert (connection.closed_by_client, connection.close_code) == (True, WSCloseCode.OK)
    assert connection.unexpected == []
    assert client.closed
    assert client.current_session is not None
    assert client.current_session.closed
    assert client.aiohttp_client_session.closed
    await slack.server.wait_for(lambda: not pending_tasks())
    assert slack.server.live == []
    assert len(slack.server.of(OPEN)) == 1  # no reconnection

    del handler, client
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == [], [r.getMessage() for r in problems]
