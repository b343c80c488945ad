"""The one protocol the engine talks to a chat platform through."""

from __future__ import annotations

from typing import Protocol

from scheduler.messages import Message
from scheduler.sender import Address, Sender


class ChatAdapter(Sender, Protocol):
    """A sender that can also edit a message it sent, to close a question once it is answered."""

    platform: str

    async def update_message(self, to: Address, ref: str, message: Message) -> None: ...
