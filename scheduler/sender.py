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
    async def send_message(
        self, to: Address, message: Message, choices: Sequence[Choice] = (), *, reply_for: int | None = None
    ) -> str | None:
        """Send; return the platform's reference to the message (for later updates), if it has one.

        ``reply_for`` names the delivery that a free-text reply to this message answers (a role-play): the
        platform offers a way to answer it (Slack's Answer button and modal, Telegram's ForceReply).
        """
        ...

    async def send_image(self, to: Address, image: bytes, caption: Message) -> str | None: ...
