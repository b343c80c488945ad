"""Content packs: the bundled packs are sound, broken packs are reported precisely, hashes track changes."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from content.loading import validate_pack_files
from content.packs import McqSpec, RoleplaySpec, ValidatedPack, parse_pack, read_pack_file, to_import
from content.problems import ContentError, Problem
from tests.conftest import DATA, REPO

PACK_DIR = REPO / "content" / "packs"
BUNDLED = sorted(PACK_DIR.glob("*.yaml"))
PHARMA = PACK_DIR / "pharma-cardio.yaml"
MINI = DATA / "mini-pack.yaml"
BLANKET = ("all of the above", "none of the above")


def mentions(text: str, cue: str) -> bool:
    """``cue`` occurs in ``text`` as whole words, ignoring case (what the rubric grader will look for)."""
    return re.search(rf"(?<!\w){re.escape(cue.lower())}(?!\w)", text.lower()) is not None


def mcqs(pack: ValidatedPack) -> list[McqSpec]:
    return [item for item in pack.spec.items if isinstance(item, McqSpec)]


def roleplays(pack: ValidatedPack) -> list[RoleplaySpec]:
    return [item for item in pack.spec.items if isinstance(item, RoleplaySpec)]


def line_and_column(text: str, marker: str, token: str) -> tuple[int, int]:
    """Where ``token`` starts on the one line of ``text`` that contains ``marker``."""
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if marker in line]
    assert len(lines) == 1, f"marker {marker!r} must be on exactly one line"
    number, line = lines[0]
    return number, line.index(token) + 1


# ------------------------------------------------------------------------------------- bundled packs


def test_both_bundled_packs_are_found() -> None:
    assert {path.stem for path in BUNDLED} == {"pharma-cardio", "b2b-software"}


@pytest.fixture(scope="module")
def bundled() -> tuple[list[ValidatedPack], list[Problem]]:
    return validate_pack_files(BUNDLED)


def test_bundled_packs_have_no_errors(bundled: tuple[list[ValidatedPack], list[Problem]]) -> None:
    valid, problems = bundled
    assert [str(p) for p in problems if not p.warning] == []
    assert sorted(pack.spec.pack for pack in valid) == ["b2b-software", "pharma-cardio"]


def test_bundled_packs_have_no_warnings(bundled: tuple[list[ValidatedPack], list[Problem]]) -> None:
    assert [str(p) for p in bundled[1]] == []


@pytest.fixture(scope="module", params=BUNDLED, ids=[path.stem for path in BUNDLED])
def pack(request: pytest.FixtureRequest) -> ValidatedPack:
    path: Path = request.param
    return read_pack_file(path)


def test_enough_items(pack: ValidatedPack) -> None:
    assert len(mcqs(pack)) >= 30
    assert len(roleplays(pack)) >= 8


def test_every_topic_has_a_lesson_and_items(pack: ValidatedPack) -> None:
    used = Counter(item.topic for item in pack.spec.items)
    for topic in pack.spec.topics:
        assert topic.lesson.strip(), f"topic {topic.key} has an empty lesson"
        assert used[topic.key] > 0, f"topic {topic.key} has no items"


def test_every_rubric_point_has_hit_and_miss_examples(pack: ValidatedPack) -> None:
    lacking = [
        f"{item.key}: {point.point}"
        for item in roleplays(pack)
        for point in item.rubric
        if not point.examples.hit or not point.examples.miss
    ]
    assert lacking == []


def test_hit_examples_contain_a_cue(pack: ValidatedPack) -> None:
    silent = [
        f"{item.key}: {example!r}"
        for item in roleplays(pack)
        for point in item.rubric
        for example in point.examples.hit
        if not any(mentions(example, cue) for cue in point.cues)
    ]
    assert silent == []


def test_miss_examples_contain_no_cue(pack: ValidatedPack) -> None:
    cued = [
        f"{item.key}: {example!r} contains {cue!r}"
        for item in roleplays(pack)
        for point in item.rubric
        for example in point.examples.miss
        for cue in point.cues
        if mentions(example, cue)
    ]
    assert cued == []


def test_no_blanket_options(pack: ValidatedPack) -> None:
    blanket = [
        f"{item.key}: {option!r}"
        for item in mcqs(pack)
        for option in item.options
        if any(phrase in " ".join(option.lower().split()) for phrase in BLANKET)
    ]
    assert blanket == []


def test_every_mcq_is_explained_and_answerable(pack: ValidatedPack) -> None:
    for item in mcqs(pack):
        assert item.explanation.strip(), f"{item.key} has no explanation"
        assert 0 <= item.answer < len(item.options), f"{item.key} answer is out of range"


def test_answer_positions_vary(pack: ValidatedPack) -> None:
    answers = Counter(item.answer for item in mcqs(pack))
    assert len(answers) > 1, f"every answer is option {next(iter(answers))}"


def test_every_rubric_point_has_cues_and_positive_weight(pack: ValidatedPack) -> None:
    for item in roleplays(pack):
        assert item.rubric, f"{item.key} has no rubric"
        for point in item.rubric:
            assert point.cues, f"{item.key}: {point.point} has no cues"
            assert point.weight > 0, f"{item.key}: {point.point} has weight {point.weight}"


# -------------------------------------------------------------------------------------- broken packs

PHARMA_TEXT = PHARMA.read_text(encoding="utf-8")


def _rubric_block(text: str, item_key: str) -> str:
    start = text.index("    rubric:\n", text.index(f"  - key: {item_key}\n"))
    return text[start : text.index("    forbidden:\n", start)]


@dataclass(frozen=True)
class Breakage:
    """Replace ``old`` (the first one after ``anchor``) with ``new``; the error should point at ``token``.

    ``new`` ends with a comment holding a unique marker, so the broken line can be found in the broken text.
    """

    id: str
    old: str
    new: str
    token: str
    message: str
    anchor: str = ""

    @property
    def marker(self) -> str:
        return f"# broken: {self.id}"

    def apply(self, text: str) -> str:
        start = text.index(self.anchor) if self.anchor else 0
        at = text.index(self.old, start)
        return text[:at] + self.new.replace("#", self.marker, 1) + text[at + len(self.old) :]


BREAKAGES = [
    Breakage(
        id="typo-key",
        anchor="  - key: he-03\n",
        old="    options:\n",
        new="    optoins:  #\n",
        token="optoins",
        message="unknown key 'optoins' (did you mean 'options'?)",
    ),
    Breakage(
        id="unknown-topic",
        anchor="  - key: he-01\n",
        old="    topic: hcp-engagement\n",
        new="    topic: hcp-engagment  #\n",
        token="hcp-engagment",
        message="unknown topic 'hcp-engagment'",
    ),
    Breakage(
        id="answer-out-of-range",
        anchor="  - key: he-04\n",
        old="    answer: 0\n",
        new="    answer: 4  #\n",
        token="4",
        message="answer 4 is out of range",
    ),
    Breakage(
        id="zero-weight",
        anchor="  - key: he-rp-01\n",
        old="        weight: 1\n",
        new="        weight: 0  #\n",
        token="0",
        message="weight must be greater than 0",
    ),
    Breakage(
        id="empty-rubric",
        anchor="  - key: co-rp-01\n",
        old=_rubric_block(PHARMA_TEXT, "co-rp-01"),
        new="    rubric: []  #\n",
        token="[]",
        message="needs at least one rubric point",
    ),
    Breakage(
        id="duplicate-item-key",
        old="  - key: he-02\n",
        new="  - key: he-01  #\n",
        token="he-01",
        message="duplicate item key 'he-01'",
    ),
    Breakage(
        id="outcome-unknown-activity-type",
        old="    numerator: engaged_visit\n",
        new="    numerator: engaged_vist  #\n",
        token="engaged_vist",
        message="unknown activity type 'engaged_vist'",
    ),
    Breakage(
        id="wrong-item-type",
        anchor="  - key: he-05\n",
        old="    type: mcq\n",
        new="    type: essay  #\n",
        token="essay",
        message="type must be one of",
    ),
]


def _write(tmp_path: Path, text: str, name: str = "pharma-cardio.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _expect(problems: list[Problem], path: Path, text: str, breakage: Breakage) -> None:
    matching = [p for p in problems if breakage.message in p.message and not p.warning]
    assert len(matching) == 1, f"{breakage.id}: expected one problem saying {breakage.message!r}, got " + str(
        [str(p) for p in problems]
    )
    problem = matching[0]
    line, column = line_and_column(text, breakage.marker, breakage.token)
    assert (problem.file, problem.line, problem.column) == (str(path), line, column), str(problem)
    assert str(problem) == f"{path}:{line}:{column}: {problem.message}"


@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b.id for b in BREAKAGES])
def test_broken_pack_points_at_the_problem(tmp_path: Path, breakage: Breakage) -> None:
    text = breakage.apply(PHARMA_TEXT)
    assert text != PHARMA_TEXT
    path = _write(tmp_path, text)

    with pytest.raises(ContentError) as info:
        read_pack_file(path)

    _expect(info.value.problems, path, text, breakage)


def test_every_problem_in_a_broken_pack_is_reported(tmp_path: Path) -> None:
    text = PHARMA_TEXT
    for breakage in BREAKAGES:
        text = breakage.apply(text)
    broken = _write(tmp_path, text)
    good = PACK_DIR / "b2b-software.yaml"

    valid, problems = validate_pack_files([broken, good])

    assert [pack.spec.pack for pack in valid] == ["b2b-software"]
    assert {p.file for p in problems} == {str(broken)}
    for breakage in BREAKAGES:
        _expect(problems, broken, text, breakage)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("- just\n- a list\n", "a pack is a mapping", id="not-a-mapping"),
        pytest.param("", "a pack is a mapping", id="empty"),
        pytest.param(
            "pack: Not A Key\nversion: 1\ntitle: t\ntopics: []\nitems: []\n",
            "pack: String should match pattern",
            id="bad-key",
        ),
        pytest.param(
            "pack: p\nversion: 1\ntopics: []\nitems: []\n", "missing required key 'title'", id="no-title"
        ),
    ],
)
def test_malformed_pack_is_refused(text: str, message: str) -> None:
    with pytest.raises(ContentError) as info:
        parse_pack(text, file="p.yaml")
    assert any(message in p.message for p in info.value.errors), [str(p) for p in info.value.problems]


def test_unknown_key_in_a_rubric_point_suggests_the_right_key() -> None:
    text = MINI.read_text(encoding="utf-8").replace("        cues:", "        cuse:")
    with pytest.raises(ContentError) as info:
        parse_pack(text, file="mini.yaml")
    messages = [p.message for p in info.value.errors]
    assert any("unknown key 'cuse'" in m and "did you mean 'cues'?" in m for m in messages), messages


# ------------------------------------------------------------------------------------------ warnings

LONG_OPTION = "Tell her about " + "the outcome data and the trial design and the safety profile, " * 2
WARNINGS = [
    Breakage(
        id="long-option",
        old='      - "Do you have a few minutes so I can walk you through our new detail aid?"\n',
        new=f'      - "{LONG_OPTION}"  #\n',
        token='"',
        message=f"option is {len(LONG_OPTION)} characters",
    ),
    Breakage(
        id="topic-without-items",
        old="topics:\n",
        new="topics:\n  - key: unused-topic  #\n    name: Unused\n    lesson: Nothing trains this yet.\n",
        token="unused-topic",
        message="topic has no items",
    ),
    Breakage(
        id="blanket-option",
        old='      - "Cardivex was approved last month and I\'d love to tell you what it does."\n',
        new='      - "All of the above"  #\n',
        token='"',
        message="all/none of the above",
    ),
]


@pytest.mark.parametrize("warning", WARNINGS, ids=[w.id for w in WARNINGS])
def test_warnings_do_not_make_a_pack_invalid(tmp_path: Path, warning: Breakage) -> None:
    assert len(LONG_OPTION) > 100
    text = warning.apply(PHARMA_TEXT)
    path = _write(tmp_path, text)

    pack = read_pack_file(path)  # does not raise
    valid, problems = validate_pack_files([path])

    assert [v.spec.pack for v in valid] == ["pharma-cardio"]
    assert all(p.warning for p in problems)
    assert problems == list(pack.warnings)
    line, column = line_and_column(text, warning.marker, warning.token)
    matching = [p for p in pack.warnings if warning.message in p.message]
    assert [(p.line, p.column) for p in matching] == [(line, column)]
    assert str(matching[0]).startswith(f"{path}:{line}:{column}: warning: ")


def test_warnings_are_still_reported_alongside_errors(tmp_path: Path) -> None:
    text = BREAKAGES[2].apply(WARNINGS[1].apply(PHARMA_TEXT))
    with pytest.raises(ContentError) as info:
        read_pack_file(_write(tmp_path, text))
    assert [p.message for p in info.value.problems if p.warning] == ["topic has no items"]
    assert len(info.value.errors) == 1


# ------------------------------------------------------------------------------------ content hashes


def _reverse_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reverse_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_keys(entry) for entry in value]
    return value


def _mini_data() -> dict[str, Any]:
    data = yaml.safe_load(MINI.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _hashes(text: str) -> tuple[str, dict[str, str]]:
    imported = to_import(parse_pack(text, file="mini.yaml").spec)
    return imported.content_hash, {item.key: item.content_hash for item in imported.items}


@pytest.mark.parametrize(
    "rewrite",
    [
        pytest.param(
            lambda data: "# reordered\n" + yaml.safe_dump(_reverse_keys(data), sort_keys=False),
            id="key-order",
        ),
        pytest.param(
            lambda data: yaml.safe_dump(data, default_flow_style=True, sort_keys=True, width=10_000),
            id="flow-style",
        ),
        pytest.param(
            lambda data: (
                "\n".join(
                    f"{line}   # comment {n}" if line.strip() and not line.startswith(" ") else line
                    for n, line in enumerate(MINI.read_text(encoding="utf-8").splitlines())
                )
                + "\n\n# trailing comment\n"
            ),
            id="comments",
        ),
    ],
)
def test_content_hash_ignores_formatting(rewrite: Any) -> None:
    original = MINI.read_text(encoding="utf-8")
    rewritten = rewrite(_mini_data())
    assert rewritten != original
    assert _hashes(rewritten) == _hashes(original)


def test_changing_a_prompt_changes_that_item_and_the_pack_only() -> None:
    original = MINI.read_text(encoding="utf-8")
    changed = original.replace("What do you do first?", "What do you say first?")
    assert changed != original

    pack_before, items_before = _hashes(original)
    pack_after, items_after = _hashes(changed)

    assert pack_after != pack_before
    assert {key for key in items_before if items_before[key] != items_after[key]} == {"q1"}


def test_changing_a_lesson_changes_the_pack_but_no_item() -> None:
    original = MINI.read_text(encoding="utf-8")
    changed = original.replace("Acknowledge first", "Always acknowledge first")
    assert changed != original

    pack_before, items_before = _hashes(original)
    pack_after, items_after = _hashes(changed)

    assert pack_after != pack_before
    assert items_after == items_before


def test_item_hash_does_not_depend_on_its_position() -> None:
    data = _mini_data()
    data["items"].reverse()
    _, items_before = _hashes(MINI.read_text(encoding="utf-8"))
    _, items_after = _hashes(yaml.safe_dump(data, sort_keys=False))
    assert items_after == items_before


def test_item_hashes_differ_between_items() -> None:
    imported = to_import(read_pack_file(PHARMA).spec)
    hashes = [item.content_hash for item in imported.items]
    assert len(set(hashes)) == len(hashes)


def test_to_import_carries_the_pack() -> None:
    imported = to_import(read_pack_file(MINI).spec)
    assert imported.key == "mini"
    assert [a.key for a in imported.activity_types] == ["visit", "engaged_visit", "first_rx"]
    assert [(i.key, i.kind, i.topic_key) for i in imported.items] == [
        ("q1", "mcq", "objections"),
        ("rp1", "roleplay", "objections"),
    ]
    assert imported.items[0].body["answer"] == 1


# ------------------------------------------------------------------------------------- several files


def test_two_files_defining_the_same_pack_are_reported(tmp_path: Path) -> None:
    first = _write(tmp_path, MINI.read_text(encoding="utf-8"), "a.yaml")
    second = _write(
        tmp_path, MINI.read_text(encoding="utf-8").replace("title: Mini", "title: Other"), "b.yaml"
    )

    valid, problems = validate_pack_files([first, second])

    assert [pack.file for pack in valid] == [str(first)]
    assert len(problems) == 1
    assert problems[0].file == str(second)
    assert not problems[0].warning
    assert "'mini'" in problems[0].message
    assert str(first) in problems[0].message


def test_a_bad_file_does_not_hide_the_others(tmp_path: Path) -> None:
    bad = _write(tmp_path, "pack: [\n", "bad.yaml")
    missing = tmp_path / "missing.yaml"

    valid, problems = validate_pack_files([bad, MINI, missing])

    assert [pack.spec.pack for pack in valid] == ["mini"]
    assert {p.file for p in problems} == {str(bad), str(missing)}
