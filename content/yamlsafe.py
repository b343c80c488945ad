"""A guarded YAML reader that remembers where every value came from.

Packs and rosters come from admins' laptops and chat uploads, so the reader refuses what a hostile or
broken file could do to the process: Python object tags, alias bombs, absurd nesting and huge files. It
returns plain Python data plus a map from each value's path to its ``(line, column)``, so validation errors
can name ``file:line:col``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from content.problems import ContentError, Problem

MAX_BYTES = 2 * 1024 * 1024
MAX_ALIASES = 50
MAX_DEPTH = 40
MAX_NODES = 50_000

Path = tuple[str | int, ...]

_STANDARD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
}
# YAML 1.1 reads 10:30 as the base-60 integer 630; a clock time is always meant here.
_SEXAGESIMAL = re.compile(r"^[-+]?\d+(:[0-5]?\d)+(\.\d*)?$")


@dataclass
class Located:
    """Parsed data with the position of every mapping key and value in the source."""

    data: Any
    file: str
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path) -> tuple[int, int]:
        """The closest known position for ``path`` (falls back to its parents)."""
        probe = tuple(path)
        while probe:
            if probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return self.positions.get((), (1, 1))

    def where_key(self, path: Path) -> tuple[int, int]:
        return self.key_positions.get(tuple(path)) or self.where(path)

    def problem(self, path: Path, message: str, *, warning: bool = False, at_key: bool = False) -> Problem:
        line, column = self.where_key(path) if at_key else self.where(path)
        return Problem(self.file, line, column, message, warning)


class _GuardedLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _Refused(f"more than {MAX_ALIASES} aliases (an alias bomb?)", event.start_mark)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _Refused(f"more than {MAX_NODES} values", event.start_mark)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _Refused(f"nesting deeper than {MAX_DEPTH} levels", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Refused(Exception):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


def read_yaml(text: str | bytes, *, file: str) -> Located:
    """Parse one YAML document; raise :class:`ContentError` naming ``file:line:col`` on any problem."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", errors="replace"))
    if size > MAX_BYTES:
        raise ContentError([Problem(file, 1, 1, f"file is larger than {MAX_BYTES // (1024 * 1024)} MB")])
    if isinstance(text, bytes):
        raw = text
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ContentError([Problem(file, line, 1, "not valid UTF-8")]) from None
    loader = _GuardedLoader(text)
    try:
        node = loader.get_single_node()
    except _Refused as exc:
        raise ContentError([_at(file, exc.mark, exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"{exc.problem or 'invalid YAML'}" + (f" ({exc.context})" if exc.context else "")
        raise ContentError([_at(file, mark, f"invalid YAML: {message}")]) from None
    except yaml.YAMLError as exc:
        raise ContentError([Problem(file, 1, 1, f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    located = Located(data=None, file=file)
    if node is None:
        return located
    problems: list[Problem] = []
    budget = [MAX_NODES]
    located.data = _convert(node, (), loader, located, problems, budget)
    if problems:
        raise ContentError(problems)
    return located


def _at(file: str, mark: Any, message: str) -> Problem:
    if mark is None:
        return Problem(file, 1, 1, message)
    return Problem(file, mark.line + 1, mark.column + 1, message)


def _convert(
    node: Node,
    path: Path,
    loader: _GuardedLoader,
    located: Located,
    problems: list[Problem],
    budget: list[int],
) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise ContentError([_at(located.file, node.start_mark, f"more than {MAX_NODES} values")])
    located.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if node.tag not in _STANDARD_TAGS:
        problems.append(_at(located.file, node.start_mark, f"tag {node.tag!r} is not allowed"))
        return None
    if isinstance(node, ScalarNode):
        if node.tag == "tag:yaml.org,2002:int" and _SEXAGESIMAL.match(node.value):
            return node.value
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value  # dates stay text; the schema decides how to read them
        try:
            return loader.construct_object(node, deep=False)
        except yaml.YAMLError as exc:
            problems.append(_at(located.file, node.start_mark, f"bad value: {exc}"))
            return None
    if isinstance(node, SequenceNode):
        return [
            _convert(child, (*path, i), loader, located, problems, budget)
            for i, child in enumerate(node.value)
        ]
    if isinstance(node, MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(_at(located.file, key_node.start_mark, "merge keys (<<) are not allowed"))
                continue
            if not isinstance(key_node, ScalarNode):
                problems.append(_at(located.file, key_node.start_mark, "mapping keys must be plain values"))
                continue
            key = _convert(key_node, (*path, "<key>"), loader, located, problems, budget)
            if not isinstance(key, str | int):
                key = str(key)
            if key in result:
                problems.append(_at(located.file, key_node.start_mark, f"duplicate key {key!r}"))
                continue
            located.key_positions[(*path, key)] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            result[key] = _convert(value_node, (*path, key), loader, located, problems, budget)
        located.positions.pop((*path, "<key>"), None)
        return result
    problems.append(_at(located.file, node.start_mark, "unsupported YAML node"))
    return None
