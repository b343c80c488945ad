"""The Telegram adapter end to end: PTB against the fake Bot API server, the real engine and database.

Nothing of PTB is monkeypatched: the adapter talks HTTP to ``tests/fakes/telegram_server.py``, fed with
the update fixtures in ``tests/fixtures/telegram`` (each names its Bot API documentation page).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from bot.adapters.telegram.adapter import INVITE_REFUSED, PacedRateLimiter, TelegramAdapter, file_url_for
from bot.adapters.telegram.service import TelegramService
from bot.engine import Coach, CoachConfig
from bot.events import MAX_FILE_BYTES
from bot.grading import RubricGrader
from bot.protocol import AdapterStartError
from bot.replies import UNKNOWN_PERSON
from content.loading import load_packs, load_roster
from scheduler import memory
from scheduler.messages import message
from scheduler.sender import Address
from storage import learning, onboarding
from storage.db import read_session, write_session
from storage.models import (
    Attempt,
    AuditLog,
    ChatIdentity,
    Delivery,
    Pack,
    Person,
    ProcessedUpdate,
    utcnow,
)
from storage.runner import StorageRunner
from tests.conftest import Database, snapshot
from tests.fakes.telegram_server import Call, Failure, FakeTelegramServer, query_too_old, retry_after

DATA = Path(__file__).resolve().parent.parent / "data"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "telegram"
RITA_ID = 100002
RITA = Address("telegram", "", str(RITA_ID), str(RITA_ID))
ADA_ID = 100001


def fixture(name: str, update_id: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    if update_id is not None:
        data["update_id"] = update_id
    return data


def from_user(data: dict[str, Any], user_id: int) -> dict[str, Any]:
    """The same update sent by another Telegram user (in their own private chat)."""
    data = copy.deepcopy(data)
    message = data["message"]
    message["from"] = {**message["from"], "id": user_id, "first_name": "Stranger", "username": None}
    message["chat"] = {"id": user_id, "type": "private", "first_name": "Stranger"}
    return data


@dataclass
class Rig:
    db: Database
    server: FakeTelegramServer
    adapter: TelegramAdapter
    coach: Coach

    @property
    def engine(self) -> Engine:
        return self.db.engine

    async def webhook(self, *updates: dict[str, Any]) -> None:
        for update in updates:
            await self.adapter.process_webhook_update(update)
        await self.adapter.drain()

    def person(self, email: str) -> learning.PersonView:
        with read_session(self.engine) as session:
            person = learning.person_by_email(session, email=email)
        assert person is not None
        return person

    def attempts(self) -> list[Attempt]:
        with read_session(self.engine) as session:
            return list(session.exec(select(Attempt).order_by(col(Attempt.id))))

    def delivery(self, ref: str) -> Delivery:
        with read_session(self.engine) as session:
            delivery_id = onboarding.delivery_for_message_ref(session, ref=ref)
            assert delivery_id is not None, f"no delivery sent as {ref}"
            delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        return delivery

    def answer_of(self, delivery: Delivery) -> int:
        context = self.question(delivery)
        return int(context.body["answer"])

    def question(self, delivery: Delivery) -> learning.DeliveryContext:
        assert delivery.id is not None
        with read_session(self.engine) as session:
            context = learning.question_context(session, delivery_id=delivery.id)
        assert context is not None
        return context


def bind(engine: Engine, email: str, user_id: int) -> None:
    with write_session(engine) as session:
        person = learning.person_by_email(session, email=email)
        assert person is not None
        learning.bind_identity(
            session, person_id=person.id, platform="telegram", workspace="", user_id=str(user_id)
        )


@asynccontextmanager
async def rig(
    db: Database, *, webhook: bool = True, pack: Path = DATA / "coach-pack.yaml", bind_rita: bool = True
) -> AsyncIterator[Rig]:
    load_packs(db.engine, [pack], actor="test")
    load_roster(db.engine, DATA / "coach-roster.yaml", actor="test")
    if bind_rita:
        bind(db.engine, "rita@example.com", RITA_ID)
    async with FakeTelegramServer() as server:
        runner = StorageRunner()
        adapter = TelegramAdapter(
            token=server.token,
            engine=db.engine,
            runner=runner,
            base_url=server.base_url,
            webhook=webhook,
            per_chat_interval=0.0,
            poll_timeout=1,
        )
        coach = Coach(
            engine=db.engine,
            runner=runner,
            adapter=adapter,
            grader=RubricGrader(),
            memory_model=memory.make_scheduler(fuzzing=False),
            config=CoachConfig(default_timezone="UTC"),
        )
        adapter.attach(coach.handle)
        await adapter.start()
        try:
            yield Rig(db, server, adapter, coach)
        finally:
            await adapter.stop()
        assert server.rejected == [], "a request reached the fake with a wrong token or path"


def keyboard_of(call: Call) -> list[list[dict[str, Any]]] | None:
    markup = call.json_param("reply_markup")
    return markup.get("inline_keyboard") if isinstance(markup, dict) else None


def callback(update_id: int, *, data: str, message_id: int, query_id: str) -> dict[str, Any]:
    update = fixture("callback_query", update_id)
    query = update["callback_query"]
    query["id"], query["data"] = query_id, data
    query["message"]["message_id"] = message_id
    return update


def reply_to(message_id: int, text: str, update_id: int) -> dict[str, Any]:
    update = fixture("reply", update_id)
    update["message"]["text"] = text
    update["message"]["reply_to_message"]["message_id"] = message_id
    return update


# --- a rep's conversation ---------------------------------------------------------------------------


async def test_mcq_by_long_polling_answered_with_a_button(db: Database) -> None:
    async with rig(db, webhook=False) as r:
        server = r.server
        assert server.calls_to("getMe")
        commands = server.calls_to("setMyCommands")[0].json_param("commands")
        assert {c["command"] for c in commands} >= {"quiz", "stats", "help", "log"}
        assert server.calls_to("deleteWebhook"), "start_polling removes any webhook first"

        server.push_update(fixture("quiz"))
        await server.wait_for(lambda: any(keyboard_of(c) for c in server.calls_to("sendMessage")))
        await r.adapter.drain()  # the delivery is marked sent after the message went out
        question = next(c for c in server.calls_to("sendMessage") if keyboard_of(c))
        assert question.params["parse_mode"] == "HTML"
        assert question.encoding in ("form", "json")
        assert str(question.params["text"]).startswith("<b>Question</b>")
        delivery = r.delivery(f"{RITA_ID}:1")
        answer = r.answer_of(delivery)
        buttons = keyboard_of(question)
        assert buttons is not None
        assert [b["callback_data"] for b in buttons[0]][answer] == f"a:{delivery.id}:{answer}"

        server.push_update(
            callback(700020, data=f"a:{delivery.id}:{answer}", message_id=1, query_id="q-mcq-1")
        )
        await server.wait_for(lambda: bool(server.calls_to("editMessageText")))
        await r.adapter.drain()

        assert server.calls_to("answerCallbackQuery")[0].params["callback_query_id"] == "q-mcq-1"
        assert any(t.startswith("<b>✅ Correct!</b>") for t in server.sent_texts(RITA_ID))
        edit = server.calls_to("editMessageText")[0]
        assert int(edit.params["message_id"]) == 1
        assert "reply_markup" not in edit.params, "the edit removes the buttons"
        assert f"You answered {answer + 1} — correct." in server.messages[(RITA_ID, 1)]
        [attempt] = r.attempts()
        assert attempt.correct is True
        assert attempt.idempotency_key == "cb:q-mcq-1"
    # stopping confirmed the polled updates with a last getUpdates without waiting
    assert server.calls_to("getUpdates")[-1].params.get("timeout") in ("0", 0, None)


async def test_roleplay_answered_by_replying_to_the_scenario(db: Database) -> None:
    async with rig(db) as r:
        assert await r.coach.start_item(r.person("rita@example.com"), "coach", "ob-rp")
        [scenario] = r.server.calls_to("sendMessage")
        markup = scenario.json_param("reply_markup")
        assert markup["force_reply"] is True
        assert str(scenario.params["text"]).startswith("<b>Role-play</b>")

        text = "I understand, cost matters — the trial data shows fewer hospital stays."
        await r.webhook(reply_to(1, text, 700030))

        feedback = r.server.sent_texts(RITA_ID)[1]
        assert feedback.startswith("<b>Score 100/100</b>")
        assert "✓ Acknowledges the concern" in feedback
        assert "✔ Answered." in r.server.messages[(RITA_ID, 1)]
        [attempt] = r.attempts()
        assert attempt.answer == text
        assert attempt.delivery_id == r.delivery(f"{RITA_ID}:1").id


# --- onboarding ---------------------------------------------------------------------------------------


async def test_invite_binds_a_chat_once(db: Database) -> None:
    async with rig(db, bind_rita=False) as r:
        now = utcnow()
        with write_session(r.engine) as session:
            invites = onboarding.create_invites(
                session, team_key="north", platform="telegram", ttl=timedelta(days=7), now=now
            )
            expired = onboarding.create_invites(
                session, team_key="north", platform="telegram", ttl=timedelta(seconds=-1), now=now
            )
        codes = {person.email: code for person, code in invites}
        assert set(codes) == {"mia@example.com", "ben@example.com", "rita@example.com"}
        assert all(len(code) >= 20 for code in codes.values())
        with read_session(r.engine) as session:
            assert not session.exec(select(ChatIdentity)).all()

        start = fixture("start")
        start["message"]["text"] = f"/start {codes['rita@example.com']}"
        await r.webhook(start)
        assert r.server.sent_texts(RITA_ID)[0].startswith("Welcome, <b>Rita Rossi</b>!")
        with read_session(r.engine) as session:
            found = learning.person_for_identity(
                session, platform="telegram", workspace="", user_id=str(RITA_ID)
            )
            assert found is not None
            assert found.email == "rita@example.com"

        before = snapshot(r.engine)
        stranger = from_user(start, 777)
        stranger["update_id"] = 700040
        old = from_user(start, 778)
        old["update_id"] = 700041
        old["message"]["text"] = "/start " + next(code for p, code in expired if p.email == "ben@example.com")
        await r.webhook(stranger, old, start)  # and Rita's own update again: a replay
        assert snapshot(r.engine) == before, "a used or expired code and a replay change nothing"
        refused = f"{INVITE_REFUSED.plain}"
        assert r.server.messages[(777, 1)] == refused
        assert r.server.messages[(778, 1)] == refused
        assert len(r.server.sent_texts(RITA_ID)) == 1

        # Rita opening her old link again is just a /start: she gets the help text.
        again = copy.deepcopy(start)
        again["update_id"] = 700042
        again["message"]["message_id"] = 99
        await r.webhook(again)
        assert r.server.sent_texts(RITA_ID)[1].startswith("<b>coachbot</b>")


# --- duplicates and ignored input ---------------------------------------------------------------------


async def test_replayed_and_concurrent_duplicates_record_one_attempt(db: Database) -> None:
    async with rig(db) as r:
        assert await r.coach.start_item(r.person("rita@example.com"), "coach", "ob-1")
        delivery = r.delivery(f"{RITA_ID}:1")
        data = f"a:{delivery.id}:{r.answer_of(delivery)}"
        press = callback(700050, data=data, message_id=1, query_id="q-dup")

        await asyncio.gather(*(r.adapter.process_webhook_update(press) for _ in range(4)))
        await r.adapter.drain()
        r.server.script("answerCallbackQuery", query_too_old())
        await r.webhook(press)  # a replay long after: Telegram refuses the answer, we stay quiet

        assert len(r.attempts()) == 1
        assert sum(t.startswith("<b>✅ Correct!") for t in r.server.sent_texts()) == 1
        assert len(r.server.calls_to("editMessageText")) == 1
        with read_session(r.engine) as session:
            claimed = session.exec(
                select(ProcessedUpdate).where(ProcessedUpdate.update_key == "update:700050")
            )
            assert len(claimed.all()) == 1

        # A second tap on the (already removed) buttons is a new update: it is told, and changes nothing.
        await r.webhook(callback(700051, data=data, message_id=1, query_id="q-dup-2"))
        assert len(r.attempts()) == 1
        assert "already answered" in r.server.sent_texts()[-1]

        sent = len(r.server.calls_to("sendMessage"))
        quiz = fixture("quiz", 700052)
        await asyncio.gather(*(r.adapter.process_webhook_update(quiz) for _ in range(3)))
        await r.adapter.drain()
        await r.webhook(quiz)
        assert len(r.server.calls_to("sendMessage")) == sent + 1, "one /quiz, one question"


async def test_ignored_updates_store_nothing_and_say_nothing(db: Database) -> None:
    async with rig(db) as r:
        before = snapshot(r.engine)
        foreign = fixture("callback_query", 700060)
        foreign["callback_query"]["data"] = "not-ours"
        ignored = [
            "edited_message",
            "my_chat_member",
            "group_message",
            "bot_message",
            "sticker",
            "channel_post",
        ]
        await r.webhook(*(fixture(name) for name in ignored), foreign)
        assert snapshot(r.engine) == before
        assert not r.server.calls_to("sendMessage")
        assert len(r.server.calls_to("answerCallbackQuery")) == 1, "every button press is acknowledged"

        bodies: list[dict[str, Any]] = [
            {"update_id": "x"},
            {"message": {}},
            {"update_id": 5, "message": {"message_id": 1}},
            {"update_id": 6, "callback_query": {"id": "1"}},
        ]
        for body in bodies:
            with pytest.raises(ValueError, match="update"):
                await r.adapter.process_webhook_update(body)
        assert snapshot(r.engine) == before


async def test_unknown_people_are_told_to_ask_their_admin(db: Database) -> None:
    async with rig(db) as r:
        before = snapshot(r.engine)
        text = from_user(fixture("text", 700070), 424242)
        quiz = from_user(fixture("quiz", 700071), 424242)
        await r.webhook(text, quiz)
        assert r.server.sent_texts(424242) == [UNKNOWN_PERSON.plain] * 2
        assert snapshot(r.engine) == before


# --- sending --------------------------------------------------------------------------------------------


async def test_retry_after_is_waited_out(db: Database) -> None:
    async with rig(db) as r:
        r.server.script("sendMessage", retry_after(1))
        started = time.monotonic()
        ref = await r.adapter.send_message(RITA, message("Hello"))
        assert time.monotonic() - started >= 1.0
        assert ref == f"{RITA_ID}:1"
        assert len(r.server.calls_to("sendMessage")) == 2


async def test_blocked_rep_is_marked_unreachable_and_not_retried(db: Database) -> None:
    async with rig(db) as r:
        r.server.block(RITA_ID)
        assert await r.adapter.send_message(RITA, message("Hello")) is None
        assert len(r.server.calls_to("sendMessage")) == 1
        with read_session(r.engine) as session:
            person = session.exec(select(Person).where(Person.email == "rita@example.com")).one()
            assert person.reachable is False
            assert session.exec(select(Person).where(Person.email == "ben@example.com")).one().reachable


async def test_an_unreachable_rep_who_writes_again_is_reachable_again(db: Database) -> None:
    """She had blocked the bot and unblocked it: `coachbot status` must stop listing her as unreachable."""
    async with rig(db) as r:
        r.server.block(RITA_ID)
        assert await r.adapter.send_message(RITA, message("Hello")) is None
        r.server.unblock(RITA_ID)
        await r.webhook(fixture("text", 792001))
        with read_session(r.engine) as session:
            assert session.exec(select(Person).where(Person.email == "rita@example.com")).one().reachable


async def test_pack_and_user_strings_are_html_escaped(db: Database, tmp_path: Path) -> None:
    pack = tmp_path / "coach-pack.yaml"
    original = (DATA / "coach-pack.yaml").read_text()
    pack.write_text(
        original.replace(
            "\"Dr. Weber: 'Too expensive.' Your first move?\"",
            "\"Dr. <b>Weber</b> & Co: 'Too expensive.' Your first move?\"",
        ).replace("[Offer a discount,", "[Offer <i>a discount</i> & a <gift>,")
    )
    async with rig(db, pack=pack) as r:
        assert await r.coach.start_item(r.person("rita@example.com"), "coach", "ob-1")
        [question] = r.server.calls_to("sendMessage")
        text = str(question.params["text"])
        assert text.startswith("<b>Question</b>\nDr. &lt;b&gt;Weber&lt;/b&gt; &amp; Co: 'Too expensive.'")
        assert "1) Offer &lt;i&gt;a discount&lt;/i&gt; &amp; a &lt;gift&gt;" in text
        assert "Dr. <b>Weber</b> & Co" in r.server.messages[(RITA_ID, 1)], "Telegram shows it literally"

        await r.webhook(reply_to(1, "<script>alert(1)</script> & more", 700080))
        assert r.server.sent_texts()[-1].startswith("That one is multiple choice")


async def test_webhook_is_set_only_when_the_url_changed(db: Database) -> None:
    async with rig(db) as r:
        url, secret = "https://coach.example.com/telegram/webhook", "s3cret_-A"
        assert await r.adapter.set_webhook_if_changed(url, secret)
        assert not await r.adapter.set_webhook_if_changed(url, secret)
        assert await r.adapter.set_webhook_if_changed(url, "rotated", force=True)
        assert await r.adapter.set_webhook_if_changed(url + "2", secret)
        calls = r.server.calls_to("setWebhook")
        assert [c.params["url"] for c in calls] == [url, url, url + "2"]
        assert calls[0].params["secret_token"] == secret
        assert calls[0].json_param("allowed_updates") == ["message", "callback_query"]


# --- pacing -----------------------------------------------------------------------------------------------


async def test_pacing_per_chat_and_overall() -> None:
    limiter = PacedRateLimiter(max_per_second=50, per_chat_interval=0.2)
    loop = asyncio.get_running_loop()
    times: dict[str, list[float]] = {}

    async def request(chat: str) -> bool:
        times.setdefault(chat, []).append(loop.time())
        return True

    async def send(chat: str | None) -> None:
        data = {"chat_id": chat} if chat else {}
        await limiter.process_request(request, (chat or "none",), {}, "sendMessage", data, None)

    await asyncio.gather(send("1"), send("1"), send("1"), send("2"), send(None))
    one = times["1"]
    assert one[1] - one[0] >= 0.19
    assert one[2] - one[1] >= 0.19
    assert times["2"][0] - one[0] < 0.15, "another chat is not held up by chat 1"
    everything = sorted(t for chat in ("1", "2") for t in times[chat])
    assert all(b - a >= 0.019 for a, b in itertools.pairwise(everything))


def test_processed_updates_are_purged_after_retention(db: Database) -> None:
    now = utcnow()
    with write_session(db.engine) as session:
        assert learning.claim_update(session, platform="telegram", update_key="update:1")
        assert learning.claim_update(session, platform="telegram", update_key="update:2")
    with write_session(db.engine) as session:
        assert onboarding.purge_processed_updates(session, before=now - timedelta(days=1)) == 0
    with write_session(db.engine) as session:
        assert onboarding.purge_processed_updates(session, before=utcnow() + timedelta(seconds=1)) == 2
    with write_session(db.engine) as session:
        assert learning.claim_update(session, platform="telegram", update_key="update:1"), "an id may return"


# --- admin files ----------------------------------------------------------------------------------------


def document(
    update_id: int, user_id: int, *, file_id: str, size: int, caption: str = "pack"
) -> dict[str, Any]:
    update = fixture("message_document", update_id)
    if user_id != RITA_ID:
        update = from_user(update, user_id)
    update["message"]["message_id"] = update_id
    update["message"]["document"].update(file_id=file_id, file_size=size)
    update["message"]["caption"] = caption
    return update


def said(r: Rig, chat_id: int) -> list[str]:
    """What the chat shows, as plain text, oldest first."""
    return [text for (chat, _), text in sorted(r.server.messages.items()) if chat == chat_id]


def claims(r: Rig) -> set[str]:
    with read_session(r.engine) as session:
        return {u.update_key for u in session.exec(select(ProcessedUpdate))}


def mini_pack(r: Rig) -> Pack | None:
    with read_session(r.engine) as session:
        return session.exec(select(Pack).where(Pack.key == "mini")).first()


def test_the_file_url_follows_the_api_url() -> None:
    assert file_url_for("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert file_url_for("http://127.0.0.1:8081/bot") == "http://127.0.0.1:8081/file/bot"
    assert (
        file_url_for("https://proxy.example/tg/bot{token}/test")
        == "https://proxy.example/tg/file/bot{token}/test"
    )


async def test_an_admin_loads_a_pack_by_sending_the_file(db: Database) -> None:
    async with rig(db) as r:
        bind(r.engine, "ada@example.com", ADA_ID)
        content = (DATA / "mini-pack.yaml").read_bytes()
        r.server.add_file("doc-mini", content, "documents/file_7.yaml")
        update = document(700090, ADA_ID, file_id="doc-mini", size=len(content))
        await r.webhook(update)

        assert [c.params["file_id"] for c in r.server.calls_to("getFile")] == ["doc-mini"]
        assert r.server.downloads == ["documents/file_7.yaml"]
        assert said(r, ADA_ID) == ["mini: new: 2 added, 0 changed (new revision), 0 retired"]
        pack = mini_pack(r)
        assert pack is not None
        assert pack.title == "Mini pack for tests"
        with read_session(r.engine) as session:
            loads = session.exec(select(AuditLog).where(AuditLog.action == "pack.load")).all()
        assert loads[-1].actor == "telegram:ada@example.com"

        before = snapshot(r.engine)
        await r.webhook(update)  # a replay: not downloaded again, nothing written, nothing said
        assert snapshot(r.engine) == before
        assert len(r.server.calls_to("getFile")) == 1
        assert len(said(r, ADA_ID)) == 1


async def test_a_rep_sending_a_file_is_refused_and_audited(db: Database) -> None:
    async with rig(db) as r:
        content = (DATA / "mini-pack.yaml").read_bytes()
        r.server.add_file("doc-rita", content)
        with read_session(r.engine) as session:
            audited = len(session.exec(select(AuditLog)).all())
        await r.webhook(document(700091, RITA_ID, file_id="doc-rita", size=len(content)))

        [reply] = said(r, RITA_ID)
        assert "only an admin" in reply
        with read_session(r.engine) as session:
            refusals = session.exec(select(AuditLog).order_by(col(AuditLog.id))).all()[audited:]
        assert [(a.action, a.actor, a.details["wanted"]) for a in refusals] == [
            ("refused", "telegram:rita@example.com", "load a file")
        ]
        assert mini_pack(r) is None


async def test_an_oversized_file_is_refused_before_downloading(db: Database) -> None:
    async with rig(db) as r:
        bind(r.engine, "ada@example.com", ADA_ID)
        r.server.add_file("doc-big", b"x" * 16)
        before = snapshot(r.engine)
        await r.webhook(
            document(700092, ADA_ID, file_id="doc-big", size=MAX_FILE_BYTES + 1),
            document(700093, 424242, file_id="doc-big", size=MAX_FILE_BYTES + 1),
        )
        assert snapshot(r.engine) == before, "nothing stored, not even the update claim"
        assert not r.server.calls_to("getFile")
        assert r.server.downloads == []
        [reply] = said(r, ADA_ID)
        assert "mini-pack.yaml is too large" in reply
        assert "2 MB" in reply
        assert said(r, 424242) == [UNKNOWN_PERSON.plain], "a stranger is told to ask the admin"


async def test_a_broken_pack_lists_its_problems_and_writes_only_the_claim(db: Database) -> None:
    async with rig(db) as r:
        bind(r.engine, "ada@example.com", ADA_ID)
        broken = (
            (DATA / "mini-pack.yaml")
            .read_text()
            .replace("answer: 1", "answer: 7")
            .replace("prompt:", "promt:")
        )
        r.server.add_file("doc-broken", broken.encode())
        before = snapshot(r.engine)
        await r.webhook(document(700094, ADA_ID, file_id="doc-broken", size=len(broken.encode())))

        [reply] = said(r, ADA_ID)
        assert "mini-pack.yaml was not loaded — 3 problem(s):" in reply
        assert "unknown key 'promt' (did you mean 'prompt'?)" in reply
        assert "answer 7 is out of range" in reply
        after = snapshot(r.engine)
        assert {k: v for k, v in after.items() if k != "processed_update"} == {
            k: v for k, v in before.items() if k != "processed_update"
        }
        assert claims(r) == {"update:700094"}
        assert mini_pack(r) is None


async def test_a_file_telegram_will_not_give_is_reported(db: Database) -> None:
    async with rig(db) as r:
        bind(r.engine, "ada@example.com", ADA_ID)
        await r.webhook(document(700095, ADA_ID, file_id="doc-gone", size=100))
        assert len(r.server.calls_to("getFile")) == 1
        [reply] = said(r, ADA_ID)
        assert reply.startswith("Sorry, I could not fetch mini-pack.yaml from Telegram.")
        assert mini_pack(r) is None


# --- the platform misbehaving --------------------------------------------------------------------------


async def test_a_failed_callback_answer_still_scores_the_pick(db: Database) -> None:
    """answerCallbackQuery only stops the button's spinner: a 502 there lost the rep's answer."""
    async with rig(db) as r:
        assert await r.coach.start_item(r.person("rita@example.com"), "coach", "ob-1")
        question = r.delivery(f"{RITA_ID}:1")
        r.server.script("answerCallbackQuery", Failure(502, "Bad Gateway"))
        pressed = f"a:{question.id}:{r.answer_of(question)}"
        await r.webhook(callback(790001, data=pressed, message_id=1, query_id="q-502"))
        (attempt,) = r.attempts()
        assert attempt.correct
        assert r.server.sent_texts()[-1].startswith("<b>✅ Correct!</b>")


async def test_flood_control_on_the_callback_answer_is_not_the_reps_thinking_time(
    db: Database, tmp_path: Path
) -> None:
    """A 429 on answerCallbackQuery is not retried, and its wait never counts in the response time."""
    pack = tmp_path / "coach-pack.yaml"
    pack.write_text(
        (DATA / "coach-pack.yaml").read_text().replace("target_seconds: 30", "target_seconds: 2", 1)
    )
    async with rig(db, pack=pack) as r:
        assert await r.coach.start_item(r.person("rita@example.com"), "coach", "ob-1")
        question = r.delivery(f"{RITA_ID}:1")
        r.server.script("answerCallbackQuery", retry_after(3))
        pressed = f"a:{question.id}:{r.answer_of(question)}"
        await r.webhook(callback(790002, data=pressed, message_id=1, query_id="q-429"))
        (attempt,) = r.attempts()
        assert attempt.points == 15, "the fast-answer bonus: answered within the item's 2 s"
        assert len(r.server.calls_to("answerCallbackQuery")) == 1


async def test_a_failed_edit_of_the_question_does_not_stop_the_session(db: Database) -> None:
    """Closing the answered question is cosmetic: a 502 there sent the apology and lost the next question."""
    async with rig(db) as r:
        rita = r.person("rita@example.com")
        assert await r.coach.start_item(rita, "coach", "ob-1")
        with write_session(r.engine) as session:
            candidate = learning.candidate_by_key(session, pack_key="coach", item_key="ob-2")
            assert candidate is not None
            learning.create_delivery(
                session,
                person_id=rita.id,
                kind="question",
                local_date=utcnow().date(),
                scheduled_at=utcnow(),
                item_id=candidate.item_id,
                revision_id=candidate.revision_id,
                topic_id=candidate.topic_id,
            )
        question = r.delivery(f"{RITA_ID}:1")
        r.server.script("editMessageText", Failure(502, "Bad Gateway"))
        pressed = f"a:{question.id}:{r.answer_of(question)}"
        await r.webhook(callback(790003, data=pressed, message_id=1, query_id="q-edit"))
        sent = r.server.sent_texts()
        assert sent[-2].startswith("<b>✅ Correct!</b>")
        assert "I have no time" in sent[-1], "the session's next question follows the feedback"
        assert not any("went wrong" in text for text in sent)
        assert len(r.attempts()) == 1


def _unstarted(db: Database, server: FakeTelegramServer, *, webhook: bool) -> TelegramAdapter:
    return TelegramAdapter(
        token=server.token,
        engine=db.engine,
        runner=StorageRunner(),
        base_url=server.base_url,
        webhook=webhook,
        per_chat_interval=0.0,
        poll_timeout=1,
    )


@pytest.mark.parametrize(
    ("method", "webhook"),
    [("getMe", True), ("setMyCommands", True), ("deleteWebhook", False)],
)
async def test_a_failed_start_step_is_one_clear_error_and_leaves_nothing_running(
    db: Database, method: str, webhook: bool
) -> None:
    async with FakeTelegramServer() as server:
        server.script(method, Failure(502, "Bad Gateway"))
        adapter = _unstarted(db, server, webhook=webhook)
        with pytest.raises(AdapterStartError) as refused:
            await asyncio.wait_for(adapter.start(), 30)
        assert str(refused.value).startswith("TELEGRAM_API_BASE_URL: Telegram failed at ")
        assert "Bad Gateway" in str(refused.value)
        assert server.token not in str(refused.value)
        assert not adapter.running
        assert not adapter.application.running


async def test_a_refused_webhook_stops_the_adapter_and_names_the_setting(db: Database) -> None:
    async with FakeTelegramServer() as server:
        server.script("setWebhook", Failure(400, "Bad Request: bad webhook: HTTPS url must be provided"))
        adapter = _unstarted(db, server, webhook=True)
        hook = "https://coach.example.com/telegram/webhook"
        service = TelegramService(adapter, webhook_url=hook, webhook_secret="s3", token=server.token)
        with pytest.raises(AdapterStartError, match=r"^TELEGRAM_WEBHOOK_URL: Telegram failed at setWebhook"):
            await asyncio.wait_for(service.start(), 30)
        assert not service.started()
        assert not adapter.application.running


async def test_a_number_replied_to_an_older_copy_of_a_question_is_not_guessed(db: Database) -> None:
    """/quiz sends an open question again; a reply to its first copy matched no question, and the number
    was scored on whichever question was newest: another question, wrongly."""
    async with rig(db) as r:
        rita = r.person("rita@example.com")
        assert await r.coach.start_item(rita, "coach", "ob-1")  # message 1
        assert await r.coach.start_item(rita, "coach", "ob-2")  # message 2
        first = r.delivery(f"{RITA_ID}:1")
        quiz = fixture("quiz", 791001)
        quiz["message"]["message_id"] = 300
        await r.webhook(quiz)  # ob-1 again, as a new message: its reference moves there
        reply = reply_to(1, str(r.answer_of(first) + 1), 791002)
        reply["message"]["message_id"] = 301
        before = snapshot(r.engine)["attempt"]
        await r.webhook(reply)
        assert snapshot(r.engine)["attempt"] == before
        assert r.server.sent_texts()[-1].startswith("I can't tell which question that number is for")
        newest = r.server.sent_texts()[-2]
        assert "Too expensive" in newest, "the quiz command showed ob-1 again"
