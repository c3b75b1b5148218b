"""extract_json: JSON in plain, fenced, prose-wrapped and broken LLM answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stages.errors import OutputInvalid
from stages.providers.jsonout import extract_json

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
containers = json_values.filter(lambda v: isinstance(v, (list, dict)))
# Prose that cannot itself contain JSON brackets or fences.
prose = st.text(alphabet=st.characters(exclude_characters="{}[]`", exclude_categories=["Cs"]), max_size=60)


def _dump(value: Any, indent: int | None) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=False)


@settings(max_examples=100, deadline=None, database=None)
@given(value=json_values, indent=st.sampled_from([None, 2]))
def test_plain_json_round_trips(value: Any, indent: int | None) -> None:
    """Any JSON value given as the whole answer comes back unchanged."""
    assert extract_json(_dump(value, indent)) == value


@settings(max_examples=100, deadline=None, database=None)
@given(value=json_values, before=prose, after=prose, tag=st.sampled_from(["json", "JSON", ""]))
def test_fenced_json_round_trips(value: Any, before: str, after: str, tag: str) -> None:
    """Any JSON value in a ``` fence, with prose around the fence, comes back unchanged."""
    text = _dump(value, 2)
    if "```" in text:
        return  # a fence inside a string value cannot be told apart from the closing fence
    assert extract_json(f"{before}\n```{tag}\n{text}\n```\n{after}") == value


@settings(max_examples=100, deadline=None, database=None)
@given(value=containers, before=prose, after=prose)
def test_prose_wrapped_object_round_trips(value: Any, before: str, after: str) -> None:
    """An object or array with prose before and after it comes back unchanged."""
    assert extract_json(f"{before} {_dump(value, None)} {after}") == value


@settings(max_examples=300, deadline=None, database=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text_raises_only_output_invalid(text: str) -> None:
    """Arbitrary text either yields a value or raises OutputInvalid carrying the raw text, nothing else."""
    try:
        extract_json(text)
    except OutputInvalid as exc:
        assert exc.problems and exc.raw == text


def test_longest_candidate_wins_and_think_blocks_are_ignored() -> None:
    """A small bracketed aside loses to the real answer, and a <think> block is skipped."""
    text = '<think>maybe {"draft": 1}</think>See [1]. Answer: {"epics": [{"title": "Search"}]} Thanks!'
    assert extract_json(text) == {"epics": [{"title": "Search"}]}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("I cannot help with that.", "prose only"),
        ('{"epics": [{"title": "Sea', "incomplete"),
        ("{'epics': [oops]}", "not valid JSON"),
    ],
)
def test_unusable_answers_name_the_problem(text: str, problem: str) -> None:
    """Empty, prose-only, cut-off and malformed answers raise OutputInvalid saying which it is."""
    with pytest.raises(OutputInvalid) as caught:
        extract_json(text)
    assert problem in caught.value.problems[0]
