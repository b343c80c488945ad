"""How the engine grades a role-play answer: the offline rubric grader, or an LLM that falls back to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from content.grading import Forbidden, Grade, RubricPoint, grade_roleplay


@dataclass(frozen=True)
class RoleplayTask:
    """What a grader may see of an item: never who the rep is."""

    scenario: str
    rubric: tuple[RubricPoint, ...]
    forbidden: tuple[Forbidden, ...]
    model_answer: str

    @classmethod
    def from_item_body(cls, body: Mapping[str, Any]) -> RoleplayTask:
        return cls(
            scenario=str(body["scenario"]),
            rubric=tuple(
                RubricPoint(point=str(p["point"]), weight=float(p["weight"]), cues=tuple(p["cues"]))
                for p in body["rubric"]
            ),
            forbidden=tuple(
                Forbidden(phrase=str(f["phrase"]), reason=str(f["reason"])) for f in body.get("forbidden", ())
            ),
            model_answer=str(body["model_answer"]),
        )


class RoleplayGrader(Protocol):
    async def grade(self, task: RoleplayTask, answer: str) -> Grade:
        """Score ``answer`` 0-100 with per-point results and compliance flags; never raise for bad ones."""
        ...


class RubricGrader:
    """The offline grader: deterministic, instant, no account anywhere."""

    async def grade(self, task: RoleplayTask, answer: str) -> Grade:
        return grade_roleplay(answer, task.rubric, task.forbidden)
