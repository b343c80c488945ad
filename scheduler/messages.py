"""Platform-neutral outbound messages: text with light formatting, and short numbered choices.

Choices carry only a delivery id and an option index (Telegram's ``callback_data`` is at most 64 bytes,
Slack's button text at most 75 characters); the options themselves are in the message body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CALLBACK_DATA = re.compile(r"a:([0-9]{1,18}):([0-9]{1,4})")
"""ASCII digits only: ``str.isdigit`` is true for "²", which ``int`` refuses (a forged callback)."""


@dataclass(frozen=True)
class Span:
    text: str
    bold: bool = False


@dataclass(frozen=True)
class Message:
    spans: tuple[Span, ...]

    @property
    def plain(self) -> str:
        return "".join(span.text for span in self.spans)


def bold(text: str) -> Span:
    return Span(text, bold=True)


def message(*parts: str | Span) -> Message:
    """Build a message from plain strings and :func:`bold` spans."""
    return Message(tuple(part if isinstance(part, Span) else Span(part) for part in parts))


@dataclass(frozen=True)
class Choice:
    label: str
    delivery_id: int
    option_index: int

    def callback_data(self) -> str:
        return f"a:{self.delivery_id}:{self.option_index}"


def parse_callback_data(data: str) -> tuple[int, int] | None:
    """``a:<delivery id>:<option index>`` back to numbers; anything else is not ours."""
    match = _CALLBACK_DATA.fullmatch(data)
    if match is None:
        return None
    return int(match[1]), int(match[2])
