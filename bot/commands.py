"""Parsing what a rep types: commands in plain words or as slash commands."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

COMMANDS = ("help", "quiz", "stats", "leaderboard", "log", "pause", "resume", "settings")
ALIASES = {
    "practice": "quiz",
    "practise": "quiz",
    "next": "quiz",
    "start": "help",
    "menu": "help",
    "?": "help",
    "score": "stats",
    "board": "leaderboard",
    "top": "leaderboard",
    "vacation": "pause",
    "unpause": "resume",
}
_FOLLOW_UP = re.compile(r"^(?:follow[- ]?up|fu)$", re.IGNORECASE)


# Without a slash, a command must look like one, so that a role-play answer such as "Help me understand
# your concern..." is graded, not answered with the help text: at most this many words after the name.
PLAIN_ARGUMENT_WORDS = {
    "help": 0,
    "stats": 0,
    "leaderboard": 0,
    "resume": 0,
    "quiz": 1,
    "pause": 2,
    "settings": 2,
}


@dataclass(frozen=True)
class Command:
    name: str
    args: str


def parse_command(text: str) -> Command | None:
    """``/quiz statins``, ``quiz statins`` and ``Quiz`` are commands; other text is not."""
    stripped = text.strip()
    if not stripped:
        return None
    head, _, rest = stripped.partition(" ")
    slashed = head.startswith("/")
    word = head.lstrip("/").split("@", 1)[0].lower()
    word = word.rstrip(".!?") or word
    name = ALIASES.get(word, word)
    if name not in COMMANDS:
        return None
    args = rest.strip()
    limit = PLAIN_ARGUMENT_WORDS.get(name)
    if not slashed and limit is not None and len(args.split()) > limit:
        return None
    return Command(name=name, args=args)


class CommandError(ValueError):
    """A command's arguments are wrong; the message is shown to the rep."""


@dataclass(frozen=True)
class LogRequest:
    type_word: str
    count: int
    follow_up_on: date | None
    note: str | None


def parse_log(args: str, *, today: date) -> LogRequest:
    """``TYPE [COUNT] [follow-up DATE] [note...]``."""
    words = args.split()
    if not words:
        raise CommandError(
            "Tell me what to log, e.g. `log visit 3` or `log visit 1 follow-up 2026-12-10 Dr Rao`."
        )
    type_word, rest = words[0].lower(), words[1:]
    count = 1
    if rest and rest[0].isdigit():
        count = int(rest.pop(0))
        if not 1 <= count <= 1000:
            raise CommandError("The count must be between 1 and 1000.")
    follow_up_on = None
    if rest and _FOLLOW_UP.match(rest[0]):
        if len(rest) < 2:
            raise CommandError("Give the follow-up date as YYYY-MM-DD, e.g. `follow-up 2026-12-10`.")
        try:
            follow_up_on = date.fromisoformat(rest[1])
        except ValueError:
            raise CommandError(
                "Give the follow-up date as YYYY-MM-DD, e.g. `follow-up 2026-12-10`."
            ) from None
        if follow_up_on < today:
            raise CommandError("That follow-up date is in the past.")
        rest = rest[2:]
    note = " ".join(rest).strip() or None
    if note is not None and len(note) > 500:
        raise CommandError("Keep the note under 500 characters.")
    return LogRequest(type_word=type_word, count=count, follow_up_on=follow_up_on, note=note)


def parse_pause(args: str, *, today: date) -> date | None:
    """``pause`` (until resumed) or ``pause until 2026-12-24``; returns the last paused day."""
    words = args.split()
    if not words:
        return None
    if words[0].lower() == "until":
        words = words[1:]
    if len(words) != 1:
        raise CommandError("Use `pause` or `pause until YYYY-MM-DD`.")
    try:
        until = date.fromisoformat(words[0])
    except ValueError:
        raise CommandError("Use `pause until YYYY-MM-DD`, e.g. `pause until 2026-12-24`.") from None
    if until < today:
        raise CommandError("That date is in the past.")
    return until
