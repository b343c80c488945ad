"""The guarded YAML reader: hostile or broken input is refused with ``file:line:col``, never executed."""

from __future__ import annotations

from pathlib import Path

import pytest

from content import yamlsafe
from content.problems import ContentError, Problem
from content.yamlsafe import MAX_BYTES, read_yaml

FILE = "upload.yaml"


def refused(text: str | bytes) -> list[Problem]:
    """The problems ``read_yaml`` raises for ``text`` (fails the test if it parses)."""
    with pytest.raises(ContentError) as info:
        read_yaml(text, file=FILE)
    assert info.value.errors, "a refusal must carry at least one error"
    return info.value.errors


def position(text: str, needle: str) -> tuple[int, int]:
    """1-based (line, column) of the unique ``needle`` in ``text``."""
    assert text.count(needle) == 1, f"{needle!r} must occur exactly once"
    index = text.index(needle)
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


# ---------------------------------------------------------------------------------------------- tags


def test_python_object_tag_is_refused_and_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'title: harmless\nrun: !!python/object/apply:os.system ["touch {marker}"]\n'

    problems = refused(text)

    assert not marker.exists(), "the os.system call must never run"
    line, column = position(text, "!!python")
    assert [(p.line, p.column) for p in problems] == [(line, column)]
    assert "not allowed" in problems[0].message
    assert str(problems[0]).startswith(f"{FILE}:{line}:{column}: ")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: !!python/name:os.system\n", id="python-name"),
        pytest.param("a: !!python/object:collections.OrderedDict {}\n", id="python-object"),
        pytest.param("a: !custom 1\n", id="local-tag"),
    ],
)
def test_non_standard_tags_are_refused(text: str) -> None:
    problems = refused(text)
    assert (problems[0].line, problems[0].column) == (1, 4)
    assert "not allowed" in problems[0].message


# ------------------------------------------------------------------------------- resource exhaustion


def _billion_laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused() -> None:
    problems = refused(_billion_laughs(9))
    assert len(problems) == 1
    assert "alias" in problems[0].message
    assert problems[0].line > 1, "the refusal points at where the aliases pile up"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[" * 5000 + "]" * 5000, id="flow-sequences"),
        pytest.param("{a: " * 5000 + "1" + "}" * 5000, id="flow-mappings"),
        pytest.param("- " * 5000 + "x\n", id="block-sequences"),
    ],
)
def test_absurd_nesting_is_refused_without_recursion_error(text: str) -> None:
    # RecursionError is not a ContentError, so pytest.raises(ContentError) would let it fail the test.
    problems = refused(text)
    assert "nesting" in problems[0].message


def test_reasonable_nesting_is_accepted() -> None:
    assert read_yaml("[" * 10 + "]" * 10, file=FILE).data == [[[[[[[[[[]]]]]]]]]]


@pytest.mark.parametrize("as_bytes", [True, False], ids=["bytes", "str"])
def test_oversized_input_is_refused_before_parsing(as_bytes: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("an oversized file must not reach the YAML parser")

    monkeypatch.setattr(yamlsafe, "_GuardedLoader", no_parsing)
    # Not even valid YAML: a parser would report a syntax error instead of the size.
    text = "a: [\n" + "x" * MAX_BYTES
    problems = refused(text.encode() if as_bytes else text)
    assert len(problems) == 1
    assert (problems[0].line, problems[0].column) == (1, 1)
    assert "larger than 2 MB" in problems[0].message


def test_input_exactly_at_the_size_limit_is_parsed() -> None:
    head = "a: 1\n#"
    text = head + "x" * (MAX_BYTES - len(head) - 1) + "\n"
    assert len(text.encode()) == MAX_BYTES
    assert read_yaml(text.encode(), file=FILE).data == {"a": 1}


# ------------------------------------------------------------------------------------------ mistakes


def test_duplicate_key_names_its_line() -> None:
    text = "pack: demo\ntitle: One\nitems: []\ntitle: Two\n"
    problems = refused(text)
    assert [(p.line, p.column) for p in problems] == [(4, 1)]
    assert "duplicate key 'title'" in problems[0].message


def test_duplicate_key_in_a_nested_mapping_names_its_line() -> None:
    text = "people:\n  - email: a@example.com\n    name: A\n    email: b@example.com\n"
    problems = refused(text)
    assert [(p.line, p.column) for p in problems] == [(4, 5)]
    assert "duplicate key 'email'" in problems[0].message


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [
        pytest.param("10:30", "10:30", id="clock"),
        pytest.param("09:00", "09:00", id="leading-zero"),
        pytest.param("8:05", "8:05", id="single-digit-hour"),
        pytest.param("1:02:03", "1:02:03", id="three-parts"),
        pytest.param("1030", 1030, id="plain-int-still-int"),
        pytest.param('"10:30"', "10:30", id="quoted"),
    ],
)
def test_clock_times_stay_strings(scalar: str, expected: object) -> None:
    data = read_yaml(f"time: {scalar}\nnested: {{times: [{scalar}]}}\n", file=FILE).data
    assert data == {"time": expected, "nested": {"times": [expected]}}


