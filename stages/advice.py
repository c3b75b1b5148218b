"""Advice on a vision before any token is spent: what it lacks for a backlog a product owner would
accept. Advice, never a refusal: the job runs either way.

- no_target_users: the vision lists no target users and its text names no role as a user, so every
  story's "As a …" has nobody real to name;
- no_success_metric: nothing measurable ("no-show rate below 5%"), so stories have no goal to serve;
- vague_sentence: a sentence with fewer than three words that carry meaning once buzzwords are set
  aside ("A seamless, best-in-class experience."): no story can cite it usefully.

Pure: a ``Vision`` in, frozen ``Advice`` out.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from stages.roles import named_roles
from stages.text import content_words, stem, wordset
from vocab.vision import Vision

BUZZWORDS = frozenset(
    stem(w)
    for w in wordset(
        "seamless seamlessly best-in-class world-class leverage synergy synergies cutting-edge innovative "
        "robust user-friendly intuitive next-generation easy modern powerful smart great better best "
        "experience solution solutions platform holistic scalable disruptive revolutionary empower "
        "delight delightful amazing awesome simple simply efficient effective"
    )
)
_MEASURE = re.compile(
    r"\d+\s*%|\b\d+(?:[.,]\d+)?\s*(?:minutes?|hours?|days?|weeks?|seconds?|ms|users?|times)\b|"
    r"\b(?:below|above|under|less than|more than|at least|at most|within|down|up|from .+ to)\b.*\d",
    re.I,
)
MIN_MEANING = 3


class Advice(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    sentences: tuple[str, ...] = ()


def advise(vision: Vision) -> list[Advice]:
    out: list[Advice] = []
    texts = [s.text for s in vision.sentences]
    if not vision.target_users:
        roles = named_roles(texts)
        if not roles:
            out.append(
                Advice(
                    code="no_target_users",
                    message="No target users: name who uses the product (e.g. 'Front-desk coordinators "
                    "book appointments'), or list them under target_users; stories need a real 'As a …'.",
                )
            )
    if not vision.success_metrics and not any(_MEASURE.search(t) for t in texts):
        out.append(
            Advice(
                code="no_success_metric",
                message="No measurable success metric: add one (e.g. 'no-show rate below 5%') so every "
                "story's 'so that' serves a goal you can check.",
            )
        )
    # a list's intro ("Success means:") is cited with the items that follow it, not alone
    vague = [
        s
        for s in vision.sentences
        if not s.text.rstrip().endswith(":") and len(content_words(s.text) - BUZZWORDS) < MIN_MEANING
    ]
    for s in vague[:10]:
        out.append(
            Advice(
                code="vague_sentence",
                message=f"[{s.id}] is too vague to cite: say who does what with which thing "
                f"('{s.text[:80]}').",
                sentences=(s.id,),
            )
        )
    return out


def advise_json(vision: Vision) -> list[dict[str, object]]:
    """``advise`` as JSON-ready dicts (module level: the process pool runs it)."""
    return [a.model_dump(mode="json") for a in advise(vision)]
