"""The offline story writer fits a long acceptance criterion to the schema's sentence length by
shortening whole phrases, and gives up (instead of looping) when no shorter whole phrase exists."""

from __future__ import annotations

import pytest

from stages.providers.story_writer import _fit


@pytest.mark.timeout(5)
def test_a_criterion_no_phrase_of_which_can_be_shortened_is_returned_not_looped_on() -> None:
    """Every prefix of the Given part ends on a possessive (shortening falls back to the whole part):
    fitting the criterion returns (it used to loop for ever), with its three parts intact."""
    given, when = " ".join(["a's"] * 12), "y" * 70 + " " + "z" * 70
    assert _fit(f"Given {given}, When {when}, Then ok") == f"Given {given}, When {when}, Then ok"
