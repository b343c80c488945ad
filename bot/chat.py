"""``coachbot chat --as EMAIL``: be a rep in the terminal, over the real engine and database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

from sqlalchemy import Engine

from bot.adapters.console.adapter import PLATFORM, ConsoleAdapter
from bot.engine import Coach, CoachConfig, UnknownItem
from bot.grading import RoleplayGrader
from scheduler import memory
from scheduler.messages import message
from scheduler.sender import Address
from storage import learning
from storage.db import read_session, write_session
from storage.models import utcnow
from storage.runner import StorageRunner

QUIT_WORDS = frozenset({"quit", "exit", "/quit", "/exit"})


class ChatError(Exception):
    """The chat cannot start (unknown person, unknown item)."""


async def run_console_chat(
    *,
    engine: Engine,
    email: str,
    item: str | None,
    stdin: TextIO,
    stdout: TextIO,
    grader: RoleplayGrader,
    config: CoachConfig,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Read lines until EOF or ``quit``; each line is one inbound event with its own idempotency key."""
    person = _console_person(engine, email)
    adapter = ConsoleAdapter(stdout)
    coach = Coach(
        engine=engine,
        runner=StorageRunner(),
        adapter=adapter,
        grader=grader,
        memory_model=memory.make_scheduler(),
        config=config,
        clock=clock,
    )
    sender = Address(PLATFORM, "", person.email)
    await adapter.send_message(
        sender, message(f"Hi {person.name.split()[0]}! Type help for commands, quit to leave.")
    )
    if item is not None:
        pack_key, _, item_key = item.partition("/")
        try:
            sent = await coach.start_item(person, pack_key, item_key)
        except UnknownItem:
            raise ChatError(f"no live item {item!r}; use PACK/ITEM as listed by the pack file") from None
        if not sent:
            raise ChatError(
                f"{person.email} already had {item!r} today; it can be asked again tomorrow"
                " (or preview it --as someone else)"
            )
    session_id = uuid.uuid4().hex[:12]
    line_number = 0
    while True:
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            break
        line_number += 1
        if line.strip().lower() in QUIT_WORDS:
            break
        event = adapter.to_event(
            line, sender=sender, key=f"console:{session_id}:{line_number}", received_at=clock()
        )
        if event is not None:
            await coach.handle(event)


def _console_person(engine: Engine, email: str) -> learning.PersonView:
    """The roster person to be; the console identity is bound on first use (the host terminal is trusted)."""
    with write_session(engine) as session:
        person = learning.person_by_email(session, email=email)
        if person is None:
            raise ChatError(f"{email} is not on the roster; load it with `coachbot roster load`")
        if not person.active:
            raise ChatError(f"{email} is deactivated in the roster")
        assert person.id is not None
        learning.bind_identity(
            session, person_id=person.id, platform=PLATFORM, workspace="", user_id=person.email
        )
    with read_session(engine) as session:
        fresh = learning.person_by_email(session, email=email)
        assert fresh is not None
        return fresh
