"""Pure parts of the ADO client: steps XML, rich text, process discovery, field mapping, the gate."""

from __future__ import annotations

import asyncio
import html
import re
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from outbox.ado import mapping, process, richtext
from outbox.ado.errors import AdoPermanent
from outbox.ado.http import parse_seconds
from outbox.ado.types import AdoTarget, FieldInfo, ProcessProfile, UploadItem
from tests.fakes.gate import SimpleGate

STEPS = [
    {"action": 'Open <b>"login"</b> & wait', "expected": "Form shown\nwith 2 fields"},
    {"action": "Submit it's form", "expected": "x < y > z"},
    {"action": "Only an action", "expected": ""},
]


def _text_of(fragment: str) -> str:
    """HTML fragment → the plain text a reader sees."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def test_steps_xml_is_well_formed_and_round_trips() -> None:
    """Steps XML parses, has `last` = max id, two formatted strings per step, and gives back each text."""
    root = ET.fromstring(richtext.steps_xml(STEPS))
    steps = root.findall("step")
    assert root.get("id") == "0"
    assert root.get("last") == str(max(int(s.get("id", "0")) for s in steps)) == "3"
    assert [s.get("type") for s in steps] == ["ValidateStep", "ValidateStep", "ActionStep"]
    for step, wanted in zip(steps, STEPS, strict=True):
        strings = step.findall("parameterizedString")
        assert len(strings) == 2
        assert all(s.get("isformatted") == "true" for s in strings)
        assert _text_of(strings[0].text or "") == wanted["action"]
        assert _text_of(strings[1].text or "") == wanted["expected"]


def test_steps_xml_escapes_the_html_exactly_once() -> None:
    """The HTML wrapper is XML-escaped once (&lt;DIV&gt;), never twice (&amp;lt;DIV)."""
    raw = richtext.steps_xml([{"action": "Click", "expected": "Done"}])
    assert "&lt;DIV&gt;&lt;P&gt;Click&lt;/P&gt;&lt;/DIV&gt;" in raw
    assert "&amp;lt;DIV" not in raw


def test_paragraph_escapes_html_and_keeps_line_breaks() -> None:
    """Descriptions are escaped once, newlines become <br>, and the text survives unchanged."""
    text = 'Use <script>alert("x")</script> & "quotes"\nsecond line'
    block = richtext.paragraph(text)
    assert "<script>" not in block
    assert "<br>" in block
    assert _text_of(block.replace("<br>", "\n")) == text


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("\U0001f600" * 200, "\U0001f600" * 127),  # emoji count two units each
        ("a" * 252 + "e\u0301\u0301xyz", "a" * 252),  # never strip a letter's accents
        ("a" * 252 + "\U0001f469\u200d\U0001f4bbx", "a" * 252),  # nor split a ZWJ sequence
        ("a" * 250 + "\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea", "a" * 250 + "\U0001f1eb\U0001f1f7"),  # flags
        ("a" * 252 + "\U0001f44d\U0001f3fd!", "a" * 252),  # nor drop a skin tone
    ],
)
def test_long_titles_are_cut_to_255_utf16_units_at_a_grapheme_boundary(text: str, kept: str) -> None:
    """A long title is cut to at most 255 UTF-16 code units, at a grapheme boundary, with an ellipsis."""
    cut = richtext.title(text)
    assert cut == kept + "…"
    assert richtext.utf16_length(cut) <= 255


def test_title_is_capped_at_255_and_kept_otherwise() -> None:
    """A title with HTML and quotes is kept as is; a long one is cut to 255 characters."""
    assert richtext.title('Say "hi" <b>now</b>') == 'Say "hi" <b>now</b>'
    assert len(richtext.title("x" * 400)) == 255


@pytest.mark.parametrize(
    ("names", "wanted"),
    [
        (["Epic", "Feature", "User Story", "Task", "Bug", "Issue", "Test Case"], "Agile"),
        (["Epic", "Feature", "Product Backlog Item", "Task", "Impediment", "Test Case"], "Scrum"),
        (["Epic", "Feature", "Requirement", "Task", "Issue", "Test Case"], "CMMI"),
        (["Epic", "Issue", "Task"], "Basic"),
    ],
)
def test_process_is_discovered_from_the_type_list(names: list[str], wanted: str) -> None:
    """The requirement type present decides the process; Basic maps features to Epic and has no QA types."""
    name, types = process.discover(names)
    assert name == wanted
    if wanted == "Basic":
        assert types["feature"] == "Epic"
        assert types["story"] == "Issue"
        assert types["test_case"] is None
    else:
        assert types["feature"] == "Feature"
        assert types["test_case"] == "Test Case"


def test_unknown_process_is_a_permanent_error() -> None:
    """A type list without any known requirement type cannot be mapped."""
    with pytest.raises(AdoPermanent, match="cannot recognise"):
        process.discover(["Epic", "Task"])


def _profile(process_name: str, fields: dict[str, list[str]], types: dict[str, str | None]) -> ProcessProfile:
    infos = {t: {ref: FieldInfo(ref) for ref in refs} for t, refs in fields.items()}
    return ProcessProfile(process_name, "guid", "Proj", types, infos, "Proj\\Team", "")


def _item(kind: str, body: dict[str, Any], parent: int | None = None) -> UploadItem:
    return UploadItem("u1", "j1", kind, body["title"], body, "bk-1", "bi-run", parent, {}, None)


def test_story_fields_follow_the_type_fields() -> None:
    """Without an AcceptanceCriteria field the criteria go to the description; Effort takes the points."""
    profile = _profile(
        "Basic",
        {"Issue": ["System.Title", "System.Description", "Microsoft.VSTS.Scheduling.Effort"]},
        {"story": "Issue"},
    )
    body = {
        "title": "Sign in",
        "user_story": "As a user, I want to sign in, so that I see my data",
        "description": "Login",
        "acceptance_criteria": ["Given a <user> When x Then y"],
        "story_points": 5,
        "priority": 2,
        "sources": ["s1"],
    }
    type_name, ops = mapping.work_item_patch(_item("story", body, 7), profile, lambda i: f"http://x/wi/{i}")
    by_path = {op["path"]: op["value"] for op in ops}
    assert type_name == "Issue"
    assert by_path["/fields/Microsoft.VSTS.Scheduling.Effort"] == 5
    assert "/fields/Microsoft.VSTS.Common.AcceptanceCriteria" not in by_path
    assert "/fields/Microsoft.VSTS.Common.Priority" not in by_path
    assert "<li>Given a &lt;user&gt; When x Then y</li>" in by_path["/fields/System.Description"]
    assert by_path["/fields/System.Tags"] == "bk-1; bi-run"
    assert by_path["/fields/System.AreaPath"] == "Proj\\Team"
    assert by_path["/relations/-"] == {"rel": "System.LinkTypes.Hierarchy-Reverse", "url": "http://x/wi/7"}


def test_test_case_links_with_tested_by_not_as_child() -> None:
    """A test case gets a TestedBy-Reverse ("Tests") link to its story and the steps XML."""
    profile = _profile("Agile", {"Test Case": ["Microsoft.VSTS.TCM.Steps"]}, {"test_case": "Test Case"})
    body = {
        "title": "Login works",
        "preconditions": "A user",
        "steps": STEPS,
        "description": "d",
        "priority": 1,
    }
    _, ops = mapping.work_item_patch(_item("test_case", body, 9), profile, lambda i: f"http://x/wi/{i}")
    by_path = {op["path"]: op["value"] for op in ops}
    assert by_path["/relations/-"]["rel"] == "Microsoft.VSTS.Common.TestedBy-Reverse"
    assert ET.fromstring(by_path["/fields/Microsoft.VSTS.TCM.Steps"]).tag == "steps"


def test_missing_qa_type_is_a_clear_permanent_error() -> None:
    """On Basic a test case fails with "QA artifacts are not available for process Basic"."""
    profile = _profile("Basic", {}, {"test_case": None})
    body = {"title": "Login works", "steps": STEPS}
    with pytest.raises(AdoPermanent, match="not available for process Basic"):
        mapping.work_item_patch(_item("test_case", body), profile, str)


def test_target_repr_never_shows_the_pat() -> None:
    """The PAT is not part of the target's repr."""
    target = AdoTarget("https://dev.azure.com/org", "Proj", "super-secret-pat")
    assert "super-secret-pat" not in repr(target)


