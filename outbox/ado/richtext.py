"""Plain text to ADO rich text: escaped HTML for multiline fields and the Test Case steps XML (§2.6)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from html import escape
from xml.sax.saxutils import escape as xml_escape

TITLE_MAX = 255


def utf16_length(text: str) -> int:
    """Length as the service counts it: UTF-16 code units (a character beyond U+FFFF counts two)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


_ZWJ = "\u200d"


def _extends(previous: str, ch: str) -> bool:
    """Whether ``ch`` continues the grapheme cluster ending in ``previous`` (no boundary between them).

    The parts of Unicode's extended grapheme clusters that titles meet: combining marks, variation
    selectors, emoji modifiers and tags, zero-width joiner sequences and regional-indicator flags."""
    code = ord(ch)
    if unicodedata.category(ch) in ("Mn", "Me", "Mc") or ch == _ZWJ or previous == _ZWJ:
        return True
    return 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F


def _cut(text: str, units: int) -> str:
    """The longest prefix of ``text`` within ``units`` UTF-16 units that ends on a grapheme boundary."""
    used, end = 0, 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > units:
            break
        end = index + 1
    while 0 < end < len(text) and _extends(text[end - 1], text[end]):
        end -= 1
    if 0 < end < len(text) and _is_flag_half(text, end):
        end -= 1
    return text[:end]


def _is_flag_half(text: str, end: int) -> bool:
    """A cut between two regional indicators of one flag (pairs counted from the run's start)."""

    def regional(ch: str) -> bool:
        return 0x1F1E6 <= ord(ch) <= 0x1F1FF

    if not (regional(text[end - 1]) and regional(text[end])):
        return False
    start = end - 1
    while start > 0 and regional(text[start - 1]):
        start -= 1
    return (end - start) % 2 == 1


def title(text: str) -> str:
    """Titles are single-line plain strings of at most 255 UTF-16 code units (the service's count); a
    longer one is cut at a grapheme boundary (never inside an emoji, flag or accented letter) and ends
    with an ellipsis."""
    flat = " ".join(part.strip() for part in text.splitlines()).strip()
    if utf16_length(flat) <= TITLE_MAX:
        return flat
    return _cut(flat, TITLE_MAX - 1).rstrip() + "…"


def paragraph(text: str) -> str:
    """Plain text as one HTML block: escaped once, newlines kept as <br>."""
    lines = escape(text.strip()).splitlines()
    return "<div>" + "<br>".join(lines) + "</div>"


def bullet_list(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(i.strip())}</li>" for i in items if i.strip()) + "</ul>"


def labelled(label: str, html_block: str) -> str:
    return f"<div><b>{escape(label)}</b></div>{html_block}"


def steps_xml(steps: Iterable[Mapping[str, str]]) -> str:
    """The Microsoft.VSTS.TCM.Steps value: one ValidateStep (or ActionStep) per step, ids from 1.

    Each step's text is plain text made into HTML (escaped once), and that HTML is then XML-escaped
    once as the content of a ``parameterizedString isformatted="true"`` element.
    """
    parts: list[str] = []
    last = 0
    for index, step in enumerate(steps, start=1):
        action, expected = str(step.get("action", "")), str(step.get("expected", ""))
        kind = "ValidateStep" if expected.strip() else "ActionStep"
        parts.append(
            f'<step id="{index}" type="{kind}">'
            f"{_parameterized(action)}{_parameterized(expected)}<description/></step>"
        )
        last = index
    return f'<steps id="0" last="{last}">' + "".join(parts) + "</steps>"


# Characters XML 1.0 cannot carry at all (C0 controls other than tab/newline/CR, U+FFFE/FFFF, lone
# surrogates): escaping cannot help, so they are dropped rather than making the whole field invalid.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _parameterized(text: str) -> str:
    text = _NOT_XML.sub("", text)
    html = f"<DIV><P>{escape(text.strip(), quote=False)}</P></DIV>" if text.strip() else ""
    return f'<parameterizedString isformatted="true">{xml_escape(html)}</parameterizedString>'
