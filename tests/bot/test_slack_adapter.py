"""The Slack adapter end to end: signed requests through Bolt's FastAPI handler, the real engine and
database (SQLite and Postgres), and a fake Slack Web API server (tests/fakes/slack_server.py)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.adapters.slack import SlackAdapter
from bot.engine import Coach
from bot.events import MAX_FILE_BYTES
from scheduler.messages import message
from scheduler.sender import Address
from storage import learning
from storage.db import read_session
from storage.models import Attempt, AuditLog, ChatIdentity, Delivery, Pack
from storage.runner import StorageRunner
from tests.bot.transcript import STEP, Clock, coach_for_tests, load_content
from tests.conftest import DATA, Database, snapshot
from tests.fakes.slack_server import (
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    DOWNLOAD,
    TEAM_ID,
    Call,
    FakeSlackServer,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "slack"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
RITA = "U0RITA"
DM = "DU0RITA"
SLACK_USERS = {"rita@example.com": RITA, "ben@example.com": "U0BEN"}
ADA = "U0ADA"
MINI_PACK = DATA / "mini-pack.yaml"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    data.pop("_doc")
    return data


def sign(body: str, timestamp: int, secret: str = SECRET) -> str:
    """X-Slack-Signature as https://api.slack.com/authentication/verifying-requests-from-slack documents."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Harness:
    engine: Engine
    server: FakeSlackServer
    adapter: SlackAdapter
    coach: Coach
    http: httpx.AsyncClient
    clock: Clock

    async def post(
        self,
        body: str,
        content_type: str,
        *,
        retry_num: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        timestamp = int(time.time())
        sent = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": sign(body, timestamp),
        }
        if retry_num is not None:
            sent["X-Slack-Retry-Num"] = str(retry_num)
            sent["X-Slack-Retry-Reason"] = "http_timeout"
        sent.update(headers or {})
        self.clock.advance(STEP)
        response = await self.http.post("/slack/events", content=body.encode(), headers=sent)
        await self.adapter.drain()
        return response

    async def event(self, body: dict[str, Any], *, retry_num: int | None = None) -> httpx.Response:
        return await self.post(json.dumps(body), "application/json", retry_num=retry_num)

    async def interaction(self, payload: dict[str, Any]) -> httpx.Response:
        return await self.post(
            urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
        )

    async def command(self, text: str, trigger: str = "1.2.command") -> httpx.Response:
        fields = fixture("slash_command") | {"text": text, "trigger_id": trigger}
        return await self.post(urlencode(fields), "application/x-www-form-urlencoded")

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


@pytest.fixture
async def slack(db: Database) -> AsyncIterator[Harness]:
    load_content(db.engine)
    clock = Clock()
    async with FakeSlackServer(users_by_email=dict(SLACK_USERS)) as server:
        runner = StorageRunner()
        adapter = SlackAdapter(
            token=BOT_TOKEN,
            signing_secret=SECRET,
            engine=db.engine,
            runner=runner,
            api_url=server.api_url,
            pace_seconds=0.0,
            clock=clock,
        )
        coach = coach_for_tests(db.engine, runner, adapter, clock)
        adapter.set_handler(coach.handle)
        await adapter.start()

        api = FastAPI()

        @api.post("/slack/events")
        async def slack_events(request: Request) -> Response:
            return await adapter.request_handler.handle(request)

        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://coachbot.test") as http:
            yield Harness(db.engine, server, adapter, coach, http, clock)
        await adapter.stop()


async def bound(h: Harness) -> None:
    result = await h.adapter.bind_by_email()
    assert {b.email for b in result} == {"rita@example.com", "ben@example.com"}


def buttons(call: Call) -> list[dict[str, Any]]:
    blocks = call.args["blocks"]
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


# --- the rep's flows ----------------------------------------------------------------------------------


async def test_start_checks_the_token_with_auth_test(slack: Harness) -> None:
    auth = slack.server.of("auth.test")
    assert auth
    assert auth[0].authorization == f"Bearer {BOT_TOKEN}"
    assert slack.adapter.bot_user_id == BOT_USER_ID
    assert slack.adapter.team_id == TEAM_ID


