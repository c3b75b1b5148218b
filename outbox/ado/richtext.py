"""Plain text to ADO rich text: escaped HTML for multiline fields and the Test Case steps XML (§2.6)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from html import escape
from xml.sax.saxutils import escape as xml_escape

TITLE_MAX = 255


def title(text: str) -> str:
    """Titles are plain strings of at most 255 characters, single line."""
    flat = " ".join(part.strip() for part in text.splitlines()).strip()
    return flat if len(flat) <= TITLE_MAX else flat[: TITLE_MAX - 1] + "…"


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
