"""Slack payloads to engine events and engine messages to Slack, as small pure functions.

Like slack-bolt's own framework adapters, nothing here does I/O: each function takes a payload dict as
Slack documents it (Events API ``event_callback``, ``block_actions``, ``view_submission``, a slash command
form) and returns an engine event, or ``None`` for a payload we acknowledge and ignore. The other direction
turns a platform-neutral :class:`~scheduler.messages.Message` into mrkdwn text and Block Kit blocks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.commands import parse_command
from bot.events import ChoiceEvent, CommandEvent, InboundEvent, TextEvent
from scheduler.messages import Choice, Message, parse_callback_data
from scheduler.sender import Address

PLATFORM = "slack"
CHOICE_ACTION_PREFIX = "coach_choice_"
CHOICE_ACTION = re.compile(r"^coach_choice_\d+$")
ANSWER_ACTION = "coach_answer"
ANSWER_VIEW = "coach_answer_modal"
ANSWER_BLOCK = "answer"
ANSWER_INPUT = "text"
BUTTON_TEXT_LIMIT = 75
"""Block Kit: a button's ``text`` is at most 75 characters."""
SECTION_TEXT_LIMIT = 3000
"""Block Kit: a section's ``text`` is at most 3000 characters."""
ACTIONS_LIMIT = 25
"""Block Kit: an actions block holds at most 25 elements."""
FALLBACK_TEXT_LIMIT = 4000
"""How the engine's role-play question begins (``bot.replies.question_text``): a bold heading."""
IGNORED_SUBTYPES = frozenset(
    {"message_changed", "message_deleted", "bot_message", "channel_join", "channel_leave", "me_message"}
)


# --- inbound ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerRequest:
    """A click on a role-play's "Answer" button: open the modal on ``trigger_id`` (valid for 3 seconds)."""

    trigger_id: str
    message_ref: str
    """``<channel>:<ts>`` of the role-play message, carried through the modal's ``private_metadata``."""
    delivery_id: int | None


def _str(mapping: Any, key: str) -> str | None:
    value = mapping.get(key) if isinstance(mapping, Mapping) else None
    return value if isinstance(value, str) and value else None


def unescape(text: str) -> str:
    """Slack sends message text with ``&``, ``<`` and ``>`` escaped as entities."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn reserves (``&`` first)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message_ref(channel: str, ts: str) -> str:
    """The reference we keep for a posted message: ``chat.update`` needs both channel and ``ts``."""
    return f"{channel}:{ts}"


def split_ref(ref: str) -> tuple[str | None, str]:
    channel, sep, ts = ref.partition(":")
    return (channel, ts) if sep else (None, ref)


def event_to_inbound(
    body: Mapping[str, Any], *, bot_user_id: str | None, received_at: datetime
) -> InboundEvent | None:
    """An Events API ``event_callback`` to a TextEvent: only a person's new message in their DM with us.

    Edits and deletions (``message_changed``/``message_deleted``), bot messages and our own echoes, joins,
    reactions and anything outside a DM are ignored (``None``); shared files are :func:`file_shares`.
    """
    found = _dm_message(body, bot_user_id=bot_user_id, subtype=None)
    if found is None:
        return None
    sender, event_id, event = found
    text = _str(event, "text")
    if text is None or not text.strip():
        return None
    return TextEvent(sender=sender, key=f"ev:{event_id}", received_at=received_at, text=unescape(text))


def _dm_message(
    body: Mapping[str, Any], *, bot_user_id: str | None, subtype: str | None
) -> tuple[Address, str, Mapping[str, Any]] | None:
    """A person's message of this ``subtype`` in their DM with us: (sender, event id, event), or ``None``."""
    if body.get("type") != "event_callback":
        return None
    event = body.get("event")
    event_id = _str(body, "event_id")
    workspace = _str(body, "team_id")
    if not isinstance(event, Mapping) or event_id is None or workspace is None:
        return None
    if event.get("type") != "message" or event.get("channel_type") != "im":
        return None
    if event.get("subtype") != subtype or event.get("bot_id") is not None:
        return None
    user, channel = _str(event, "user"), _str(event, "channel")
    if user is None or channel is None or user == bot_user_id:
        return None
    return Address(PLATFORM, workspace, user, channel), event_id, event


@dataclass(frozen=True)
class FileShare:
    """A file a person shared in their DM with us, before it is downloaded.

    ``size`` is what Slack says the file's size is (checked against ``MAX_FILE_BYTES`` before downloading);
    ``url`` is its ``url_private_download``, which needs the bot token as a Bearer header.
    """

    sender: Address
    key: str
    received_at: datetime
    file_id: str
    filename: str
    size: int | None
    url: str
    caption: str


UNAVAILABLE_FILE_MODES = frozenset({"tombstone", "hidden_by_limit"})
"""File ``mode`` values without content to download (deleted; hidden by a free workspace's limit)."""