async def test_bind_by_email_binds_roster_people_slack_knows(slack: Harness) -> None:
    await bound(slack)
    lookups = slack.server.of("users.lookupByEmail")
    assert {c.args["email"] for c in lookups} == {
        "rita@example.com",
        "ben@example.com",
        "mia@example.com",
        "ada@example.com",
    }
    assert all(c.http_method == "GET" and c.encoding == "query" for c in lookups)
    with read_session(slack.engine) as session:
        rita = learning.person_for_identity(session, platform="slack", workspace=TEAM_ID, user_id=RITA)
    assert rita is not None
    assert rita.email == "rita@example.com"
    assert await slack.adapter.bind_by_email() == []  # only mia and ada are looked up again


async def test_a_rep_gets_an_mcq_clicks_and_gets_feedback_and_an_updated_question(slack: Harness) -> None:
    await bound(slack)
    response = await slack.command("quiz")
    assert response.status_code == 200
    opened = slack.server.of("conversations.open")
    assert [c.args["users"] for c in opened] == [RITA]
    with Session(slack.engine) as session:
        identity = session.exec(select(ChatIdentity).where(ChatIdentity.user_id == RITA)).one()
    assert identity.dm_channel == DM
    (question,) = slack.posts()
    assert question.encoding == "json"
    assert question.args["channel"] == DM
    choice_buttons = buttons(question)
    assert len(choice_buttons) == 3
    delivery = slack.delivery()
    assert delivery.platform_message_ref is not None
    channel, ts = delivery.platform_message_ref.split(":")
    assert channel == DM

    click = fixture("block_actions_choice")
    click["actions"][0] |= {"action_id": choice_buttons[1]["action_id"], "value": choice_buttons[1]["value"]}
    click["container"]["message_ts"] = ts
    before = len(slack.server.calls)
    assert (await slack.interaction(click)).status_code == 200
    feedback = slack.posts(before)[0]
    assert "Correct" in feedback.args["text"] or "Not quite" in feedback.args["text"]
    (update,) = slack.server.of("chat.update")
    assert update.encoding == "json"
    assert (update.args["channel"], update.args["ts"]) == (DM, ts)
    assert "You answered 2" in update.args["text"]
    assert all(block["type"] != "actions" for block in update.args["blocks"])
    assert len(slack.attempts()) == 1

    # The same click again (Slack resends it) and a second click: still exactly one attempt.
    assert (await slack.interaction(click)).status_code == 200
    click["trigger_id"] = "1111111111.2222222222.choice0002"
    before = len(slack.server.calls)
    assert (await slack.interaction(click)).status_code == 200
    assert len(slack.attempts()) == 1
    assert "already answered" in slack.posts(before)[0].args["text"]
    assert len(slack.server.of("chat.update")) == 1


async def test_a_role_play_is_answered_through_the_modal_and_graded(slack: Harness) -> None:
    await bound(slack)
    with read_session(slack.engine) as session:
        rita = learning.person_by_email(session, email="rita@example.com")
    assert rita is not None
    assert await slack.coach.start_item(rita, "coach", "ob-rp")
    (scenario,) = slack.posts()
    (answer_button,) = buttons(scenario)
    assert answer_button["action_id"] == "coach_answer"
    ref = slack.delivery().platform_message_ref
    assert ref is not None
    channel, ts = ref.split(":")

    click = fixture("block_actions_answer")
    click["container"]["message_ts"] = ts
    assert (await slack.interaction(click)).status_code == 200
    (opened,) = slack.server.of("views.open")
    assert opened.encoding == "json"
    assert opened.args["trigger_id"] == click["trigger_id"]
    view = opened.args["view"]
    assert view["private_metadata"] == ref
    assert slack.attempts() == []

    submission = fixture("view_submission")
    submission["view"]["private_metadata"] = view["private_metadata"]
    response = await slack.interaction(submission)
    assert response.status_code == 200
    assert response.content in (b"", b"null")  # acknowledged at once: the modal closes
    feedback = slack.posts()[-1]
    assert "Score 100/100" in feedback.args["text"]
    (update,) = slack.server.of("chat.update")
    assert (update.args["channel"], update.args["ts"]) == (channel, ts)
    (attempt,) = slack.attempts()
    assert attempt.grader.startswith("rubric")
    assert attempt.score == 100.0
    assert attempt.delivery_id == slack.delivery().id

    assert (await slack.interaction(submission)).status_code == 200  # a resubmission changes nothing
    assert len(slack.attempts()) == 1


