"""Test knobs under `/_emulator`: replace faults, read-only state introspection, reset.

They exist only when the emulator was started with ``control=True`` (setting ``emulator.control``)
and, like the API, answer only to the emulator's PAT. A reset empties the organization but never
rewinds the id counter, and is journaled, so no work item id is ever handed out twice.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic
from aiohttp import web

from emulator.config import FaultConfig
from emulator.journal import JOURNAL
from emulator.routing import RouteMatch, Router, state_of
from emulator.state import EmulatorState


def snapshot(state: EmulatorState) -> dict[str, Any]:
    """Everything a test may assert on, as plain JSON."""
    items = [
        {
            "id": item.id,
            "project": item.project,
            "type": item.type_name,
            "title": item.fields.get("System.Title"),
            "rev": item.rev,
            "fields": item.fields,
            "relations": [
                {"rel": r.rel, "target": r.target, "attributes": r.attributes} for r in item.relations
            ],
            "parent_id": item.parent_id,
            "tags": item.tags,
        }
        for item in state.items.values()
    ]
    plans = [
        {"id": p.id, "name": p.name, "project": p.project, "root_suite_id": p.root_suite_id}
        for p in state.plans.values()
    ]
    suites = [
        {
            "id": s.id,
            "plan_id": s.plan_id,
            "name": s.name,
            "suite_type": s.suite_type,
            "parent_id": s.parent_id,
            "requirement_id": s.requirement_id,
            "test_case_ids": list(s.test_case_ids),
        }
        for s in state.suites.values()
    ]
    return {
        "work_items": items,
        "test_plans": plans,
        "suites": suites,
        "creates_by_tag": dict(state.creates_by_tag),
        "early_requests": state.early_requests,
        "requests_total": state.requests_total,
        "status_counts": {str(k): v for k, v in sorted(state.status_counts.items())},
        "faults_injected": dict(state.faults_injected),
        "team_iterations": {team: list(ids) for team, ids in state.team_iterations.items()},
        "faults": state.faults.model_dump(mode="json"),
    }


async def get_state(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    return web.json_response(snapshot(state_of(request)))


async def set_faults(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    try:
        faults = FaultConfig.model_validate(json.loads(await request.text() or "{}"))
    except (json.JSONDecodeError, pydantic.ValidationError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    state_of(request).set_faults(faults)
    return web.json_response(faults.model_dump(mode="json"))


async def reset(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    state_of(request).reset()
    journal = request.app.get(JOURNAL)
    if journal is not None and not journal.replaying:
        await journal.append({"reset": True})  # a restart replays the reset too: ids stay where they were
    return web.json_response({"reset": True})


def add_routes(router: Router) -> None:
    router.add("GET", "/_emulator/state", get_state, "control")
    router.add("POST", "/_emulator/faults", set_faults, "control")
    router.add("POST", "/_emulator/reset", reset, "control")