def test_invalid_utf8_names_the_line() -> None:
    problems = refused(b"pack: demo\ntitle: ok\nprompt: caf\xe9 au lait\nanswer: 1\n")
    assert [p.line for p in problems] == [3]
    assert "UTF-8" in problems[0].message


def test_utf8_bom_is_accepted() -> None:
    assert read_yaml(b"\xef\xbb\xbfpack: demo\n", file=FILE).data == {"pack": "demo"}


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        pytest.param("key: value\n  bad: indent\n", 2, 6, id="mapping-in-scalar"),
        pytest.param("a: 1\nb: 2\nc: @x\n", 3, 4, id="bad-character"),
        pytest.param("a: 1\nb: [1, 2\nc: 3\n", 3, 2, id="unclosed-flow"),
    ],
)
def test_syntax_error_names_line_and_column(text: str, line: int, column: int) -> None:
    problems = refused(text)
    assert [(p.line, p.column) for p in problems] == [(line, column)]
    assert problems[0].message.startswith("invalid YAML")
    assert str(problems[0]).startswith(f"{FILE}:{line}:{column}: invalid YAML")


def test_several_documents_are_refused() -> None:
    problems = refused("a: 1\n---\nb: 2\n")
    assert problems[0].line == 2


def test_merge_key_is_refused() -> None:
    text = "base: &base {weight: 1}\npoint:\n  <<: *base\n  cues: [x]\n"
    problems = refused(text)
    line, column = position(text, "<<")
    assert [(p.line, p.column) for p in problems] == [(line, column)]
    assert "merge" in problems[0].message


def test_all_problems_in_a_file_are_reported() -> None:
    text = "a: 1\na: 2\nb: !!python/name:os.system\nc: {x: 1, x: 2}\n"
    problems = refused(text)
    assert [p.line for p in problems] == [2, 3, 4]


# ------------------------------------------------------------------------------------------ positions

NESTED = """\
# a comment
teams:
  - key: north
    schedule:
      time: "09:30"
      days: [mon, tue]
  - key: south
people: []
"""


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        pytest.param(("teams",), "- key: north", id="list"),
        pytest.param(("teams", 0), "key: north", id="list-entry"),
        pytest.param(("teams", 0, "schedule", "time"), '"09:30"', id="nested-value"),
        pytest.param(("teams", 0, "schedule", "days", 1), "tue", id="nested-list-element"),
        pytest.param(("teams", 1, "key"), "south", id="second-entry"),
        pytest.param(("people",), "[]", id="empty-list"),
        pytest.param(("teams", 0, "schedule", "per_day"), "time:", id="missing-falls-back-to-parent"),
    ],
)
def test_where_points_at_the_value(path: tuple[str | int, ...], needle: str) -> None:
    located = read_yaml(NESTED, file=FILE)
    assert located.where(path) == position(NESTED, needle)


def test_where_key_points_at_the_key() -> None:
    located = read_yaml(NESTED, file=FILE)
    assert located.where_key(("teams", 0, "schedule")) == position(NESTED, "schedule:")
    assert located.problem(("teams", 1, "key"), "boom") == Problem(FILE, 7, 10, "boom")


def test_empty_document_is_none() -> None:
    located = read_yaml("# nothing here\n", file=FILE)
    assert located.data is None