def test_retry_after_parses_fractional_seconds_and_dates() -> None:
    """Retry-After may be fractional seconds or an HTTP date; garbage is ignored."""
    assert parse_seconds("0.02") == pytest.approx(0.02)
    assert parse_seconds("Thu, 01 Jan 1970 00:00:10 GMT", now=lambda: 4.0) == pytest.approx(6.0)
    assert parse_seconds("soon") is None
    assert parse_seconds(None) is None


def test_gate_pause_only_extends_the_deadline() -> None:
    """A shorter pause never shortens a longer one already in force."""
    now = [100.0]
    gate = SimpleGate(2, clock=lambda: now[0])
    gate.pause(5.0)
    gate.pause(1.0)
    assert gate.deadline == 105.0
    gate.throttled(10.0)
    assert gate.deadline == 110.0


async def test_gate_slot_waits_for_the_shared_pause() -> None:
    """After a pause every new slot waits until the deadline has passed."""
    gate = SimpleGate(2)
    gate.pause(0.03)
    started = time.monotonic()
    async with gate.slot():
        waited = time.monotonic() - started
    assert waited >= 0.025


async def test_gate_limits_concurrency() -> None:
    """No more than `concurrency` slots are held at once."""
    gate = SimpleGate(2)
    inside = peak = 0

    async def one() -> None:
        nonlocal inside, peak
        async with gate.slot():
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.005)
            inside -= 1

    await asyncio.gather(*(one() for _ in range(6)))
    assert peak == 2
