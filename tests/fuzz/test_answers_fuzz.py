"""Fuzzing the LLM answer parser: any completion -> valid item bodies within the limit, or
OutputInvalid listing the problems, or OutputTruncated for a cut-off answer; never another exception."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from stages.answers import parse_answer
from stages.definitions import STAGES, wrapper_schema
from stages.errors import OutputInvalid, OutputTruncated
from stages.models import TITLE_MAX
from stages.providers.base import Completion
from stages.vision import from_text
from tests.fakes.schema_faker import Faker
from tests.fuzz.strategies import FUZZ, values

VISION = from_text(
    "A clinic scheduling service. Patients book appointments online. Doctors publish their availability. "
    "Reminders go out by SMS."
)
KNOWN = {s.id for s in VISION.sentences}
MUTATIONS = [
    "none",
    "drop_key",
    "wrong_type",
    "cut",
    "fence",
    "prose",
    "bare_list",
    "same_titles",
    "long_title",
]


def _valid(stage: str, max_items: int, seed: int) -> dict[str, Any]:
    text = "\n".join(f"[{s.id}] {s.text}" for s in VISION.sentences)
    value: dict[str, Any] = Faker.for_text(wrapper_schema(STAGES[stage], max_items), text, seed).instance()
    return value


def _mutate(answer: dict[str, Any], stage: str, how: str, junk: Any) -> str:
    items: list[dict[str, Any]] = answer[stage]
    if how == "drop_key" and items:
        items[0].pop(next(iter(items[0])), None)
    elif how == "wrong_type" and items:
        items[0][next(iter(items[0]))] = junk
    elif how == "same_titles":
        for item in items:
            item["title"] = "Same title"
    elif how == "long_title" and items:
        items[0]["title"] = "word " * 200
    text = json.dumps(items if how == "bare_list" else answer)
    if how == "cut":
        return text[: len(text) // 2]
    if how == "fence":
        return f"```json\n{text}\n```"
    if how == "prose":
        return f"Sure! Here it is:\n{text}\nAnything else?"
    return text


answers = st.builds(
    lambda stage, max_items, seed, how, junk: (
        stage,
        max_items,
        _mutate(_valid(stage, max_items, seed), stage, how, junk),
    ),
    st.sampled_from(sorted(STAGES)),
    st.integers(1, 6),
    st.integers(0, 2**32),
    st.sampled_from(MUTATIONS),
    values,
)
noise = st.tuples(
    st.sampled_from(sorted(STAGES)),
    st.integers(1, 6),
    st.one_of(st.text(max_size=300), values.map(json.dumps), st.text(alphabet='{}[]",:0 a', max_size=200)),
)


@FUZZ
@given(
    case=st.one_of(answers, noise),
    finish=st.sampled_from(["stop", "stop", "length", "content_filter"]),
    siblings=st.lists(
        st.sampled_from(["Same title", "Book online", "SAME TITLE"]), max_size=2, unique_by=str.casefold
    ),
)
def test_any_completion_gives_valid_items_or_a_classified_error(
    case: tuple[str, int, str], finish: str, siblings: list[str]
) -> None:
    """Whatever the model returns, the parser yields 1..max_items valid, uniquely titled bodies citing known
    sentences, or raises OutputInvalid (with problems) / OutputTruncated (for finish_reason=length)."""
    stage, max_items, content = case
    completion = Completion(content=content, finish_reason=finish)
    try:
        bodies = parse_answer(STAGES[stage], completion, VISION, max_items, siblings)
    except OutputTruncated:
        assert finish == "length"
        return
    except OutputInvalid as exc:
        assert exc.problems and all(p.strip() for p in exc.problems)
        return
    assert finish != "length", "a cut-off answer is never accepted"
    assert 1 <= len(bodies) <= max_items
    titles = [b["title"].casefold() for b in bodies] + [s.casefold() for s in siblings]
    assert len(set(titles)) == len(titles), "titles are unique among siblings, case-insensitively"
    assert all(len(b["title"]) <= TITLE_MAX for b in bodies)
    assert all(set(b["sources"]) <= KNOWN for b in bodies)


@FUZZ
@given(
    stage=st.sampled_from(sorted(STAGES)),
    max_items=st.integers(1, 6),
    seed=st.integers(0, 2**32),
    how=st.sampled_from(["none", "fence", "prose", "bare_list"]),
)
def test_schema_valid_answers_in_any_wrapping_are_accepted(
    stage: str, max_items: int, seed: int, how: str
) -> None:
    """A schema-valid answer is accepted whether bare, fenced, wrapped in prose or given as a bare array."""
    content = _mutate(_valid(stage, max_items, seed), stage, how, None)
    bodies = parse_answer(STAGES[stage], Completion(content=content), VISION, max_items, [])
    assert 1 <= len(bodies) <= max_items