async def test_replayed_events_change_nothing_but_an_unseen_retry_is_processed(slack: Harness) -> None:
    await bound(slack)
    with read_session(slack.engine) as session:
        rita = learning.person_by_email(session, email="rita@example.com")
    assert rita is not None
    assert await slack.coach.start_item(rita, "coach", "ob-rp")
    body = fixture("message_im")
    body["event"]["text"] = "I understand your concern. The trial data shows fewer hospital stays."
    assert (await slack.event(body)).status_code == 200
    assert len(slack.attempts()) == 1
    posts = len(slack.posts())
    before = snapshot(slack.engine)
    for retry in (1, 2):
        assert (await slack.event(body, retry_num=retry)).status_code == 200
    assert len(slack.attempts()) == 1
    assert len(slack.posts()) == posts
    assert snapshot(slack.engine) == before

    fresh = fixture("message_im")
    fresh["event_id"] = "Ev0NEVERSEEN"
    assert (await slack.event(fresh, retry_num=1)).status_code == 200
    assert "coachbot" in slack.posts()[-1].args["text"]  # the help text


# --- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("forgery", ["bad", "missing", "old", "altered"])
async def test_forged_requests_get_401_and_store_nothing(slack: Harness, forgery: str) -> None:
    await bound(slack)
    before = snapshot(slack.engine)
    calls = len(slack.server.calls)
    body = json.dumps(fixture("message_im"))
    timestamp = int(time.time())
    headers = {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": sign(body, timestamp)}
    if forgery == "bad":
        headers["X-Slack-Signature"] = sign(body, timestamp, secret="not-the-secret")
    elif forgery == "missing":
        del headers["X-Slack-Signature"]
    elif forgery == "old":
        old = timestamp - 6 * 60
        headers = {"X-Slack-Request-Timestamp": str(old), "X-Slack-Signature": sign(body, old)}
    else:
        body = body.replace('"help"', '"quiz"')
    response = await slack.http.post(
        "/slack/events", content=body.encode(), headers={"Content-Type": "application/json", **headers}
    )
    await slack.adapter.drain()
    assert response.status_code == 401
    assert snapshot(slack.engine) == before
    assert len(slack.server.calls) == calls


@pytest.mark.parametrize(
    "name", ["message_changed", "bot_message", "reaction_added", "member_joined_channel", "own_echo"]
)
async def test_ignored_payloads_are_acknowledged_and_store_nothing(slack: Harness, name: str) -> None:
    await bound(slack)
    if name == "own_echo":
        body = fixture("message_im")
        body["event"] |= {"user": BOT_USER_ID, "bot_id": BOT_ID, "text": "*Question*"}
    else:
        body = fixture(name)
    before = snapshot(slack.engine)
    calls = len(slack.server.calls)
    assert (await slack.event(body)).status_code == 200
    assert snapshot(slack.engine) == before
    assert [c.method for c in slack.server.calls[calls:] if c.method != "auth.test"] == []


USER = {"id": RITA, "username": "rita", "name": "rita", "team_id": TEAM_ID}
TEAM = {"id": TEAM_ID, "domain": "coach-test"}
UNHANDLED = [
    "global_shortcut",
    "message_shortcut",
    "other_view_submission",
    "view_closed",
    "block_suggestion",
    "other_command",
]
"""Payloads the bot has no listener of its own for: each is acknowledged, gets no reply, stores nothing."""


def unhandled(name: str) -> tuple[str, dict[str, Any]]:
    """One of :data:`UNHANDLED` as Slack sends it: ``("command", the slash command's fields)`` or
    ``("interactive", the interaction payload)``. Shapes from
    https://api.slack.com/reference/interaction-payloads and
    https://api.slack.com/interactivity/slash-commands#app_command_handling."""
    common = {"api_app_id": "A0COACH", "token": "verification-token-unused", "team": TEAM}
    if name == "global_shortcut":  # https://api.slack.com/reference/interaction-payloads/shortcuts
        return "interactive", common | {
            "type": "shortcut",
            "callback_id": "create_task",
            "trigger_id": "1111111111.2222222222.shortcut0001",
            "action_ts": "1700000300.000100",
            "user": {"id": RITA, "username": "rita", "team_id": TEAM_ID},
            "enterprise": None,
            "is_enterprise_install": False,
        }
    if name == "message_shortcut":
        return "interactive", common | {
            "type": "message_action",
            "callback_id": "save_message",
            "trigger_id": "1111111111.2222222222.shortcut0002",
            "action_ts": "1700000300.000200",
            "message_ts": "1700000001.000100",
            "response_url": "https://hooks.slack.com/app/T0COACH/2/jkl",
            "user": {"id": RITA, "name": "rita"},
            "channel": {"id": DM, "name": "directmessage"},
            "message": {"type": "message", "user": RITA, "text": "quiz", "ts": "1700000001.000100"},
        }
    if name == "other_view_submission":  # a modal of another app feature, with an answer-like state
        submission = fixture("view_submission")
        submission["view"] |= {"id": "V0OTHER001", "callback_id": "feedback_modal"}
        return "interactive", submission
    if name == "view_closed":  # https://api.slack.com/reference/interaction-payloads/views#view_closed
        view = fixture("view_submission")["view"]  # the answer modal, closed instead of submitted
        return "interactive", common | {
            "type": "view_closed",
            "user": USER,
            "view": view,
            "is_cleared": False,
        }
    if name == "block_suggestion":  # https://api.slack.com/reference/block-kit/block-elements#external_select
        return "interactive", common | {
            "type": "block_suggestion",
            "user": USER,
            "container": {"type": "view", "view_id": "V0OTHER001"},
            "action_id": "pick_account",
            "block_id": "account",
            "value": "rao",
            "enterprise": None,
            "is_enterprise_install": False,
            "view": fixture("view_submission")["view"] | {"id": "V0OTHER001", "callback_id": "log_modal"},
        }
    if name == "other_command":
        fields = fixture("slash_command") | {"command": "/other", "text": "quiz"}
        return "command", fields | {"trigger_id": "1111111111.2222222222.command0002"}
    raise ValueError(name)


def unhandled_ack(name: str) -> dict[str, Any] | None:
    """What the acknowledgement carries: an options request is answered with no options, the rest with
    nothing (which closes a submitted modal)."""
    return {"options": []} if name == "block_suggestion" else None


@pytest.mark.parametrize("name", UNHANDLED)
async def test_payloads_without_a_listener_get_200_no_reply_and_store_nothing(
    slack: Harness, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a catch-all, Bolt answers these 404 ("unhandled request") and Slack shows the person an
    error."""
    await bound(slack)
    kind, payload = unhandled(name)
    before = snapshot(slack.engine)
    calls = len(slack.server.calls)
    caplog.set_level(logging.INFO)
    if kind == "command":
        response = await slack.post(urlencode(payload), "application/x-www-form-urlencoded")
    else:
        response = await slack.interaction(payload)
    assert response.status_code == 200
    body = response.json() if response.content not in (b"", b"null") else None
    assert body == unhandled_ack(name)
    assert [c.method for c in slack.server.calls[calls:] if c.method != "auth.test"] == []
    assert snapshot(slack.engine) == before
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == [], [r.getMessage() for r in problems]


async def test_an_unknown_user_is_told_to_ask_an_admin_and_nothing_is_written(slack: Harness) -> None:
    before = snapshot(slack.engine)
    body = fixture("message_im")
    body["event"] |= {"user": "U0STRANGER", "channel": "DU0STRANGER"}
    assert (await slack.event(body)).status_code == 200
    (reply,) = slack.posts()
    assert reply.args["channel"] == "DU0STRANGER"
    assert "ask your coachbot admin" in reply.args["text"]
    assert snapshot(slack.engine) == before


# --- sending ------------------------------------------------------------------------------------------


async def test_a_429_is_waited_out_as_retry_after_says(slack: Harness) -> None:
    slack.server.rate_limit_once("chat.postMessage", retry_after=1)
    to = Address("slack", TEAM_ID, RITA, DM)
    ref = await slack.adapter.send_message(to, message("Hello & <welcome>"))
    first, second = slack.server.of("chat.postMessage")
    assert second.at - first.at >= 1.0
    assert second.args["text"] == "Hello &amp; &lt;welcome&gt;"
    assert ref is not None
    assert ref.startswith(f"{DM}:")


async def test_sends_are_paced_per_channel(slack: Harness) -> None:
    paced = SlackAdapter(
        token=BOT_TOKEN,
        signing_secret=SECRET,
        engine=slack.engine,
        runner=StorageRunner(),
        api_url=slack.server.api_url,
        pace_seconds=0.3,
    )
    to = Address("slack", TEAM_ID, RITA, DM)
    other = Address("slack", TEAM_ID, "U0BEN", "DU0BEN")
    for _ in range(2):
        await paced.send_message(to, message("one"))
    await paced.send_message(other, message("two"))
    first, second, third = slack.server.of("chat.postMessage")
    assert second.at - first.at >= 0.29
    assert third.at - second.at < 0.29


async def test_a_chart_is_uploaded_with_files_upload_v2(slack: Harness) -> None:
    await bound(slack)
    to = Address("slack", TEAM_ID, RITA, None)
    file_id = await slack.adapter.send_image(to, b"\x89PNG fake", message("Week 49"))
    assert file_id is not None
    assert slack.server.uploads[file_id] == b"\x89PNG fake"
    (complete,) = slack.server.of("files.completeUploadExternal")
    assert complete.args["channel_id"] == DM


async def test_concurrent_copies_of_one_click_record_one_attempt(slack: Harness) -> None:
    await bound(slack)
    await slack.command("quiz")
    (question,) = slack.posts()
    first = buttons(question)[0]
    click = fixture("block_actions_choice")
    click["actions"][0] |= {"action_id": first["action_id"], "value": first["value"]}
    responses = await asyncio.gather(*(slack.interaction(click) for _ in range(3)))
    await slack.adapter.drain()
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert len(slack.attempts()) == 1
    assert len(slack.server.of("chat.update")) == 1


# --- shared files -------------------------------------------------------------------------------------


async def bound_with_ada(h: Harness) -> None:
    """Rita and Ben, and also Ada (the admin) bound to her Slack id."""
    h.server.users_by_email["ada@example.com"] = ADA
    result = await h.adapter.bind_by_email()
    assert {b.email for b in result} == {"rita@example.com", "ben@example.com", "ada@example.com"}


def file_share(h: Harness, user: str, file: dict[str, Any], event_id: str = "Ev0FILE0001") -> dict[str, Any]:
    """The documented ``file_share`` message from ``user`` in their DM, sharing ``file``."""
    body = fixture("message_file_share")
    body["event_id"] = event_id
    body["event"] |= {"user": user, "channel": h.server.dm_channel(user), "files": [file]}
    return body


def pack_rows(engine: Engine) -> list[Pack]:
    with Session(engine) as session:
        return list(session.exec(select(Pack).where(Pack.key == "mini")))


async def test_an_admin_loads_a_pack_by_sharing_the_file_in_her_dm(slack: Harness) -> None:
    await bound_with_ada(slack)
    content = MINI_PACK.read_bytes()
    file = slack.server.add_file("mini-pack.yaml", content, user=ADA)
    body = file_share(slack, ADA, file)
    assert (await slack.event(body)).status_code == 200
    (download,) = slack.server.of(DOWNLOAD)
    assert download.authorization == f"Bearer {BOT_TOKEN}"
    assert download.args["file"] == file["id"]
    assert len(pack_rows(slack.engine)) == 1
    (reply,) = slack.posts()
    assert reply.args["channel"] == slack.server.dm_channel(ADA)
    assert "mini: new" in reply.args["text"]

    before = snapshot(slack.engine)
    calls = len(slack.server.calls)
    assert (await slack.event(body, retry_num=1)).status_code == 200  # Slack's retry: nothing again
    assert slack.server.calls[calls:] == []
    assert snapshot(slack.engine) == before


async def test_a_rep_sharing_a_pack_is_refused_and_the_refusal_is_audited(slack: Harness) -> None:
    await bound(slack)
    file = slack.server.add_file("mini-pack.yaml", MINI_PACK.read_bytes(), user=RITA)
    assert (await slack.event(file_share(slack, RITA, file))).status_code == 200
    (reply,) = slack.posts()
    assert reply.args["channel"] == DM
    assert "only an admin" in reply.args["text"]
    assert pack_rows(slack.engine) == []
    with Session(slack.engine) as session:
        refusals = list(session.exec(select(AuditLog).where(AuditLog.action == "refused")))
    assert [(a.actor, a.details["wanted"]) for a in refusals] == [("slack:rita@example.com", "load a file")]


async def test_an_oversized_file_is_refused_without_downloading_it(slack: Harness) -> None:
    await bound_with_ada(slack)
    file = slack.server.add_file("huge.yaml", b"pack: huge\n", user=ADA) | {"size": MAX_FILE_BYTES + 1}
    before = snapshot(slack.engine)
    assert (await slack.event(file_share(slack, ADA, file))).status_code == 200
    assert slack.server.of(DOWNLOAD) == []
    (reply,) = slack.posts()
    assert "huge.yaml is larger than 2 MB" in reply.args["text"]
    assert snapshot(slack.engine) == before


async def test_a_file_larger_than_its_stated_size_is_cut_off_and_refused(slack: Harness) -> None:
    await bound_with_ada(slack)
    file = slack.server.add_file("big.yaml", b"#" * (MAX_FILE_BYTES + 1), user=ADA) | {"size": 10}
    assert (await slack.event(file_share(slack, ADA, file))).status_code == 200
    assert len(slack.server.of(DOWNLOAD)) == 1
    (reply,) = slack.posts()
    assert "big.yaml is larger than 2 MB" in reply.args["text"]
    assert pack_rows(slack.engine) == []


async def test_the_download_needs_the_bot_token(slack: Harness) -> None:
    file = slack.server.add_file("mini-pack.yaml", MINI_PACK.read_bytes(), user=ADA)
    async with httpx.AsyncClient() as http:
        anonymous = await http.get(file["url_private_download"])
        wrong = await http.get(file["url_private_download"], headers={"Authorization": "Bearer xoxb-nope"})
        right = await http.get(file["url_private_download"], headers={"Authorization": f"Bearer {BOT_TOKEN}"})
    assert (anonymous.status_code, wrong.status_code) == (403, 403)
    assert right.content == MINI_PACK.read_bytes()
    assert [c.authorization for c in slack.server.of(DOWNLOAD)] == [
        None,
        "Bearer xoxb-nope",
        f"Bearer {BOT_TOKEN}",
    ]


async def test_a_refused_download_is_reported_and_loads_nothing(slack: Harness) -> None:
    await bound_with_ada(slack)
    file = slack.server.add_file("mini-pack.yaml", MINI_PACK.read_bytes(), user=ADA)
    slack.server.hosted.clear()  # the file is gone by the time we fetch it
    assert (await slack.event(file_share(slack, ADA, file))).status_code == 200
    assert len(slack.server.of(DOWNLOAD)) == 1
    (reply,) = slack.posts()
    assert "could not fetch mini-pack.yaml" in reply.args["text"]
    assert pack_rows(slack.engine) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://files.example.com/files-pri/T0COACH-F1/download/mini-pack.yaml",
        "http://files.slack.com/files-pri/T0COACH-F1/download/mini-pack.yaml",
    ],
)
async def test_a_file_url_off_slacks_hosts_is_never_fetched(slack: Harness, url: str) -> None:
    await bound_with_ada(slack)
    file = slack.server.add_file("mini-pack.yaml", MINI_PACK.read_bytes(), user=ADA)
    file["url_private_download"] = url
    assert not slack.adapter.may_download(url)
    assert slack.adapter.may_download("https://files.slack.com/files-pri/T0COACH-F1/download/x.yaml")
    assert (await slack.event(file_share(slack, ADA, file))).status_code == 200
    assert slack.server.of(DOWNLOAD) == []
    (reply,) = slack.posts()
    assert "could not fetch mini-pack.yaml" in reply.args["text"]
    assert pack_rows(slack.engine) == []


async def test_a_strangers_file_is_not_downloaded_and_they_are_told_to_ask_an_admin(slack: Harness) -> None:
    file = slack.server.add_file("mini-pack.yaml", MINI_PACK.read_bytes(), user="U0STRANGER")
    before = snapshot(slack.engine)
    assert (await slack.event(file_share(slack, "U0STRANGER", file))).status_code == 200
    assert slack.server.of(DOWNLOAD) == []
    (reply,) = slack.posts()
    assert "ask your coachbot admin" in reply.args["text"]
    assert snapshot(slack.engine) == before
