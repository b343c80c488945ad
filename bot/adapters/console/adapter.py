"""The console adapter: numbered choices, free-text answers and commands, one line at a time."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from bot.events import ChoiceEvent, InboundEvent, TextEvent
from scheduler.messages import Choice, Message
from scheduler.sender import Address

PLATFORM = "console"
_PICK = re.compile(r"[0-9]{1,2}")
"""A typed pick: ASCII digits only (``str.isdigit`` is true for "²", which ``int`` refuses)."""


def render(message: Message) -> str:
    """Plain text: a terminal has no bold."""
    return message.plain


class ConsoleAdapter:
    """Writes what the bot says to ``out`` and turns typed lines into events."""

    platform = PLATFORM

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._sent = 0
        self._last_question: int | None = None

    def _write(self, text: str) -> None:
        self._out.write(f"bot> {text.replace(chr(10), chr(10) + '     ')}\n")
        self._out.flush()

    async def send_message(
        self, to: Address, message: Message, choices: Sequence[Choice] = (), *, reply_for: int | None = None
    ) -> str | None:
        self._sent += 1
        self._write(render(message))
        if reply_for is not None:
            self._last_question = None  # a role-play: a number typed now is not a pick
        if choices:
            self._last_question = choices[0].delivery_id
            self._out.write(f"     (reply {choices[0].label}-{choices[-1].label})\n")
            self._out.flush()
        return f"console:{self._sent}"

    async def send_image(self, to: Address, image: bytes, caption: Message) -> str | None:
        self._sent += 1
        self._write(f"[image, {len(image)} bytes] {render(caption)}")
        return f"console:{self._sent}"

    async def update_message(self, to: Address, ref: str, message: Message) -> None:
        """A terminal cannot edit what it printed; a later pick on the question is refused by the engine."""

    def to_event(self, line: str, *, sender: Address, key: str, received_at: datetime) -> InboundEvent | None:
        """A number picks an option of the last question shown; anything else is text for the engine."""
        text = line.strip()
        if not text:
            return None
        if _PICK.fullmatch(text) and self._last_question is not None:
            return ChoiceEvent(
                sender=sender,
                key=key,
                received_at=received_at,
                delivery_id=self._last_question,
                option_index=int(text) - 1,
            )
        return TextEvent(sender=sender, key=key, received_at=received_at, text=text)