def file_shares(
    body: Mapping[str, Any], *, bot_user_id: str | None, received_at: datetime
) -> list[FileShare]:
    """An Events API ``message`` with subtype ``file_share`` in a DM to the files it shares, one per file.

    https://api.slack.com/events/message/file_share: the message carries ``files`` (file objects,
    https://api.slack.com/types/file) and the person's ``text``, which becomes each file's caption. Each
    file is keyed by the event id and the file id, so Slack's retries of the event are recognised. Files
    without a download URL (external files, deleted or hidden ones, Slack Connect files needing
    ``files.info``) are left out. Anything else is an empty list.
    """
    found = _dm_message(body, bot_user_id=bot_user_id, subtype="file_share")
    if found is None:
        return []
    sender, event_id, event = found
    files = event.get("files")
    text = event.get("text")
    caption = unescape(text).strip() if isinstance(text, str) else ""
    shares: list[FileShare] = []
    for item in files if isinstance(files, list) else []:
        file_id, url = _str(item, "id"), _str(item, "url_private_download")
        if file_id is None or url is None or item.get("is_external") is True:
            continue
        if item.get("mode") in UNAVAILABLE_FILE_MODES:
            continue
        size = item.get("size")
        shares.append(
            FileShare(
                sender=sender,
                key=f"ev:{event_id}:{file_id}",
                received_at=received_at,
                file_id=file_id,
                filename=_str(item, "name") or _str(item, "title") or file_id,
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                url=url,
                caption=caption,
            )
        )
    return shares


def _action_sender(body: Mapping[str, Any]) -> Address | None:
    user = body.get("user")
    user_id = _str(user, "id")
    team = body.get("team")
    workspace = _str(team, "id") or _str(user, "team_id")
    if user_id is None or workspace is None:
        return None
    channel = _str(body.get("channel"), "id") or _str(body.get("container"), "channel_id")
    return Address(PLATFORM, workspace, user_id, channel)


def _first_action(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if body.get("type") != "block_actions":
        return None
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], Mapping):
        return None
    action: Mapping[str, Any] = actions[0]
    return action


def action_to_inbound(body: Mapping[str, Any], *, received_at: datetime) -> ChoiceEvent | None:
    """A click on an MCQ option button to a ChoiceEvent; the key is the action id and the click's trigger."""
    action = _first_action(body)
    trigger = _str(body, "trigger_id")
    sender = _action_sender(body)
    if action is None or trigger is None or sender is None:
        return None
    action_id, value = _str(action, "action_id"), _str(action, "value")
    if action_id is None or value is None or not CHOICE_ACTION.match(action_id):
        return None
    parsed = parse_callback_data(value)
    if parsed is None:
        return None
    delivery_id, option_index = parsed
    return ChoiceEvent(
        sender=sender,
        key=f"act:{action_id}:{trigger}",
        received_at=received_at,
        delivery_id=delivery_id,
        option_index=option_index,
    )


def answer_request(body: Mapping[str, Any]) -> AnswerRequest | None:
    """A click on a role-play's "Answer" button, or ``None``."""
    action = _first_action(body)
    trigger = _str(body, "trigger_id")
    if action is None or trigger is None or _str(action, "action_id") != ANSWER_ACTION:
        return None
    container = body.get("container")
    channel = _str(body.get("channel"), "id") or _str(container, "channel_id")
    ts = _str(container, "message_ts") or _str(body.get("message"), "ts")
    if channel is None or ts is None:
        return None
    value = _str(action, "value") or ""
    delivery_id = int(value[3:]) if value.startswith("rp:") and value[3:].isdigit() else None
    return AnswerRequest(trigger_id=trigger, message_ref=message_ref(channel, ts), delivery_id=delivery_id)


@dataclass(frozen=True)
class ModalAnswer:
    """A submitted answer modal: the text, whose it is, and which role-play message it answers."""

    sender: Address
    key: str
    text: str
    metadata: str


def view_to_answer(body: Mapping[str, Any]) -> ModalAnswer | None:
    """A ``view_submission`` of our answer modal, or ``None``."""
    if body.get("type") != "view_submission":
        return None
    view = body.get("view")
    if not isinstance(view, Mapping) or view.get("callback_id") != ANSWER_VIEW:
        return None
    view_id = _str(view, "id")
    user = body.get("user")
    user_id = _str(user, "id")
    workspace = _str(body.get("team"), "id") or _str(user, "team_id") or _str(view, "team_id")
    state = view.get("state")
    values = state.get("values") if isinstance(state, Mapping) else None
    block = values.get(ANSWER_BLOCK) if isinstance(values, Mapping) else None
    text = _str(block.get(ANSWER_INPUT), "value") if isinstance(block, Mapping) else None
    if view_id is None or user_id is None or workspace is None or text is None or not text.strip():
        return None
    return ModalAnswer(
        sender=Address(PLATFORM, workspace, user_id, None),
        key=f"view:{view_id}",
        text=text,
        metadata=_str(view, "private_metadata") or "",
    )


