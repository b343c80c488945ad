"""The one protocol the engine talks to a chat platform through."""

from __future__ import annotations

from typing import Protocol

from scheduler.messages import Message
from scheduler.sender import Address, Sender


class ChatAdapter(Sender, Protocol):
    """A sender that can also edit a message it sent, to close a question once it is answered."""

    platform: str

    async def update_message(self, to: Address, ref: str, message: Message) -> None: ...


class AdapterStartError(Exception):
    """A chat adapter could not start (a refused token, no connection): the message names the setting to
    fix and the platform's reason, never a secret, so ``coachbot run`` can print it as one line."""
