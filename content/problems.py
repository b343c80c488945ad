"""Problems found in an input file, each pointing at where it is."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    column: int
    message: str
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.column else f"{self.file}:{self.line}"
        return f"{where}: {'warning: ' if self.warning else ''}{self.message}"


class ContentError(Exception):
    """An input file has errors; ``problems`` lists every one (warnings included) in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems)
        errors = [p for p in self.problems if not p.warning]
        first = str(errors[0]) if errors else "no errors"
        super().__init__(f"{len(errors)} problem(s); first: {first}")

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.warning]
