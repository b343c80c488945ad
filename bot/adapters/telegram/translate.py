"""Pure translation between Bot API payloads and the engine: no I/O, no clock, no database.

Inbound, an ``Update`` (as the JSON dict the Bot API documents at https://core.telegram.org/bots/api#update)
becomes one engine event, or ``None`` when coachbot ignores it: edited messages, channel posts, membership
changes (``my_chat_member``), anything from a group, supergroup or channel, messages from bots, and
messages without text (stickers, photos, voice notes). A message with a ``document``
(https://core.telegram.org/bots/api#document) becomes a :class:`FileEvent` without its content, with a
:class:`Document` naming what the adapter downloads (after checking its size). Outbound, an engine
:class:`Message` becomes Telegram HTML (https://core.telegram.org/bots/api#html-style) with every pack
and user string escaped, and choices become an inline keyboard whose buttons carry
:meth:`Choice.callback_data`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.commands import parse_command
from bot.events import ChoiceEvent, CommandEvent, FileEvent, InboundEvent, TextEvent
from scheduler.messages import Choice, Message, parse_callback_data
from scheduler.sender import Address

PLATFORM = "telegram"
WORKSPACE = ""
"""Telegram has no workspaces: identities are (``telegram``, ``""``, numeric user id)."""
BUTTONS_PER_ROW = 5
MAX_TEXT = 4096
"""The Bot API's limit for one message's text after entity parsing."""
"""The bold first span of a role-play question (``bot.replies.question_text``): such a message is sent with
ForceReply so that the rep's answer arrives as a reply to it."""


DEFAULT_FILENAME = "document"
"""The file name of a document Telegram sent without one."""


@dataclass(frozen=True)
class Document:
    """A document to download: its ``file_id`` (for ``getFile``) and ``file_size`` (optional in the API)."""

    file_id: str
    file_size: int | None


@dataclass(frozen=True)
class Inbound:
    """One update coachbot acts on.

    ``update_key`` is what the adapter records with ``claim_update`` (``update:<update_id>``); the event's
    own key is unique for longer than an update id (which Telegram may restart): ``cb:<callback query
    id>`` or ``msg:<chat id>:<message id>``. ``reply_to_ref`` names the bot message a text replies to
    (``<chat id>:<message id>``, the reference ``send_message`` returned), for the adapter to resolve to a
    delivery. ``start_code`` is the invite code of ``/start <code>``. ``document`` is set for a
    :class:`FileEvent`, whose ``content`` is empty until the adapter downloaded it.
    """

    update_id: int
    event: InboundEvent
    reply_to_ref: str | None = None
    start_code: str | None = None
    document: Document | None = None

    @property
    def update_key(self) -> str:
        return f"update:{self.update_id}"


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _private_sender(message: Mapping[str, Any], sender: Mapping[str, Any] | None) -> Address | None:
    """The rep behind a private chat message (never a bot, never a group)."""
    chat = _mapping(message.get("chat"))
    if chat is None or chat.get("type") != "private" or sender is None or sender.get("is_bot") is not False:
        return None
    chat_id, user_id = _int(chat.get("id")), _int(sender.get("id"))
    if chat_id is None or user_id is None:
        return None
    return Address(PLATFORM, WORKSPACE, str(user_id), str(chat_id))


def callback_query_id(data: Mapping[str, Any]) -> str | None:
    """The id of a callback query to answer: every button press is acknowledged, even one we ignore."""
    query = _mapping(data.get("callback_query"))
    if query is None:
        return None
    query_id = query.get("id")
    return query_id if isinstance(query_id, str) and query_id else None


def translate_update(data: Mapping[str, Any], *, received_at: datetime) -> Inbound | None:
    """An update dict to what the engine should see, or ``None`` if coachbot ignores it."""
    update_id = _int(data.get("update_id"))
    if update_id is None:
        return None
    query = _mapping(data.get("callback_query"))
    if query is not None:
        return _from_callback_query(update_id, query, received_at)
    message = _mapping(data.get("message"))
    if message is not None:
        return _from_message(update_id, message, received_at)
    return None  # edited_message, channel_post, my_chat_member, inline_query, poll, ...


def _from_callback_query(update_id: int, query: Mapping[str, Any], received_at: datetime) -> Inbound | None:
    message = _mapping(query.get("message"))
    query_id, data = query.get("id"), query.get("data")
    if message is None or not isinstance(query_id, str) or not isinstance(data, str):
        return None
    sender = _private_sender(message, _mapping(query.get("from")))
    parsed = parse_callback_data(data)
    if sender is None or parsed is None:
        return None
    delivery_id, option_index = parsed
    event = ChoiceEvent(
        sender=sender,
        key=f"cb:{query_id}",
        received_at=received_at,
        delivery_id=delivery_id,
        option_index=option_index,
    )
    return Inbound(update_id, event)


