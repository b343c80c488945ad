"""The composition root: builds the pieces from settings and wires them together."""

from __future__ import annotations

from bot.engine import CoachConfig
from bot.grading import RoleplayGrader, RubricGrader
from bot.settings import Settings


def build_grader(settings: Settings) -> RoleplayGrader:
    """The LLM grader when a model and key are configured (it falls back to the rubric); else the rubric."""
    if settings.openai_api_key is None or not settings.llm_model:
        return RubricGrader()
    from bot.llm_grader import LLMGrader

    return LLMGrader(
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key.get_secret_value(),
        model=settings.llm_model,
        timeout_seconds=settings.llm_timeout_seconds,
    )


def coach_config(settings: Settings) -> CoachConfig:
    return CoachConfig(default_timezone=settings.timezone, expire_after=settings.expire_after)
