"""Turn pydantic validation errors into ``file:line:col`` problems."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from content.problems import Problem
from content.yamlsafe import Located, Path


def known_fields(models: Iterable[type[BaseModel]]) -> set[str]:
    return {name for model in models for name in model.model_fields}


def problems_from_validation(
    error: ValidationError, located: Located, *, base: Path = (), vocabulary: set[str] | None = None
) -> list[Problem]:
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        path = _data_path(located.data, (*base, *detail["loc"]))
        kind = detail["type"]
        if kind == "extra_forbidden":
            key = str(path[-1])
            message = f"{_dotted(path[:-1])}unknown key '{key}'"
            close = difflib.get_close_matches(key, sorted(vocabulary or ()), n=1)
            if close:
                message += f" (did you mean '{close[0]}'?)"
            problems.append(located.problem(path, message, at_key=True))
        elif kind == "missing":
            key = str(detail["loc"][-1])
            problems.append(located.problem(path[:-1], f"{_dotted(path[:-1])}missing required key '{key}'"))
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            expected = detail.get("ctx", {}).get("expected_tags", "")
            node = located.data
            for part in path:
                node = node[part]
            at = (*path, "type") if isinstance(node, dict) and "type" in node else path
            problems.append(located.problem(at, f"{_dotted(path)}type must be one of {expected}"))
        else:
            message = str(detail["msg"]).removeprefix("Value error, ")
            problems.append(located.problem(path, f"{_dotted(path)}{message}"))
    return problems


def _data_path(data: Any, loc: Iterable[str | int]) -> Path:
    """Follow ``loc`` through ``data``, dropping union tags and model names pydantic inserts into it."""
    path: list[str | int] = []
    current = data
    walking = True
    for part in loc:
        if walking and _has(current, part):
            path.append(part)
            current = current[part]
        elif walking and isinstance(current, dict) and isinstance(part, str) and not _is_tag(part, current):
            path.append(part)  # a key that is missing or extra: stop here
            walking = False
        elif not walking:
            path.append(part)
    return tuple(path)


def _has(current: Any, part: str | int) -> bool:
    if isinstance(current, dict):
        return part in current
    return isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)


def _is_tag(part: str, current: dict[str, Any]) -> bool:
    return current.get("type") == part or part.startswith(("function-", "tagged-union", "union["))


def _dotted(path: Path) -> str:
    if not path:
        return ""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return f"{text}: "
