"""Platform-neutral inbound events: what adapters turn platform payloads into."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from scheduler.sender import Address


@dataclass(frozen=True)
class Inbound:
    """Who (immutable platform identity), a key unique per platform event (for dedupe), and when."""

    sender: Address
    key: str
    received_at: datetime


@dataclass(frozen=True)
class CommandEvent(Inbound):
    name: str
    args: str = ""


@dataclass(frozen=True)
class ChoiceEvent(Inbound):
    delivery_id: int
    option_index: int


@dataclass(frozen=True)
class TextEvent(Inbound):
    text: str
    reply_to_delivery: int | None = None
    reply_to_other_message: bool = False
    """A reply to one of the bot's messages that is no question it knows (an older copy of a re-sent
    question, a lesson): the text is not about the newest question for sure."""


@dataclass(frozen=True)
class FileEvent(Inbound):
    """A file someone sent the bot (admins load packs and rosters this way); ``caption`` is their text."""

    filename: str
    content: bytes
    caption: str = ""


MAX_FILE_BYTES = 2 * 1024 * 1024
"""Adapters refuse larger uploads before downloading them."""

InboundEvent = CommandEvent | ChoiceEvent | TextEvent | FileEvent
