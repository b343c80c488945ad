"""Content packs: the schema, its cross-checks, and the conversion to what storage upserts."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from content.files import read_limited
from content.grading import find_cue, strip_injections
from content.problems import ContentError, Problem
from content.validation import known_fields, problems_from_validation
from content.yamlsafe import Located, Path, read_yaml
from storage.packs import (
    ActivityTypeImport,
    BehaviorImport,
    ItemImport,
    OutcomeImport,
    PackImport,
    TopicImport,
)

Key = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

# A phone shows about this many characters of an option on one or two lines.
OPTION_PHONE_LIMIT = 100
_BLANKET_OPTIONS = ("all of the above", "none of the above")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, frozen=True)


class ActivityTypeSpec(_Spec):
    key: Key
    name: Text
    unit: Text | None = None


class OutcomeSpec(_Spec):
    key: Key
    name: Text
    numerator: Key | None = None
    denominator: Key | None = None
    mean_of: Key | None = None
    target: float
    higher_is_better: bool = True

    @model_validator(mode="after")
    def _one_formula(self) -> OutcomeSpec:
        if (self.numerator is None) == (self.mean_of is None):
            raise ValueError("give either numerator (with an optional denominator) or mean_of")
        if self.denominator is not None and self.numerator is None:
            raise ValueError("denominator needs a numerator")
        return self


class BehaviorSpec(_Spec):
    key: Key
    name: Text
    drives: list[Key] = Field(default_factory=list)


class TopicSpec(_Spec):
    key: Key
    name: Text
    trains: list[Key] = Field(default_factory=list)
    lesson: Text


class McqSpec(_Spec):
    key: Key
    topic: Key
    type: Literal["mcq"]
    prompt: Text
    options: list[Text]
    answer: int
    explanation: Text
    target_seconds: int = Field(gt=0, le=3600)


class RubricExamples(_Spec):
    hit: list[Text] = Field(default_factory=list)
    miss: list[Text] = Field(default_factory=list)


class RubricPointSpec(_Spec):
    point: Text
    weight: float
    cues: list[Text]
    examples: RubricExamples = Field(default_factory=RubricExamples)


class ForbiddenSpec(_Spec):
    phrase: Text
    reason: Text


class RoleplaySpec(_Spec):
    key: Key
    topic: Key
    type: Literal["roleplay"]
    scenario: Text
    rubric: list[RubricPointSpec]
    forbidden: list[ForbiddenSpec] = Field(default_factory=list)
    model_answer: Text
    target_seconds: int = Field(gt=0, le=3600)


ItemSpec = Annotated[McqSpec | RoleplaySpec, Field(discriminator="type")]


class PackSpec(_Spec):
    pack: Key
    version: int = Field(ge=0)
    title: Text
    description: Text | None = None
    activity_types: list[ActivityTypeSpec] = Field(default_factory=list)
    outcomes: list[OutcomeSpec] = Field(default_factory=list)
    behaviors: list[BehaviorSpec] = Field(default_factory=list)
    topics: list[TopicSpec]
    items: list[ItemSpec]


_VOCABULARY = known_fields(
    (
        PackSpec,
        ActivityTypeSpec,
        OutcomeSpec,
        BehaviorSpec,
        TopicSpec,
        McqSpec,
        RoleplaySpec,
        RubricPointSpec,
        RubricExamples,
        ForbiddenSpec,
    )
)


@dataclass(frozen=True)
class ValidatedPack:
    spec: PackSpec
    file: str
    warnings: tuple[Problem, ...]


def parse_pack(text: str | bytes, *, file: str) -> ValidatedPack:
    """Validate a pack; raise :class:`ContentError` with every problem (and warning) if it is not valid."""
    located = read_yaml(text, file=file)
    if not isinstance(located.data, dict):
        raise ContentError(
            [located.problem((), "a pack is a mapping with keys pack, title, topics, items, ...")]
        )
    problems = _cross_check(located)
    spec: PackSpec | None = None
    try:
        spec = PackSpec.model_validate(located.data)
    except ValidationError as exc:
        problems.extend(problems_from_validation(exc, located, vocabulary=_VOCABULARY))
    if spec is None or any(not p.warning for p in problems):
        raise ContentError(_dedupe(problems))
    return ValidatedPack(spec=spec, file=file, warnings=tuple(sorted(problems)))


def read_pack_file(path: FsPath) -> ValidatedPack:
    return parse_pack(read_limited(path), file=str(path))


def _dedupe(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _entries(data: dict[str, Any], section: str) -> list[tuple[int, dict[str, Any]]]:
    value = data.get(section)
    if not isinstance(value, list):
        return []
    return [(i, entry) for i, entry in enumerate(value) if isinstance(entry, dict)]


def _cross_check(located: Located) -> list[Problem]:
    """References, duplicates and sense checks that a per-field schema cannot express."""
    data: dict[str, Any] = located.data
    problems: list[Problem] = []
    keys: dict[str, set[str]] = {}
    for section in ("activity_types", "outcomes", "behaviors", "topics", "items"):
        seen: set[str] = set()
        for i, entry in _entries(data, section):
            key = entry.get("key")
            if not isinstance(key, str):
                continue
            if key in seen:
                problems.append(located.problem((section, i, "key"), f"duplicate {section[:-1]} key '{key}'"))
            seen.add(key)
        keys[section] = seen

    def check_ref(path: tuple[str | int, ...], value: Any, section: str, what: str) -> None:
        if isinstance(value, str) and value not in keys[section]:
            problems.append(located.problem(path, f"unknown {what} '{value}'"))

    for i, outcome in _entries(data, "outcomes"):
        for field in ("numerator", "denominator", "mean_of"):
            check_ref(("outcomes", i, field), outcome.get(field), "activity_types", "activity type")
    for i, behavior in _entries(data, "behaviors"):
        for j, ref in enumerate(_list(behavior.get("drives"))):
            check_ref(("behaviors", i, "drives", j), ref, "outcomes", "outcome")
    for i, topic in _entries(data, "topics"):
        for j, ref in enumerate(_list(topic.get("trains"))):
            check_ref(("topics", i, "trains", j), ref, "behaviors", "behavior")

    used_topics: Counter[str] = Counter()
    for i, item in _entries(data, "items"):
        check_ref(("items", i, "topic"), item.get("topic"), "topics", "topic")
        if isinstance(item.get("topic"), str):
            used_topics[item["topic"]] += 1
        if item.get("type") == "mcq":
            problems.extend(_check_mcq(located, i, item))
        elif item.get("type") == "roleplay":
            problems.extend(_check_roleplay(located, i, item))
    for i, topic in _entries(data, "topics"):
        if isinstance(topic.get("key"), str) and not used_topics[topic["key"]]:
            problems.append(located.problem(("topics", i, "key"), "topic has no items", warning=True))
    return problems


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _check_mcq(located: Located, i: int, item: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    options = item.get("options")
    if not isinstance(options, list):
        return problems
    if len(options) < 2:
        problems.append(located.problem(("items", i, "options"), "an MCQ needs at least two options"))
    answer = item.get("answer")
    if isinstance(answer, int) and not isinstance(answer, bool) and not 0 <= answer < len(options):
        problems.append(
            located.problem(
                ("items", i, "answer"),
                f"answer {answer} is out of range: options are numbered 0 to {len(options) - 1}",
            )
        )
    seen: set[str] = set()
    for j, option in enumerate(options):
        if not isinstance(option, str):
            continue
        path = ("items", i, "options", j)
        normalised = " ".join(option.lower().split())
        if normalised in seen:
            problems.append(located.problem(path, "duplicate option"))
        seen.add(normalised)
        if len(option) > OPTION_PHONE_LIMIT:
            problems.append(
                located.problem(
                    path,
                    f"option is {len(option)} characters; "
                    f"over {OPTION_PHONE_LIMIT} is hard to read on a phone",
                    warning=True,
                )
            )
        if any(blanket in normalised for blanket in _BLANKET_OPTIONS):
            problems.append(located.problem(path, "avoid 'all/none of the above' options", warning=True))
    return problems


def _check_roleplay(located: Located, i: int, item: dict[str, Any]) -> list[Problem]:
    problems = []
    rubric = item.get("rubric")
    if isinstance(rubric, list) and not rubric:
        problems.append(
            located.problem(("items", i, "rubric"), "a role-play needs at least one rubric point")
        )
    for j, point in enumerate(_list(rubric)):
        if not isinstance(point, dict):
            continue
        weight = point.get("weight")
        if isinstance(weight, int | float) and not isinstance(weight, bool) and weight <= 0:
            problems.append(
                located.problem(("items", i, "rubric", j, "weight"), "weight must be greater than 0")
            )
        cues = point.get("cues")
        if isinstance(cues, list) and not cues:
            problems.append(located.problem(("items", i, "rubric", j, "cues"), "give at least one cue"))
        if isinstance(cues, list) and cues:
            problems.extend(
                _check_examples(located, ("items", i, "rubric", j), point, [str(c) for c in cues])
            )
    return problems


def _check_examples(located: Located, path: Path, point: dict[str, Any], cues: list[str]) -> list[Problem]:
    """Each rubric example must grade as it claims with the offline grader, or the rubric misleads."""
    examples = point.get("examples")
    if not isinstance(examples, dict):
        return []
    problems = []
    for kind, should_hit in (("hit", True), ("miss", False)):
        for k, example in enumerate(_list(examples.get(kind))):
            if not isinstance(example, str):
                continue
            hit = find_cue(strip_injections(example)[0], cues) is not None
            if hit != should_hit:
                verdict = "earns no point: no cue is stated" if should_hit else "earns the point"
                problems.append(located.problem((*path, "examples", kind, k), f"{kind} example {verdict}"))
    return problems


def canonical_hash(value: Any) -> str:
    """A content hash that ignores YAML formatting, key order and comments."""
    encoded = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def to_import(spec: PackSpec) -> PackImport:
    """What storage needs to upsert this pack; item bodies are stored as the reps will see them."""
    items = []
    for item in spec.items:
        body = item.model_dump(mode="json")
        items.append(
            ItemImport(
                key=item.key,
                topic_key=item.topic,
                kind=item.type,
                body=body,
                content_hash=canonical_hash(body),
            )
        )
    return PackImport(
        key=spec.pack,
        version=spec.version,
        title=spec.title,
        description=spec.description,
        content_hash=canonical_hash(spec.model_dump(mode="json")),
        activity_types=tuple(
            ActivityTypeImport(key=a.key, name=a.name, unit=a.unit) for a in spec.activity_types
        ),
        outcomes=tuple(
            OutcomeImport(
                key=o.key,
                name=o.name,
                target=o.target,
                higher_is_better=o.higher_is_better,
                numerator=o.numerator,
                denominator=o.denominator,
                mean_of=o.mean_of,
            )
            for o in spec.outcomes
        ),
        behaviors=tuple(
            BehaviorImport(key=b.key, name=b.name, drives=tuple(b.drives)) for b in spec.behaviors
        ),
        topics=tuple(
            TopicImport(key=t.key, name=t.name, trains=tuple(t.trains), lesson=t.lesson) for t in spec.topics
        ),
        items=tuple(items),
    )
