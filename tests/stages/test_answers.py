"""Accepting an LLM answer: JSON found in fences or prose, limits enforced exactly, titles cut on a word
boundary and unique among siblings, bad citations and numbers repaired, truncation refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stages.answers import accept_answer, cut_title, parse_answer, unique_title
from stages.definitions import STAGES
from stages.errors import OutputInvalid, OutputTruncated
from stages.providers.base import Completion
from stages.vision import from_mapping

VISION = from_mapping({"vision": "Owners list tools. Borrowers book them.", "key_features": ["Deposits"]})


def epic(title: str, sources: list[str] | None = None) -> dict[str, Any]:
    return {
        "title": title,
        "description": "An outcome.",
        "sources": sources or ["S1"],
        "priority": 1,
        "business_value": 40,
    }


def answer(items: list[dict[str, Any]], wrap: str = "{}", finish: str = "stop") -> Completion:
    return Completion(content=wrap.replace("{}", json.dumps({"epics": items})), finish_reason=finish)


def parse(
    completion: Completion, max_items: int = 5, siblings: list[str] | None = None
) -> list[dict[str, Any]]:
    return parse_answer(STAGES["epics"], completion, VISION, max_items, siblings or [])


def test_cut_title_on_a_word_boundary() -> None:
    """A long title is cut to at most 255 characters at the last space, never mid-word."""
    title = " ".join(["word"] * 80)  # 399 characters
    cut = cut_title(title)
    assert len(cut) <= 255 and cut.endswith("word") and not cut.endswith(" ")
    assert title.startswith(cut)
    assert cut_title("x" * 300) == "x" * 255  # one endless word: a hard cut is the only option
    assert cut_title("  spaced \n  out ") == "spaced out"


def test_long_titles_in_answers_are_cut_not_rejected() -> None:
    """An answer with a 300-character title is accepted with the title cut to ≤255 on a word boundary."""
    (body,) = parse(answer([epic("Bookings " * 40)]))
    assert len(body["title"]) <= 255 and body["title"].endswith("Bookings")


def test_sibling_titles_unique_case_insensitively() -> None:
    """Titles repeating a sibling (in any case), within the answer or already taken, are numbered."""
    bodies = parse(answer([epic("Bookings"), epic("BOOKINGS"), epic("Listings")]), siblings=["listings"])
    assert [b["title"] for b in bodies] == ["Bookings", "BOOKINGS (2)", "Listings (2)"]
    assert unique_title("A", {"a", "a (2)"}) == "A (3)"


def test_numbered_long_title_still_fits() -> None:
    """Numbering a 255-character duplicate keeps it within 255 characters."""
    long = ("Bookings " * 40).strip()
    assert len(unique_title(cut_title(long), {cut_title(long).casefold()})) <= 255


def test_limit_is_enforced_exactly() -> None:
    """An answer with more items than the limit keeps exactly the limit, in order."""
    bodies = parse(answer([epic(f"Epic number {i}") for i in range(7)]), max_items=3)
    assert [b["title"] for b in bodies] == ["Epic number 0", "Epic number 1", "Epic number 2"]


@pytest.mark.parametrize(
    "wrap", ["```json\n{}\n```", "Sure! Here it is:\n{}\nHope that helps.", "```\n{}\n```"]
)
def test_fenced_and_prose_json_is_accepted(wrap: str) -> None:
    """JSON in a code fence or surrounded by prose is accepted."""
    assert [b["title"] for b in parse(answer([epic("Bookings")], wrap=wrap))] == ["Bookings"]


def test_bare_array_is_accepted() -> None:
    """A bare JSON array is taken as the stage's list."""
    bodies = parse(Completion(content=json.dumps([epic("Bookings")])))
    assert bodies[0]["title"] == "Bookings"


