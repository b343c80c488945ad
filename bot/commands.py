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
# "follow-up", "followup", "follow_up", "fu" (one word) or "follow up" (two words), in any case.
_FOLLOW_UP = re.compile(r"follow[-_\u2010\u2011\u2013]?up|fu", re.IGNORECASE)
_COUNT = re.compile(r"0*([0-9]{1,4})")  # int() gets at most four digits, never thousands
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_COUNT = 1000
COUNT_ERROR = f"The count must be a whole number between 1 and {MAX_COUNT}."
_SIGNS = frozenset("+-\u2212\u2013")  # also the minus sign and the en dash a phone may type
_SEPARATORS = frozenset(".,_'")


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
    if rest and _looks_like_a_number(rest[0]):
        count = _parse_count(rest.pop(0))
    follow_up_on = None
    keyword = _follow_up_keyword(rest)
    if keyword:
        rest = rest[keyword:]
        follow_up_on = _parse_date(
            rest[0] if rest else "",
            usage="Give the follow-up date as YYYY-MM-DD, e.g. `follow-up 2026-12-10`.",
        )
        if follow_up_on < today:
            raise CommandError("That follow-up date is in the past.")
        rest = rest[1:]
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
    until = _parse_date(words[0], usage="Use `pause until YYYY-MM-DD`, e.g. `pause until 2026-12-24`.")
    if until < today:
        raise CommandError("That date is in the past.")
    return until


def _looks_like_a_number(word: str) -> bool:
    """'3', '-3', '3.5', '1,000', '²', '٣': a count the rep meant, even one we do not accept.

    A date ('2026-12-01') or a word with a digit ('1st') is not: it starts the note.
    """
    digits = word[1:] if word[:1] in _SIGNS else word
    return any(ch.isnumeric() for ch in digits) and all(ch.isnumeric() or ch in _SEPARATORS for ch in digits)


def _parse_count(word: str) -> int:
    """ASCII digits only: ``int()`` would also take '٣' or '1_000', and ``isdigit()`` is true for '²'."""
    match = _COUNT.fullmatch(word)
    if match is None:
        raise CommandError(COUNT_ERROR)
    count = int(match[1])
    if not 1 <= count <= MAX_COUNT:
        raise CommandError(COUNT_ERROR)
    return count


def _follow_up_keyword(words: list[str]) -> int:
    """The number of words the follow-up keyword at the start takes: 'follow-up' 1, 'follow up' 2, else 0."""
    if words and _FOLLOW_UP.fullmatch(words[0]):
        return 1
    if len(words) >= 2 and words[0].lower() == "follow" and words[1].lower() == "up":
        return 2
    return 0


def _parse_date(word: str, *, usage: str) -> date:
    """Exactly YYYY-MM-DD in ASCII digits (``date.fromisoformat`` also takes '20261224' and '2026-W52')."""
    if _ISO_DATE.fullmatch(word) is None:
        raise CommandError(usage)
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise CommandError(f"There is no date {word}. {usage}") from None
