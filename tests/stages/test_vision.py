"""Reading a vision: free text, markdown, structured YAML/JSON, and every kind of unusable input."""

from __future__ import annotations

import json

import pytest
import yaml

from stages.errors import VisionError
from stages.vision import MAX_VISION_BYTES, from_mapping, from_text, parse_bytes, split_sentences
from tests.conftest import SAMPLES


def test_free_text_becomes_numbered_sentences() -> None:
    """Free text is split into sentences with stable ids S1, S2... in the vision section."""
    vision = parse_bytes(b"Owners list tools. Borrowers book them!  Everyone rates the other.", "v.txt")
    assert [(s.id, s.section, s.text) for s in vision.sentences] == [
        ("S1", "vision", "Owners list tools."),
        ("S2", "vision", "Borrowers book them!"),
        ("S3", "vision", "Everyone rates the other."),
    ]
    assert vision.title == ""


def test_markdown_heading_becomes_the_title() -> None:
    """A leading markdown heading is the title; list items count as their own sentences."""
    text = "# RigReady\n\nFleets keep trucks road-ready.\n\n- Drivers file inspections\n- Shops order parts\n"
    vision = parse_bytes(text.encode(), "vision.md")
    assert vision.title == "RigReady"
    assert [s.text for s in vision.sentences] == [
        "Fleets keep trucks road-ready.",
        "Drivers file inspections",
        "Shops order parts",
    ]


def test_structured_yaml_numbers_every_section() -> None:
    """YAML with every field: features, metrics and constraints get sentence ids after the vision's."""
    raw = yaml.safe_dump(
        {
            "title": "T",
            "domain": "retail",
            "vision": "Shops sell bikes. Riders buy them.",
            "target_users": ["Riders"],
            "key_features": ["Checkout"],
            "success_metrics": ["Sales up 10%"],
            "constraints": ["GDPR"],
        }
    ).encode()
    vision = parse_bytes(raw, "v.yaml")
    assert [(s.id, s.section) for s in vision.sentences] == [
        ("S1", "vision"),
        ("S2", "vision"),
        ("S3", "key_features"),
        ("S4", "success_metrics"),
        ("S5", "constraints"),
    ]
    assert vision.target_users == ("Riders",) and vision.domain == "retail"


def test_structured_json_needs_only_the_vision() -> None:
    """JSON with only ``vision`` is enough; every other field defaults to empty."""
    vision = parse_bytes(json.dumps({"vision": "Shops sell bikes."}).encode(), "v.json")
    assert vision.title == "" and vision.key_features == () and len(vision.sentences) == 1


def test_unknown_key_is_rejected_by_name() -> None:
    """A structured vision with an unknown key is refused naming that key."""
    with pytest.raises(VisionError, match="mission"):
        parse_bytes(b"vision: Shops sell.\nmission: world domination\n", "v.yaml")


@pytest.mark.parametrize(
    ("raw", "name", "reason"),
    [
        (b"", "v.md", "the vision is empty"),
        (b" \n\t \n", "v.txt", "the vision is empty"),
        (b"abc\x00def", "v.txt", "looks binary"),
        (b"caf\xe9 au lait", "v.txt", "not valid UTF-8 (byte 3)"),
        (b"x" * (MAX_VISION_BYTES + 1), "v.md", "over the 256 KB vision limit"),
        (b"[1, 2", "v.json", "cannot parse"),
        (b"- just\n- a list\n", "v.yaml", "expected a mapping"),
        (b"title: T\n", "v.yaml", "vision: Field required"),
        (b"vision: ''\n", "v.yaml", "vision"),
    ],
)
def test_unusable_input_raises_a_clear_vision_error(raw: bytes, name: str, reason: str) -> None:
    """Empty, whitespace, binary, non-UTF-8, oversized and malformed input each raise VisionError saying
    why, prefixed with the file name."""
    with pytest.raises(VisionError) as err:
        parse_bytes(raw, name)
    assert str(err.value).startswith(f"{name}: ")
    assert reason in str(err.value)


def test_exactly_256_kb_is_accepted() -> None:
    """The size limit is inclusive: a vision of exactly 256 KB parses."""
    sentence = b"Owners list tools. "
    raw = sentence * (MAX_VISION_BYTES // len(sentence))
    raw += b"x" * (MAX_VISION_BYTES - len(raw))
    assert len(raw) == MAX_VISION_BYTES
    assert parse_bytes(raw, "v.txt").sentences


def test_mapping_and_text_entry_points() -> None:
    """The HTTP entry points validate the same way: a non-mapping or blank text is a VisionError."""
    with pytest.raises(VisionError, match="expected a mapping"):
        from_mapping(["vision"])
    with pytest.raises(VisionError, match="empty"):
        from_text("   ")
    assert from_mapping({"vision": "Riders buy bikes."}).sentences[0].text == "Riders buy bikes."


def test_samples_parse() -> None:
    """Every shipped sample vision parses into sentences."""
    for path in sorted(SAMPLES.iterdir()):
        vision = parse_bytes(path.read_bytes(), path.name)
        assert len(vision.sentences) >= 1, path.name


def test_split_sentences_keeps_abbreviation_free_prose_whole() -> None:
    """Sentence splitting joins wrapped lines of one paragraph and splits on sentence ends."""
    assert split_sentences("One line\ncontinues here. Next one.") == ["One line continues here.", "Next one."]


def test_pasted_yaml_with_a_vision_key_is_read_as_structured() -> None:
    """A YAML vision pasted into the web form is parsed as structured input, not as prose."""
    from stages.vision import from_pasted

    text = "title: Tool library\nvision: Neighbours lend tools.\nkey_features:\n  - Lending calendar\n"
    vision = from_pasted(text)
    assert vision.title == "Tool library"
    assert [s.section for s in vision.sentences] == ["vision", "key_features"]


def test_pasted_prose_that_starts_with_a_label_stays_free_text() -> None:
    """Prose whose first word ends with a colon is not mistaken for YAML without a vision key."""
    from stages.vision import from_pasted

    vision = from_pasted("Summary: a mobile app that lets neighbours lend tools.")
    assert vision.sentences[0].text.startswith("Summary:")
