"""The rubric grader on the longest answer the engine grades (``MAX_ANSWER_CHARS``), as a ratio to the same
grader on honest prose of the same length: answers built to make its patterns backtrack (long runs of the
words they repeat) must cost about what prose costs, since grading runs on the event loop.

A pattern that splits a run of words between two repeated groups takes quadratic time: "ignore" followed
by 1,000 "all" took 0.35 s, and by 4,000 six seconds, before the injection filter's grammar was fixed.
Run with ``make bench``; not part of ``make test``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from bot.engine import MAX_ANSWER_CHARS
from content.grading import Forbidden, RubricPoint, grade_roleplay
from content.packs import RoleplaySpec, read_pack_file

REPO = Path(__file__).resolve().parent.parent
ROUNDS = 15
PROSE = (
    "That's a fair point, doctor. In VANTAGE-2 the event rate fell, and most of your post-MI patients are "
    "still above goal on a statin alone, so a monthly injection could help those who are far from goal. "
)
# Runs of the words the injection filter's patterns repeat, each after the word that starts its pattern.
ADVERSARIAL = {
    "ignore + owner words": ("ignore ", "all your these those "),
    "forget + everything": ("forget every ", "all "),
    "give + recipient": ("so give ", "this "),
    "role + modifiers": ("you are now a ", "strict ai "),
    "score + numbers": ("give me ", "1,1 "),
    "negation + cues": ("never ", "not only "),
    "fake record": ("{score: ", "1, "),
}


def _answer(start: str, run: str) -> str:
    """``start``, then ``run`` repeated up to the longest answer graded."""
    return start + run * ((MAX_ANSWER_CHARS - len(start)) // len(run))


def _median_seconds(answer: str, rubric: tuple[RubricPoint, ...], forbidden: tuple[Forbidden, ...]) -> float:
    timings = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        grade_roleplay(answer, rubric, forbidden)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> None:
    pack = read_pack_file(REPO / "content" / "packs" / "pharma-cardio.yaml")
    roleplay = next(spec for spec in pack.spec.items if isinstance(spec, RoleplaySpec))
    rubric = tuple(RubricPoint(point=p.point, weight=p.weight, cues=tuple(p.cues)) for p in roleplay.rubric)
    forbidden = tuple(Forbidden(phrase=f.phrase, reason=f.reason) for f in roleplay.forbidden)
    baseline = _median_seconds(_answer("", PROSE), rubric, forbidden)
    print(f"rubric grader, {MAX_ANSWER_CHARS:,}-character answers, median of {ROUNDS}:")
    print(f"  honest prose: {baseline * 1000:.2f} ms")
    for name, (start, run) in ADVERSARIAL.items():
        seconds = _median_seconds(_answer(start, run), rubric, forbidden)
        print(f"  {name}: {seconds * 1000:.2f} ms = {seconds / baseline:.1f}x prose")


if __name__ == "__main__":
    main()
