"""Fuzzing the vision parser: any bytes, any file name, any mapping -> a Vision or a VisionError with a
message; never another exception."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stages.errors import VisionError
from stages.vision import from_mapping, parse_bytes
from tests.fuzz.strategies import FUZZ, as_json, as_yaml, documents, values

NAMES = st.sampled_from(["vision.md", "vision.txt", "vision.yaml", "VISION.YML", "vision.json", "vision"])
FIELDS = ["title", "domain", "vision", "target_users", "key_features", "success_metrics", "constraints"]
vision_like = st.dictionaries(st.sampled_from([*FIELDS, "extra"]), values, max_size=6)


def _check(parse: Any, *args: Any) -> None:
    try:
        vision = parse(*args)
    except VisionError as exc:
        assert str(exc).strip(), "a VisionError says what is wrong"
    else:
        assert vision.vision.strip() and vision.sentences, "an accepted vision has sentences"
        assert [s.id for s in vision.sentences] == [f"S{i}" for i in range(1, len(vision.sentences) + 1)]


@FUZZ
@given(raw=st.binary(max_size=600), name=NAMES)
def test_any_bytes_give_a_vision_or_a_vision_error(raw: bytes, name: str) -> None:
    """Arbitrary bytes under any file name parse into a Vision with numbered sentences, or a VisionError."""
    _check(parse_bytes, raw, name)


@FUZZ
@given(text=st.one_of(documents, vision_like.map(as_yaml), vision_like.map(as_json)), name=NAMES)
def test_any_yaml_or_json_document_gives_a_vision_or_a_vision_error(text: str, name: str) -> None:
    """YAML/JSON documents of any shape (and YAML-looking noise) give a Vision or a VisionError."""
    _check(parse_bytes, text.encode("utf-8", "surrogatepass"), name)


@FUZZ
@given(data=st.one_of(vision_like, values))
def test_any_mapping_gives_a_vision_or_a_vision_error(data: Any) -> None:
    """Any structured value (mappings of the vision fields holding anything) is a Vision or a VisionError."""
    _check(from_mapping, data)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (b"vision: 2024-13-45\n", "v.yaml"),
        (b"vision: !!int zz\n", "v.yaml"),
        (b"1" * 5000, "v.json"),
        (b"vision: " + b"[" * 2000, "v.yaml"),
        (b"[" * 100_000, "v.json"),
    ],
    ids=["yaml_bad_date", "yaml_bad_int_tag", "json_long_int", "yaml_deep", "json_deep"],
)
def test_values_the_parsers_cannot_build_are_vision_errors(raw: bytes, name: str) -> None:
    """A bad YAML date or tag, a 5000-digit JSON number or absurd nesting is a VisionError."""
    with pytest.raises(VisionError):
        parse_bytes(raw, name)