def _from_document(
    update_id: int,
    key: str,
    sender: Address,
    document: Mapping[str, Any],
    caption: Any,
    received_at: datetime,
) -> Inbound | None:
    file_id, filename = document.get("file_id"), document.get("file_name")
    if not isinstance(file_id, str) or not file_id:
        return None
    if not isinstance(filename, str) or not filename.strip():
        filename = DEFAULT_FILENAME
    event = FileEvent(
        sender=sender,
        key=key,
        received_at=received_at,
        filename=filename.strip(),
        content=b"",
        caption=caption.strip() if isinstance(caption, str) else "",
    )
    return Inbound(update_id, event, document=Document(file_id, _int(document.get("file_size"))))


def _from_message(update_id: int, message: Mapping[str, Any], received_at: datetime) -> Inbound | None:
    sender = _private_sender(message, _mapping(message.get("from")))
    text, message_id = message.get("text"), _int(message.get("message_id"))
    document = _mapping(message.get("document"))
    if sender is not None and message_id is not None and document is not None:
        key = f"msg:{sender.channel}:{message_id}"
        return _from_document(update_id, key, sender, document, message.get("caption"), received_at)
    if sender is None or message_id is None or not isinstance(text, str) or not text.strip():
        return None
    if _not_typed_by_sender(message):
        return None
    key = f"msg:{sender.channel}:{message_id}"
    stripped = text.strip()
    if stripped.startswith("/"):
        head, _, rest = stripped.partition(" ")
        name = head[1:].split("@", 1)[0].lower()
        if name == "start" and rest.strip():
            return Inbound(update_id, CommandEvent(sender, key, received_at, "help"), start_code=rest.strip())
        command = parse_command(stripped)
        if command is not None:
            return Inbound(update_id, CommandEvent(sender, key, received_at, command.name, command.args))
    reply_to_ref = None
    replied = _mapping(message.get("reply_to_message"))
    if replied is not None:
        author, replied_id = _mapping(replied.get("from")), _int(replied.get("message_id"))
        if author is not None and author.get("is_bot") is True and replied_id is not None:
            reply_to_ref = f"{sender.channel}:{replied_id}"
    return Inbound(update_id, TextEvent(sender, key, received_at, text), reply_to_ref=reply_to_ref)


_FORWARD_FIELDS = (
    "forward_origin",
    "forward_from",
    "forward_from_chat",
    "forward_sender_name",
    "forward_date",
)


def _not_typed_by_sender(message: Mapping[str, Any]) -> bool:
    """Forwarded text (someone else's words) or text an inline bot wrote is no answer, nor a command.

    ``forward_origin`` since Bot API 7.0, the ``forward_*`` fields before it. A forwarded file stays a file
    an admin may load: only text is ignored.
    """
    return any(field in message for field in _FORWARD_FIELDS) or "via_bot" in message


def render_html(message: Message, *, limit: int = MAX_TEXT) -> str:
    """Telegram HTML: bold spans in ``<b>``, everything else escaped (``<``, ``>`` and ``&``, not quotes).

    A text longer than ``limit`` (4096 for a message, 1024 for a caption) is cut, as plain text, with "…".
    """
    parts = []
    for span in message.spans:
        escaped = html.escape(span.text, quote=False)
        parts.append(f"<b>{escaped}</b>" if span.bold and escaped else escaped)
    rendered = "".join(parts)
    if len(rendered) <= limit:
        return rendered
    plain = message.plain
    keep = limit - 1
    while keep > 0:
        cut = html.escape(plain[:keep], quote=False) + "…"
        if len(cut) <= limit:
            return cut
        keep -= len(cut) - limit
    return "…"


def keyboard(choices: Sequence[Choice]) -> InlineKeyboardMarkup | None:
    """Short buttons (the option numbers), at most :data:`BUTTONS_PER_ROW` a row; ``None`` without choices."""
    if not choices:
        return None
    buttons = [InlineKeyboardButton(choice.label, callback_data=choice.callback_data()) for choice in choices]
    rows = [buttons[i : i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)]
    return InlineKeyboardMarkup(rows)


def message_ref(chat_id: int, message_id: int) -> str:
    return f"{chat_id}:{message_id}"


def parse_message_ref(ref: str) -> tuple[int, int] | None:
    """``<chat id>:<message id>`` back to numbers (chat ids of groups are negative)."""
    chat, sep, message_id = ref.partition(":")
    try:
        return (int(chat), int(message_id)) if sep else None
    except ValueError:
        return None
