"""Reading a product vision: free text (.md/.txt) or structured YAML/JSON, into a ``Vision``.

Every sentence of the vision (and every key feature, metric and constraint) gets a stable id
(``S1``, ``S2``…) so generated items can say which sentences they derive from.
Parsing is pure: it takes bytes or a mapping and never touches the file system.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stages.errors import VisionError, VisionTooLarge
from vocab.vision import TEXT_FIELDS, Sentence, Vision

MAX_VISION_BYTES = 256 * 1024
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_MD_NOISE = re.compile(r"^\s{0,3}(#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s?)")
_BULLETS = re.compile(r"^(?:[-*+•‣◦]+\s+)+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # C0 (but tab, LF, CR) and DEL


class _StructuredVision(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = ""
    domain: str = ""
    vision: str = Field(min_length=1)
    target_users: list[str] = []
    key_features: list[str] = []
    success_metrics: list[str] = []
    constraints: list[str] = []


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: C speed


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses aliases (VisionError naming the line): ``*ref`` lets a few bytes
    stand for megabytes (an "alias bomb"). The events are scanned first, so nothing is built."""
    for event in yaml.parse(text, Loader=_YAML_LOADER):
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 1 if event.start_mark else 0
            anchor = f"*{event.anchor}"
            raise VisionError(
                f"line {line}: YAML aliases ({anchor}) are not accepted in a vision; write it out"
            )
    return yaml.load(text, Loader=_YAML_LOADER)  # a safe loader (no tags that construct objects)


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences; markdown headings and list items count as their own lines."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        lines = [ln for ln in para.splitlines() if ln.strip()]
        if any(_MD_NOISE.match(ln) for ln in lines):
            chunks = [_MD_NOISE.sub("", ln).strip() for ln in lines]
        else:
            chunks = [" ".join(ln.strip() for ln in lines)]
        for chunk in chunks:
            out.extend(s.strip() for s in _SENTENCE_END.split(chunk) if len(s.strip()) > 1)
    return out


def _number(vision: _StructuredVision) -> tuple[Sentence, ...]:
    sections = [
        ("vision", split_sentences(vision.vision)),
        ("key_features", _unbulleted(vision.key_features)),
        ("success_metrics", _unbulleted(vision.success_metrics)),
        ("constraints", _unbulleted(vision.constraints)),
    ]
    out: list[Sentence] = []
    for section, texts in sections:
        for text in texts:
            out.append(Sentence(id=f"S{len(out) + 1}", section=section, text=text))
    return tuple(out)


def _unbulleted(texts: Sequence[str]) -> list[str]:
    """List entries without the bullets pasted along ('- - dashboard' is 'dashboard'): a bullet is no
    part of what a title or a citation says, and two entries that differ only by one would read alike."""
    out = (_BULLETS.sub("", text).strip() for text in texts)
    return [text for text in out if len(text) > 1]


def from_mapping(data: Any, where: str = "vision") -> Vision:
    """Build a Vision from a structured mapping (parsed YAML/JSON or an HTTP body)."""
    if not isinstance(data, dict):
        raise VisionError(f"{where}: expected a mapping with at least a 'vision' text")
    try:
        sv = _StructuredVision.model_validate(data)
    except ValidationError as exc:
        raise VisionError(f"{where}: " + _describe(exc)) from None
    return _finish(sv)


def from_text(text: str, where: str = "vision") -> Vision:
    """Build a Vision from free text; a leading markdown heading becomes the title."""
    if not text.strip():
        raise VisionError(f"{where}: the vision is empty")
    title = ""
    first, _, rest = text.strip().partition("\n")
    if first.startswith("#"):
        title = first.lstrip("#").strip()
        text = rest if rest.strip() else first
    return _finish(_StructuredVision(title=title, vision=text.strip()))


def from_pasted(text: str, where: str = "vision") -> Vision:
    """A vision pasted as one string: structured YAML/JSON when it is a mapping with a ``vision`` key
    (people paste their YAML files), free text otherwise."""
    stripped = text.strip()
    if stripped[:1] == "{" or re.match(r"^[A-Za-z_]+:", stripped):
        try:
            data = json.loads(stripped) if stripped[:1] == "{" else load_yaml(stripped)
        except (yaml.YAMLError, ValueError, RecursionError):
            data = None
        if isinstance(data, dict) and "vision" in data:
            return from_mapping(data, where)
    return from_text(text, where)


def parse_bytes(raw: bytes, filename: str) -> Vision:
    """Parse a vision file's bytes; the extension chooses the format (.yaml/.yml/.json or text)."""
    check_size(len(raw), filename)
    if b"\x00" in raw:
        nul = raw.index(b"\x00")
        raise VisionError(f"{filename}: looks binary (a NUL byte at byte {nul}); expected UTF-8 text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise VisionError(f"{filename}: not valid UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise VisionError(f"{filename}: the vision is empty")
    lower = filename.lower()
    if lower.endswith((".yaml", ".yml", ".json")):
        try:
            data = json.loads(text) if lower.endswith(".json") else load_yaml(text)
        except VisionError as exc:
            raise VisionError(f"{filename}: {exc}") from None
        except (yaml.YAMLError, ValueError, RecursionError) as exc:  # ValueError: bad dates, huge ints
            raise VisionError(f"{filename}: cannot parse: {_one_line(exc)[:200]}") from None
        return from_mapping(data, filename)
    return from_text(text, filename)


def check_size(size: int, where: str, limit: int = MAX_VISION_BYTES) -> None:
    if size > limit:
        raise VisionTooLarge(
            f"{where}: {size} bytes is over the {limit // 1024} KB vision limit", size, limit
        )


def expanded_size(vision: Vision | _StructuredVision) -> int:
    """The vision's size once parsed (YAML expanded): UTF-8 bytes of every text it carries."""
    total = 0
    for name in TEXT_FIELDS:
        value = getattr(vision, name)
        for text in [value] if isinstance(value, str) else value:
            total += len(text.encode("utf-8", "surrogatepass"))
    return total


def _check_controls(sv: _StructuredVision) -> None:
    """NUL and other control characters (tab and line breaks aside) are refused, with where they are."""
    for name in TEXT_FIELDS:
        value = getattr(sv, name)
        texts = (
            [(name, value)] if isinstance(value, str) else [(f"{name}[{i}]", t) for i, t in enumerate(value)]
        )
        for field, text in texts:
            found = _CONTROL.search(text)
            if found:
                code, at = ord(found.group()), found.start() + 1
                raise VisionError(
                    f"{field}: control character U+{code:04X} at character {at}; use plain text"
                )


def _finish(sv: _StructuredVision) -> Vision:
    _check_controls(sv)
    check_size(expanded_size(sv), "vision")
    sentences = _number(sv)
    if not sentences:
        raise VisionError("vision: no sentences found in the vision text")
    return Vision(
        title=sv.title,
        domain=sv.domain,
        vision=sv.vision,
        target_users=tuple(sv.target_users),
        key_features=tuple(sv.key_features),
        success_metrics=tuple(sv.success_metrics),
        constraints=tuple(sv.constraints),
        sentences=sentences,
    )


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
