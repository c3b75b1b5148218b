"""Quality checks across a job: near-duplicate detection and traceability to the vision.

Pure functions of plain data so they can run in a process pool (the runner sends them there:
comparing every new story with every story of the job is quadratic work on big backlogs).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "to",
        "of",
        "for",
        "in",
        "on",
        "and",
        "or",
        "with",
        "as",
        "i",
        "we",
        "so",
        "that",
        "want",
        "be",
        "is",
        "are",
        "my",
        "our",
        "their",
    ]
)


def _shingles(text: str) -> frozenset[str]:
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
    if len(words) < 2:
        return frozenset(words)
    return frozenset(f"{a} {b}" for a, b in itertools.pairwise(words))


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of word bigrams (stop words removed): 1.0 for the same wording."""
    return _jaccard(_shingles(a), _shingles(b))


def _jaccard(sa: frozenset[str], sb: frozenset[str]) -> float:
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def near_duplicates(
    new: list[tuple[str, str]], existing: list[tuple[str, str]], threshold: float
) -> list[str]:
    """Problems for each new (title, text) that nearly repeats an existing one elsewhere in the job."""
    problems = []
    # Shingle each text once, not once per pair: this runs for every stories call against the whole job.
    others = [(other_title, _shingles(f"{other_title} {other_text}")) for other_title, other_text in existing]
    for i, (title, text) in enumerate(new):
        mine = _shingles(f"{title} {text}")
        for other_title, theirs in others:
            score = _jaccard(mine, theirs)
            if score >= threshold:
                problems.append(
                    f"item {i} '{title}' nearly repeats '{other_title}' elsewhere in the backlog "
                    f"(similarity {score:.2f}); make it distinct"
                )
                break
    return problems


def traceability(sentences: list[dict[str, Any]], stories: list[dict[str, Any]]) -> dict[str, Any]:
    """Which vision sentences no story covers (by the stories' ``sources``)."""
    covered: dict[str, int] = {}
    for story in stories:
        for sid in story.get("sources", []):
            covered[sid] = covered.get(sid, 0) + 1
    uncovered = [
        {"id": s["id"], "section": s["section"], "text": s["text"]}
        for s in sentences
        if s["id"] not in covered
    ]
    return {
        "sentences": len(sentences),
        "covered": len(sentences) - len(uncovered),
        "uncovered": uncovered,
        "stories_per_sentence": covered,
    }
