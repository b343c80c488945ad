"""Pure translation: Bot API update fixtures to engine events, engine messages to Telegram HTML."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.telegram.translate import (
    DEFAULT_FILENAME,
    Document,
    callback_query_id,
    keyboard,
    parse_message_ref,
    render_html,
    translate_update,
)
from bot.events import ChoiceEvent, CommandEvent, FileEvent, TextEvent
from scheduler.messages import Choice, bold, message
from scheduler.sender import Address

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "telegram"
NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
RITA = Address("telegram", "", "100002", "100002")


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def test_every_fixture_names_its_documentation_page() -> None:
    for path in FIXTURES.glob("*.json"):
        doc = json.loads(path.read_text())["_doc"]
        assert doc.startswith("https://core.telegram.org/"), path.name


def test_start_with_a_code_is_an_invite() -> None:
    inbound = translate_update(fixture("start"), received_at=NOW)
    assert inbound is not None
    assert inbound.start_code == "CODE"
    assert inbound.update_key == "update:700001"
    assert inbound.event == CommandEvent(RITA, "msg:100002:11", NOW, "help")


def test_slash_command_is_a_command_event() -> None:
    inbound = translate_update(fixture("quiz"), received_at=NOW)
    assert inbound is not None
    assert inbound.event == CommandEvent(RITA, "msg:100002:12", NOW, "quiz", "")
    data = fixture("quiz")
    data["message"]["text"] = "/quiz@coach_test_bot compliance"
    inbound = translate_update(data, received_at=NOW)
    assert inbound is not None
    assert inbound.event == CommandEvent(RITA, "msg:100002:12", NOW, "quiz", "compliance")


def test_plain_text_is_text_for_the_engine() -> None:
    inbound = translate_update(fixture("text"), received_at=NOW)
    assert inbound is not None
    assert inbound.event == TextEvent(RITA, "msg:100002:13", NOW, "hello coach")
    assert inbound.reply_to_ref is None
    assert inbound.start_code is None


def test_a_reply_to_a_bot_message_names_it() -> None:
    inbound = translate_update(fixture("reply"), received_at=NOW)
    assert inbound is not None
    assert isinstance(inbound.event, TextEvent)
    assert inbound.event.text.startswith("I understand")
    assert inbound.reply_to_ref == "100002:1"


def test_a_document_is_a_file_event_without_its_content_yet() -> None:
    inbound = translate_update(fixture("message_document"), received_at=NOW)
    assert inbound is not None
    assert inbound.update_key == "update:700090"
    assert inbound.event == FileEvent(RITA, "msg:100002:21", NOW, "mini-pack.yaml", b"", caption="pack")
    assert inbound.document == Document("BQACAgIAAxkBAAIBZ2ZmZmZmZmZm", 1747)
    assert inbound.reply_to_ref is None
    assert inbound.start_code is None


def test_a_document_without_name_size_or_caption() -> None:
    data = fixture("message_document")
    message = data["message"]
    del message["caption"], message["document"]["file_name"], message["document"]["file_size"]
    inbound = translate_update(data, received_at=NOW)
    assert inbound is not None
    assert isinstance(inbound.event, FileEvent)
    assert (inbound.event.filename, inbound.event.caption) == (DEFAULT_FILENAME, "")
    assert inbound.document == Document("BQACAgIAAxkBAAIBZ2ZmZmZmZmZm", None)


def test_documents_from_groups_bots_or_without_file_id_are_ignored() -> None:
    group = fixture("message_document")
    group["message"]["chat"] = {"id": -100123, "type": "group", "title": "North"}
    from_bot = fixture("message_document")
    from_bot["message"]["from"]["is_bot"] = True
    no_id = fixture("message_document")
    del no_id["message"]["document"]["file_id"]
    for data in (group, from_bot, no_id):
        assert translate_update(data, received_at=NOW) is None


def test_callback_query_is_a_choice() -> None:
    data = fixture("callback_query")
    assert callback_query_id(data) == "4382bfdwdsb323b2d9"
    inbound = translate_update(data, received_at=NOW)
    assert inbound is not None
    assert inbound.event == ChoiceEvent(RITA, "cb:4382bfdwdsb323b2d9", NOW, delivery_id=1, option_index=1)


@pytest.mark.parametrize("callback_data", ["something-else", "a:²:0", "a:1:٣", "a:1:1:1", "a:-1:0", "a: 1:0"])
def test_foreign_callback_data_is_ignored_but_still_answered(callback_data: str) -> None:
    data = fixture("callback_query")
    data["callback_query"]["data"] = callback_data
    assert translate_update(data, received_at=NOW) is None
    assert callback_query_id(data) == "4382bfdwdsb323b2d9"


@pytest.mark.parametrize(
    "forwarded",
    [
        {"forward_origin": {"type": "user", "date": 1796198300, "sender_user": {"id": 5, "is_bot": False}}},
        {"forward_origin": {"type": "channel", "date": 1796198300, "chat": {"id": -100, "type": "channel"}}},
        {"forward_from": {"id": 5, "is_bot": False, "first_name": "Ben"}, "forward_date": 1796198300},
        {"via_bot": {"id": 7, "is_bot": True, "first_name": "gif"}},
    ],
)
def test_text_the_rep_did_not_type_is_ignored(forwarded: dict[str, Any]) -> None:
    """Someone else's words, forwarded (or an inline bot's), are neither an answer nor a command."""
    for name in ("text", "quiz"):
        data = fixture(name)
        data["message"].update(forwarded)
        assert translate_update(data, received_at=NOW) is None


def test_a_forwarded_file_is_still_a_file() -> None:
    """An admin may forward a pack someone sent them."""
    data = fixture("message_document")
    data["message"]["forward_origin"] = {"type": "hidden_user", "date": 1796198300, "sender_user_name": "X"}
    inbound = translate_update(data, received_at=NOW)
    assert inbound is not None
    assert isinstance(inbound.event, FileEvent)


@pytest.mark.parametrize(
    "name", ["edited_message", "my_chat_member", "group_message", "bot_message", "sticker", "channel_post"]
)
def test_ignored_updates(name: str) -> None:
    assert translate_update(fixture(name), received_at=NOW) is None
    assert callback_query_id(fixture(name)) is None


@pytest.mark.parametrize("data", [{}, {"update_id": "7"}, {"update_id": 1, "message": "x"}, {"update_id": 1}])
def test_malformed_updates_are_ignored(data: dict[str, Any]) -> None:
    assert translate_update(data, received_at=NOW) is None


def test_html_escapes_every_string() -> None:
    rendered = render_html(message(bold("Q <1> & co"), "\n", 'Dr. <b>Weber</b> & "Sons"'))
    assert rendered == '<b>Q &lt;1&gt; &amp; co</b>\nDr. &lt;b&gt;Weber&lt;/b&gt; &amp; "Sons"'


def test_long_text_is_cut_as_plain_text() -> None:
    rendered = render_html(message(bold("Title"), "&" * 5000), limit=100)
    assert len(rendered) <= 100
    assert rendered.endswith("…")
    assert "<b>" not in rendered


def test_keyboard_buttons_carry_callback_data() -> None:
    choices = [Choice(str(i + 1), 42, i) for i in range(7)]
    markup = keyboard(choices)
    assert markup is not None
    rows = markup.inline_keyboard
    assert [len(row) for row in rows] == [5, 2]
    assert [b.text for b in rows[0]] == ["1", "2", "3", "4", "5"]
    assert rows[1][1].callback_data == "a:42:6"
    assert keyboard([]) is None


def test_message_refs() -> None:
    assert parse_message_ref("100002:7") == (100002, 7)
    assert parse_message_ref("-100123:7") == (-100123, 7)
    assert parse_message_ref("console:1") is None
    assert parse_message_ref("17") is None