def answer_event(answer: ModalAnswer, *, delivery_id: int | None, received_at: datetime) -> TextEvent:
    """The engine event for a submitted modal, once its role-play delivery is known."""
    return TextEvent(
        sender=answer.sender,
        key=answer.key,
        received_at=received_at,
        text=answer.text,
        reply_to_delivery=delivery_id,
    )


def command_to_inbound(body: Mapping[str, Any], *, received_at: datetime) -> CommandEvent | None:
    """``/coach <command> [args]`` to a CommandEvent; an unknown or empty command is ``help``.

    The reply goes to the person's DM (``channel`` is left out): a slash command may be typed in any
    channel, and a question must not be posted where colleagues see it.
    """
    workspace, user = _str(body, "team_id"), _str(body, "user_id")
    trigger = _str(body, "trigger_id")
    if workspace is None or user is None or trigger is None or not _str(body, "command"):
        return None
    text = body.get("text")
    parsed = parse_command("/" + text.strip()) if isinstance(text, str) and text.strip() else None
    name, args = (parsed.name, parsed.args) if parsed is not None else ("help", "")
    return CommandEvent(
        sender=Address(PLATFORM, workspace, user, None),
        key=f"cmd:{trigger}",
        received_at=received_at,
        name=name,
        args=args,
    )


# --- outbound -----------------------------------------------------------------------------------------


def _bold(text: str) -> str:
    """``*bold*`` needs the asterisks against the words: keep surrounding whitespace outside."""
    core = text.strip()
    if not core:
        return escape(text)
    start = text.index(core[0])
    return f"{escape(text[:start])}*{escape(core)}*{escape(text[start + len(core) :])}"


def mrkdwn(message: Message) -> str:
    """Slack mrkdwn: ``&``, ``<`` and ``>`` escaped, bold spans between asterisks."""
    return "".join(_bold(span.text) if span.bold else escape(span.text) for span in message.spans)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _truncate(text, SECTION_TEXT_LIMIT)}}


def fallback_text(message: Message) -> str:
    """The top-level ``text`` of a message with blocks: shown in notifications."""
    return _truncate(mrkdwn(message), FALLBACK_TEXT_LIMIT)


def text_blocks(message: Message) -> list[dict[str, Any]]:
    return [_section(mrkdwn(message))]


def choice_blocks(message: Message, choices: Sequence[Choice]) -> list[dict[str, Any]]:
    """An MCQ: the numbered options in a section, then one short button per option."""
    blocks = text_blocks(message)
    buttons = [
        {
            "type": "button",
            "action_id": f"{CHOICE_ACTION_PREFIX}{i}",
            "text": {"type": "plain_text", "text": _truncate(choice.label, BUTTON_TEXT_LIMIT)},
            "value": choice.callback_data(),
        }
        for i, choice in enumerate(choices)
    ]
    for start in range(0, len(buttons), ACTIONS_LIMIT):
        blocks.append({"type": "actions", "elements": buttons[start : start + ACTIONS_LIMIT]})
    return blocks


def roleplay_blocks(message: Message, delivery_id: int | None = None) -> list[dict[str, Any]]:
    """A role-play: the scenario, then an "Answer" button that opens the answer modal."""
    return [
        *text_blocks(message),
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": ANSWER_ACTION,
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Answer"},
                    "value": f"rp:{delivery_id}" if delivery_id is not None else "rp:",
                }
            ],
        },
    ]


def message_blocks(
    message: Message, choices: Sequence[Choice] = (), *, reply_for: int | None = None
) -> list[dict[str, Any]]:
    if choices:
        return choice_blocks(message, choices)
    if reply_for is not None:
        return roleplay_blocks(message, reply_for)
    return text_blocks(message)


def answer_modal(request: AnswerRequest, scenario: str = "") -> dict[str, Any]:
    """The modal a rep types a role-play answer in; ``private_metadata`` says which role-play it is."""
    metadata = str(request.delivery_id) if request.delivery_id is not None else request.message_ref
    blocks: list[dict[str, Any]] = []
    if scenario:
        blocks.append(_section(escape(scenario)))
    blocks.append(
        {
            "type": "input",
            "block_id": ANSWER_BLOCK,
            "label": {"type": "plain_text", "text": "What would you say?"},
            "element": {
                "type": "plain_text_input",
                "action_id": ANSWER_INPUT,
                "multiline": True,
                "max_length": 3000,
            },
        }
    )
    return {
        "type": "modal",
        "callback_id": ANSWER_VIEW,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Your answer"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def metadata_delivery(metadata: str) -> tuple[int | None, str | None]:
    """``private_metadata`` back to (delivery id, message reference): one of the two is set."""
    if metadata.isdigit():
        return int(metadata), None
    return None, (metadata or None)
