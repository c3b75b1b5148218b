"""The hard checks every provider's story and test-case answers pass before they are accepted: a
title cut off mid-phrase, a title the job already has, a persona that is not one of the vision's
users. A failing answer gets one regeneration listing these problems (as near-duplicates do).

Pure functions of plain data so the runner can run them in the process pool.
"""

from __future__ import annotations

from typing import Any

from stages.roles import is_user, role_of, vision_roles
from stages.text import cut_off_reason, normalise


def hard_problems(
    kind: str, bodies: list[dict[str, Any]], existing_titles: list[str], vision: dict[str, Any]
) -> list[str]:
    """Problems of a story or test-case answer, one line each, worded for the model to fix them."""
    if kind not in ("story", "test_case"):
        return []
    taken = {normalise(t) for t in existing_titles}
    listed = list(vision.get("target_users", []))
    users = vision_roles(listed, [s["text"] for s in vision.get("sentences", [])]) + listed
    problems: list[str] = []
    for i, body in enumerate(bodies):
        title = str(body.get("title", ""))
        why = cut_off_reason(title)
        if why:
            problems.append(f"item {i} title '{title}' is cut off ({why}); write a complete phrase")
        key = normalise(title)
        if key in taken:
            problems.append(
                f"item {i} title '{title}' repeats a title the backlog already has; make it distinct"
            )
        taken.add(key)
        if kind == "story" and users:
            role, _ = role_of(body)
            if not is_user(role, users):
                problems.append(
                    f"item {i} persona '{role}' is not a user of the vision; use one of: "
                    + ", ".join(dict.fromkeys(users))
                )
    return problems
