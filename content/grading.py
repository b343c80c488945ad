"""The offline rubric grader: deterministic text matching, so ``pack validate`` can check rubric examples
and role-plays are graded with no account anywhere.

Matching works on normalised word stems at word boundaries ("procures" does not hit "cure", "cured"
does), multi-word cues match as phrases, and a cue preceded in the same clause by a negation ("I would
never cite an anecdote") does not earn its point. Forbidden phrases always flag the answer and cap its
score. Text that tries to instruct the grader is removed before grading, so it can never add points.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

GRADER_VERSION = "rubric-1"
COMPLIANCE_SCORE_CAP = 40.0
NEGATION_WINDOW = 4

_NEGATORS = frozenset(
    {
        "not",
        "no",
        "never",
        "nor",
        "neither",
        "without",
        "cannot",
        "can't",
        "won't",
        "wouldn't",
        "shouldn't",
        "don't",
        "doesn't",
        "didn't",
        "isn't",
        "aren't",
        "wasn't",
        "weren't",
        "haven't",
        "hasn't",
        "couldn't",
        # Chat spelling without apostrophes.
        "cant",
        "wont",
        "wouldnt",
        "shouldnt",
        "dont",
        "doesnt",
        "didnt",
        "isnt",
        "arent",
        "wasnt",
        "werent",
        "havent",
        "hasnt",
        "couldnt",
        "avoid",
        "refuse",
    }
)
_PUNCTUATION = frozenset({".", ",", ";", ":", "!", "?"})
_CLAUSE_BREAKS = frozenset({".", ",", ";", ":", "!", "?", "but", "however", "although", "though", "yet"})
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+(?:'[^\W_]+)*|[.,;:!?]")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})

# Whole blocks that imitate a chat transcript's other speakers: their content is not the rep's answer.
_ROLE_BLOCKS = (
    re.compile(r"<\|im_start\|>.*?(?:<\|im_end\|>|\Z)", re.IGNORECASE | re.DOTALL),
    re.compile(
        r"<\s*(system|assistant|developer|grader|instructions?)\b[^>]*>.*?(?:<\s*/\s*\1\s*>|\Z)",
        re.IGNORECASE | re.DOTALL,
    ),
    re.compile(r"\[INST\].*?(?:\[/INST\]|\Z)|<<SYS>>.*?(?:<</SYS>>|\Z)", re.IGNORECASE | re.DOTALL),
)
_ROLE_TAG = re.compile(
    r"<\|?\s*/?\s*(?:system|assistant|user|developer|im_start|im_end|instructions?)\b[^>]*\|?>|\[/?(?:INST|SYS)\]",
    re.IGNORECASE,
)
_ROLE_LINE = re.compile(r"(?i)\b(?:system|assistant|developer|grader)\s*:[^\n]*")
_FAKE_JSON = re.compile(
    r"\{[^{}]*[\"']?(?:score|grade|points?|rating|hit|result)[\"']?\s*:[^{}]*\}", re.IGNORECASE
)
_DIRECTIVES = (
    re.compile(
        r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,60}\b(?:instruction|rubric|rule|prompt|above|previous|"
        r"criteria|grading)",
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:give|award|grade|score|rate|mark)\b.{0,40}"
        r"(?:\b100\b|full marks|perfect|maximum|top score|10/10|\bA\+)",
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:you are|act as|pretend to be)\b.{0,40}\b(?:grader|model|assistant|ai)\b", re.IGNORECASE
    ),
)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class RubricPoint:
    point: str
    weight: float
    cues: tuple[str, ...]


@dataclass(frozen=True)
class Forbidden:
    phrase: str
    reason: str


@dataclass(frozen=True)
class PointResult:
    point: str
    weight: float
    hit: bool
    evidence: str | None = None


@dataclass(frozen=True)
class ComplianceFlag:
    phrase: str
    reason: str


@dataclass(frozen=True)
class Grade:
    score: float
    points: tuple[PointResult, ...]
    flags: tuple[ComplianceFlag, ...]
    grader: str = "rubric"
    version: str = GRADER_VERSION
    injection_removed: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    return "".join(ch for ch in text if not unicodedata.combining(ch)).lower()


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalise(text))


def stem(word: str, *, adverbs: bool = True) -> str:
    """A light English stemmer: enough to match plurals and verb forms, never substrings.

    With ``adverbs`` an ``-ly`` ending goes too ("honestly" earns the cue "honest"); forbidden phrases are
    matched without it, so forbidding "legally" does not flag a rep who says "legal".
    """
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith(("ies", "ied")):
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]
            break
    if adverbs and len(word) > 5 and word.endswith("ly"):
        word = word[:-2]
    while len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def _phrase_positions(haystack: Sequence[str], needle: Sequence[str]) -> list[int]:
    if not needle:
        return []
    width = len(needle)
    return [i for i in range(len(haystack) - width + 1) if list(haystack[i : i + width]) == list(needle)]


def _negated(words: Sequence[str], position: int) -> bool:
    for offset in range(1, NEGATION_WINDOW + 1):
        index = position - offset
        if index < 0 or words[index] in _CLAUSE_BREAKS:
            return False
        if words[index] in _NEGATORS or words[index].endswith("n't"):
            return True
    return False


def _content_stems(words: Sequence[str], *, adverbs: bool = True) -> tuple[list[str], list[int]]:
    """Stems of the words (punctuation dropped, so "CV death, MI" matches "CV death MI"), with positions."""
    positions = [i for i, word in enumerate(words) if word not in _PUNCTUATION]
    return [stem(words[i], adverbs=adverbs) for i in positions], positions


def find_cue(text: str, cues: Sequence[str]) -> str | None:
    """The first cue that ``text`` states positively, or ``None``."""
    words = tokens(text)
    stems, positions = _content_stems(words)
    for cue in cues:
        cue_stems, _ = _content_stems(tokens(cue))
        for position in _phrase_positions(stems, cue_stems):
            if not _negated(words, positions[position]):
                return cue
    return None


def find_forbidden(text: str, forbidden: Sequence[Forbidden]) -> list[ComplianceFlag]:
    """Forbidden phrases flag whatever surrounds them: a negated claim is still one to avoid in chat."""
    stems, _ = _content_stems(tokens(text), adverbs=False)
    flags = []
    for rule in forbidden:
        needle, _ = _content_stems(tokens(rule.phrase), adverbs=False)
        if _phrase_positions(stems, needle):
            flags.append(ComplianceFlag(phrase=rule.phrase, reason=rule.reason))
    return flags


def strip_injections(text: str) -> tuple[str, bool]:
    """Remove role tags, fake grading JSON and sentences that instruct the grader; report whether any was."""
    cleaned = text
    for block in _ROLE_BLOCKS:
        cleaned = block.sub(" ", cleaned)
    cleaned = _ROLE_TAG.sub(" ", cleaned)
    cleaned = _FAKE_JSON.sub(" ", cleaned)
    lines = []
    for line in cleaned.split("\n"):
        sentences = _SENTENCE_BREAK.split(line)
        lines.append(" ".join(s for s in sentences if not any(p.search(s) for p in _DIRECTIVES)))
    cleaned = _ROLE_LINE.sub(" ", "\n".join(lines))
    cleaned = " ".join(cleaned.split())
    return cleaned, cleaned != " ".join(text.split())


def grade_roleplay(answer: str, rubric: Sequence[RubricPoint], forbidden: Sequence[Forbidden]) -> Grade:
    clean, removed = strip_injections(answer)
    results = []
    for point in rubric:
        cue = find_cue(clean, point.cues)
        results.append(PointResult(point=point.point, weight=point.weight, hit=cue is not None, evidence=cue))
    total = sum(p.weight for p in rubric)
    score = 100.0 * sum(r.weight for r in results if r.hit) / total if total > 0 else 0.0
    flags = find_forbidden(answer, forbidden)
    if flags:
        score = min(score, COMPLIANCE_SCORE_CAP)
    return Grade(score=round(score, 1), points=tuple(results), flags=tuple(flags), injection_removed=removed)
