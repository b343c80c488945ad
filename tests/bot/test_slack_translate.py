"""The Slack adapter's pure translation functions, on payloads in the shapes Slack documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.slack import translate
from bot.events import ChoiceEvent, CommandEvent, TextEvent
from scheduler.messages import Choice, bold, message
from scheduler.sender import Address

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "slack"
NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
BOT = "U0BOT"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def test_every_fixture_names_its_documentation_page() -> None:
    names = sorted(path.stem for path in FIXTURES.glob("*.json"))
    assert len(names) >= 9
    for name in names:
        assert fixture(name)["_doc"].startswith("https://api.slack.com/"), name


def test_a_dm_becomes_a_text_event_with_the_dm_channel_and_event_id() -> None:
    body = fixture("message_im")
    body["event"]["text"] = "log visit 2 &lt;urgent&gt; &amp; more"
    event = translate.event_to_inbound(body, bot_user_id=BOT, received_at=NOW)
    assert event == TextEvent(
        sender=Address("slack", "T0COACH", "U0RITA", "DU0RITA"),
        key="ev:Ev0MSG0001",
        received_at=NOW,
        text="log visit 2 <urgent> & more",
    )


@pytest.mark.parametrize(
    "name", ["message_changed", "bot_message", "reaction_added", "member_joined_channel"]
)
def test_ignored_events(name: str) -> None:
    assert translate.event_to_inbound(fixture(name), bot_user_id=BOT, received_at=NOW) is None


@pytest.mark.parametrize(
    "change",
    [
        {"subtype": "message_deleted"},
        {"subtype": "channel_join"},
        {"bot_id": "B0BOT"},
        {"user": BOT},
        {"channel_type": "channel", "channel": "C0GENERAL"},
        {"text": "   "},
        {"user": None},
    ],
)
def test_ignored_messages(change: dict[str, Any]) -> None:
    body = fixture("message_im")
    body["event"].update(change)
    assert translate.event_to_inbound(body, bot_user_id=BOT, received_at=NOW) is None


def test_malformed_event_bodies_are_dropped() -> None:
    assert translate.event_to_inbound({}, bot_user_id=BOT, received_at=NOW) is None
    body = fixture("message_im")
    del body["event_id"]
    assert translate.event_to_inbound(body, bot_user_id=BOT, received_at=NOW) is None
    body = fixture("message_im")
    body["event"] = "nonsense"
    assert translate.event_to_inbound(body, bot_user_id=BOT, received_at=NOW) is None


def test_an_option_click_becomes_a_choice_event_keyed_by_action_and_trigger() -> None:
    event = translate.action_to_inbound(fixture("block_actions_choice"), received_at=NOW)
    assert event == ChoiceEvent(
        sender=Address("slack", "T0COACH", "U0RITA", "DU0RITA"),
        key="act:coach_choice_1:1111111111.2222222222.choice0001",
        received_at=NOW,
        delivery_id=1,
        option_index=1,
    )


@pytest.mark.parametrize("value", ["a:x:1", "b:1:1", "", "a:1"])
def test_a_click_with_a_foreign_value_is_dropped(value: str) -> None:
    body = fixture("block_actions_choice")
    body["actions"][0]["value"] = value
    assert translate.action_to_inbound(body, received_at=NOW) is None


def test_the_answer_button_is_not_a_choice_but_an_answer_request() -> None:
    body = fixture("block_actions_answer")
    assert translate.action_to_inbound(body, received_at=NOW) is None
    request = translate.answer_request(body)
    assert request == translate.AnswerRequest(
        trigger_id="1111111111.2222222222.answer0001",
        message_ref="DU0RITA:1700000001.000100",
        delivery_id=None,
    )
    assert translate.answer_request(fixture("block_actions_choice")) is None


def test_the_answer_modal_carries_the_role_play_in_private_metadata() -> None:
    request = translate.AnswerRequest("trig", "DU0RITA:1.2", None)
    view = translate.answer_modal(request)
    assert view["type"] == "modal"
    assert view["callback_id"] == translate.ANSWER_VIEW
    assert view["private_metadata"] == "DU0RITA:1.2"
    element = view["blocks"][-1]["element"]
    assert element["type"] == "plain_text_input"
    assert translate.answer_modal(translate.AnswerRequest("t", "D:1", 42))["private_metadata"] == "42"
    assert translate.metadata_delivery("42") == (42, None)
    assert translate.metadata_delivery("DU0RITA:1.2") == (None, "DU0RITA:1.2")


def test_a_view_submission_becomes_an_answer_to_the_role_play() -> None:
    answer = translate.view_to_answer(fixture("view_submission"))
    assert answer is not None
    assert answer.key == "view:V0ANSWER01"
    assert answer.metadata == "DU0RITA:1700000001.000100"
    event = translate.answer_event(answer, delivery_id=7, received_at=NOW)
    assert event.reply_to_delivery == 7
    assert event.text.startswith("I understand")
    assert event.sender == Address("slack", "T0COACH", "U0RITA", None)


def test_a_view_submission_of_another_view_or_without_text_is_dropped() -> None:
    body = fixture("view_submission")
    body["view"]["callback_id"] = "other"
    assert translate.view_to_answer(body) is None
    body = fixture("view_submission")
    body["view"]["state"]["values"]["answer"]["text"]["value"] = " "
    assert translate.view_to_answer(body) is None


@pytest.mark.parametrize(
    ("text", "name", "args"),
    [
        ("quiz", "quiz", ""),
        ("quiz objections", "quiz", "objections"),
        ("", "help", ""),
        ("dance", "help", ""),
    ],
)
def test_slash_commands(text: str, name: str, args: str) -> None:
    body = fixture("slash_command")
    body["text"] = text
    event = translate.command_to_inbound(body, received_at=NOW)
    assert event == CommandEvent(
        sender=Address("slack", "T0COACH", "U0RITA", None),
        key="cmd:1111111111.2222222222.command0001",
        received_at=NOW,
        name=name,
        args=args,
    )


def test_mrkdwn_escapes_and_bolds() -> None:
    text = translate.mrkdwn(message(bold("Score 80/100 "), "\nA <b> & C > D"))
    assert text == "*Score 80/100* \nA &lt;b&gt; &amp; C &gt; D"
    assert translate.mrkdwn(message(bold("  "))) == "  "


def test_an_mcq_has_its_options_in_a_section_and_short_buttons() -> None:
    question = message(bold("Question"), "\nWhich?\n\n1) A <x>\n2) B")
    choices = [Choice("1", 9, 0), Choice("2" * 100, 9, 1)]
    blocks = translate.message_blocks(question, choices)
    assert blocks[0] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "*Question*\nWhich?\n\n1) A &lt;x&gt;\n2) B"},
    }
    buttons = blocks[1]["elements"]
    assert [b["value"] for b in buttons] == ["a:9:0", "a:9:1"]
    assert [b["action_id"] for b in buttons] == ["coach_choice_0", "coach_choice_1"]
    assert all(len(b["text"]["text"]) <= translate.BUTTON_TEXT_LIMIT for b in buttons)


def test_a_message_asking_for_a_reply_has_an_answer_button_naming_its_delivery() -> None:
    blocks = translate.message_blocks(message(bold("Role-play"), "\nDr. X: 'Too dear.'"), reply_for=5)
    button = blocks[-1]["elements"][0]
    assert button["action_id"] == translate.ANSWER_ACTION
    assert button["text"]["text"] == "Answer"
    assert button["value"] == "rp:5"
    plain = translate.message_blocks(message(bold("Role-play"), "\nnot a question"))
    assert plain == [{"type": "section", "text": {"type": "mrkdwn", "text": "*Role-play*\nnot a question"}}]


def test_message_refs_carry_the_channel() -> None:
    ref = translate.message_ref("D1", "1.2")
    assert translate.split_ref(ref) == ("D1", "1.2")
    assert translate.split_ref("1.2") == (None, "1.2")


# --- shared files -------------------------------------------------------------------------------------


def test_a_shared_file_in_a_dm_becomes_a_file_share_keyed_by_event_and_file() -> None:
    body = fixture("message_file_share")
    assert translate.event_to_inbound(body, bot_user_id=BOT, received_at=NOW) is None
    (share,) = translate.file_shares(body, bot_user_id=BOT, received_at=NOW)
    assert share == translate.FileShare(
        sender=Address("slack", "T0COACH", "U0ADA", "DU0ADA"),
        key="ev:Ev0FILE0001:F0PACK0001",
        received_at=NOW,
        file_id="F0PACK0001",
        filename="mini-pack.yaml",
        size=2048,
        url="https://files.slack.com/files-pri/T0COACH-F0PACK0001/download/mini-pack.yaml",
        caption="the new pack",
    )


def test_each_downloadable_file_of_a_share_is_kept_with_the_caption_unescaped() -> None:
    body = fixture("message_file_share")
    (first,) = body["event"]["files"]
    body["event"]["text"] = "roster &amp; more"
    body["event"]["files"] = [
        first,
        first | {"id": "F0CSV", "name": "roster.csv", "size": "12"},
        first | {"id": "F0GONE", "mode": "tombstone"},
        first | {"id": "F0HIDDEN", "mode": "hidden_by_limit"},
        first | {"id": "F0DRIVE", "is_external": True},
        {k: v for k, v in first.items() if k != "url_private_download"} | {"id": "F0CONNECT"},
    ]
    shares = translate.file_shares(body, bot_user_id=BOT, received_at=NOW)
    assert [(s.file_id, s.filename, s.size, s.caption) for s in shares] == [
        ("F0PACK0001", "mini-pack.yaml", 2048, "roster & more"),
        ("F0CSV", "roster.csv", None, "roster & more"),
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"user": BOT},
        {"bot_id": "B0BOT"},
        {"channel_type": "channel", "channel": "C0GENERAL"},
        {"subtype": None},
        {"files": "not a list"},
    ],
)
def test_file_shares_that_are_not_a_persons_dm_are_ignored(change: dict[str, Any]) -> None:
    body = fixture("message_file_share")
    body["event"] |= change
    assert translate.file_shares(body, bot_user_id=BOT, received_at=NOW) == []