def test_unknown_and_repeated_source_ids_are_dropped_keeping_the_valid_ones() -> None:
    """Citations of sentences the vision lacks, and repeats, are dropped; the item keeps its valid ids."""
    accepted = accept_answer(STAGES["epics"], answer([epic("Bookings", ["S1", "S9", "S1"])]), VISION, 5, [])
    assert accepted.bodies[0]["sources"] == ["S1"]
    assert any("sources: dropped unknown or repeated citations ['S9', 'S1']" in r for r in accepted.repairs)


def test_an_item_left_without_citations_inherits_its_parents() -> None:
    """An item whose every citation is unknown inherits the citations it was given to fall back on."""
    accepted = accept_answer(
        STAGES["epics"], answer([epic("Bookings", ["S7", "made up"])]), VISION, 5, [], inherited=["S2"]
    )
    assert accepted.bodies[0]["sources"] == ["S2"]
    assert any("inherited ['S2']" in r for r in accepted.repairs)


def test_a_top_level_item_without_citations_gets_the_closest_sentence() -> None:
    """With no parent to inherit from, the vision sentence sharing most words with the item is cited."""
    item = {**epic("Borrowers book tools", ["nonsense"]), "description": "Borrowers book them online."}
    accepted = accept_answer(STAGES["epics"], answer([item]), VISION, 5, [])
    assert accepted.bodies[0]["sources"] == ["S2"]


def test_out_of_range_numbers_are_clamped_and_unrepairable_items_dropped() -> None:
    """A priority of 9 is clamped to 4 and an item without a title is dropped; both are reported."""
    bad = [epic("Bookings"), {**epic("Listings"), "priority": 9}, {"description": "no title"}]
    accepted = accept_answer(STAGES["epics"], answer(bad), VISION, 5, [])
    assert [b["title"] for b in accepted.bodies] == ["Bookings", "Listings"]
    assert accepted.bodies[1]["priority"] == 4
    assert any("epics[1].priority: 9 clamped to 4" in r for r in accepted.repairs)
    assert any(r.startswith("dropped an item") and "epics[2].title" in r for r in accepted.repairs)


def test_an_answer_with_no_usable_item_goes_back_with_every_problem() -> None:
    """When no item survives repair the answer is refused, listing each item's problems."""
    with pytest.raises(OutputInvalid) as err:
        parse(answer([{"description": "no title"}, {**epic("Ok title"), "priority": "high"}]))
    problems = err.value.problems
    assert any(p.startswith("epics[0].title") for p in problems)
    assert any(p.startswith("epics[1].priority") for p in problems)


def test_whitespace_is_trimmed_and_an_over_long_title_cut_at_a_word() -> None:
    """Padded strings are trimmed and a title over the schema's maxLength is cut on a word boundary."""
    long = "Borrowers " * 20
    accepted = accept_answer(STAGES["epics"], answer([epic(f"  {long} ")]), VISION, 5, [])
    title = accepted.bodies[0]["title"]
    assert len(title) <= 100 and title.endswith("Borrowers") and "  " not in title
    assert any("title: trimmed whitespace" in r for r in accepted.repairs)
    assert any("title: shortened" in r for r in accepted.repairs)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"stories": []}', "expected an object with a 'epics' array"),
        ('{"epics": []}', "'epics' is empty"),
        ("no json at all", ""),
        ('{"epics": ["a string"]}', "epics[0]: expected an object"),
    ],
)
def test_wrong_shapes_are_invalid(content: str, problem: str) -> None:
    """Answers of the wrong shape raise OutputInvalid with a problem saying what was expected."""
    with pytest.raises(OutputInvalid) as err:
        parse(Completion(content=content))
    assert problem in "; ".join(err.value.problems)


def test_finish_reason_length_is_truncated_even_when_json_parses() -> None:
    """finish_reason=length raises OutputTruncated even if the cut text happens to hold valid JSON."""
    with pytest.raises(OutputTruncated):
        parse(answer([epic("Bookings")], finish="length"))
