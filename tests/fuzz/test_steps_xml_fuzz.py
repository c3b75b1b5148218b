"""Fuzzing the Test Case steps XML the ADO client builds: always well-formed XML that gives back every
step's text (escaped once as HTML, then once as XML), whatever the text holds."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outbox.ado.richtext import steps_xml
from tests.fuzz.strategies import FUZZ


def xml_char(c: str) -> bool:
    """Characters XML 1.0 can carry at all (control characters and U+FFFE/FFFF cannot)."""
    n = ord(c)
    return n in (0x9, 0xA) or 0x20 <= n <= 0xD7FF or 0xE000 <= n <= 0xFFFD or n >= 0x10000


texts = st.text(alphabet=st.characters(codec="utf-8").filter(xml_char), max_size=60)
markup = st.text(alphabet="<>&\"' ;#/=abDIVP\t\n", max_size=40)
steps = st.lists(st.fixed_dictionaries({"action": texts | markup, "expected": texts | markup}), max_size=6)


def _read_back(fragment: str | None) -> str:
    """The plain text inside one parameterizedString: ``<DIV><P>escaped</P></DIV>`` or empty."""
    if not fragment:
        return ""
    assert fragment.startswith("<DIV><P>") and fragment.endswith("</P></DIV>"), fragment
    return html.unescape(fragment[len("<DIV><P>") : -len("</P></DIV>")])


@FUZZ
@given(steps=steps)
def test_steps_xml_is_well_formed_and_round_trips_the_text(steps: list[dict[str, str]]) -> None:
    """Any steps give well-formed XML with one numbered step each, holding its action and expected text."""
    root = ET.fromstring(steps_xml(steps))
    assert root.tag == "steps" and root.get("last") == str(len(steps))
    assert [s.get("id") for s in root] == [str(i) for i in range(1, len(steps) + 1)]
    for element, step in zip(root, steps, strict=True):
        action, expected = element.findall("parameterizedString")
        assert _read_back(action.text) == step["action"].strip()
        assert _read_back(expected.text) == step["expected"].strip()
        assert element.get("type") == ("ValidateStep" if step["expected"].strip() else "ActionStep")


@pytest.mark.parametrize("text", ["bell \x07 rings", "form\x0cfeed", "\ufffe"], ids=["bel", "ff", "fffe"])
def test_text_with_characters_xml_cannot_carry_still_gives_well_formed_xml(text: str) -> None:
    """A step whose text holds a control character still gives well-formed XML."""
    ET.fromstring(steps_xml([{"action": text, "expected": "ok"}]))
