"""What the scheduler sends through: the chat adapters satisfy this protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from scheduler.messages import Choice, Message


@dataclass(frozen=True)
class Address:
    """Where a person is reached on one platform (immutable ids; a DM channel when the platform needs one)."""

    platform: str
    workspace: str
    user_id: str
    channel: str | None = None


class Sender(Protocol):
    async def send_message(self, to: Address, message: Message, choices: Sequence[Choice] = ()) -> str | None:
        """Send; return the platform's reference to the message (for later updates), if it has one."""
        ...

    async def send_image(self, to: Address, image: bytes, caption: Message) -> str | None: ...
