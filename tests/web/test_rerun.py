"""Re-running a vision against the emulator: never a silent second copy; ``update_of`` creates only the
new items, updates changed ones in place and lists vanished ones, and the API names what is wrong.

The offline generator is deterministic: with a structured vision whose key features each become one
epic (max_epics 3 ≥ their number), adding a key feature adds one epic subtree and leaves the others'
text alone, except the second epic's priority (priorities are spread over the number of epics), so that
epic is an update of its work item and everything else unchanged.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from aiohttp.test_utils import TestClient

from service.composition import Services

Client = TestClient[Any, Any]
VISION_A = {
    "title": "Bike shop",
    "vision": "A web shop for a bicycle repair workshop.",
    "target_users": ["Customers", "Mechanics"],
    "key_features": ["Customers book repairs online", "Mechanics see the repair queue"],
}
VISION_B = {**VISION_A, "key_features": [*VISION_A["key_features"], "Owners export monthly invoices"]}
LIMITS = {"max_epics": 3}


def _nodes(tree: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    todo = list(tree["epics"])
    while todo:
        node = todo.pop(0)
        out.append(node)
        for key in ("features", "stories", "tasks", "test_cases"):
            todo += node.get(key, [])
    return out


async def _run(client: Client, services: Services, body: dict[str, Any]) -> str:
    resp = await client.post("/api/jobs", json={"limits": LIMITS, **body})
    assert resp.status == 202, await resp.text()
    job_id = str((await resp.json())["job_id"])
    assert (await services.jobs.wait(job_id)).status == "completed"
    return job_id


def _work_items(services: Services) -> dict[int, tuple[str, str, int]]:
    assert services.emulator is not None
    return {
        w.id: (w.type_name, str(w.fields.get("System.Title")), w.rev)
        for w in services.emulator.state.items.values()
    }


async def test_a_rerun_creates_only_new_items_and_updates_changed_ones_in_place(
    client: Client, services: Services
) -> None:
    """Job B (update_of A, one more key feature) creates work items for its new epic's subtree only,
    updates A's changed epic in place (same work item, rev + 1), leaves every unchanged work item as it
    was, and no title appears twice; every item of B carries its match, A's carry none."""
    job_a = await _run(client, services, {"vision": VISION_A})
    before = _work_items(services)
    job_b = await _run(client, services, {"vision": VISION_B, "update_of": job_a})
    after = _work_items(services)
    tree_a = await (await client.get(f"/api/jobs/{job_a}/backlog")).json()
    tree_b = await (await client.get(f"/api/jobs/{job_b}/backlog")).json()
    events = await services.store.events_after(job_b, 0)
    rows = await services.store.items(job_b)

    nodes_a, nodes_b = _nodes(tree_a), _nodes(tree_b)
    assert {n["match"] for n in nodes_a} == {None}
    labels = Counter(n["match"] for n in nodes_b)
    assert set(labels) == {"unchanged", "updated", "new"} and labels["updated"] == 1
    new = [n for n in nodes_b if n["match"] == "new"]
    assert {n["type"] for n in new} == {"epic", "feature", "story", "task", "test_case"}
    assert len(after) == len(before) + len(new)  # only the new items were created
    assert all(n["upload"]["ado_id"] not in before for n in new)
    titles = Counter((kind, title) for kind, title, _ in after.values())
    assert max(titles.values()) == 1  # nothing duplicated

    by_id_a = {n["id"]: n for n in nodes_a}
    for node in nodes_b:
        ado_id = node["upload"]["ado_id"]
        assert node["upload"]["state"] == "uploaded"
        if node["match"] == "unchanged":
            assert after[ado_id] == before[ado_id]  # untouched: no request at all
        if node["match"] == "updated":
            assert node["type"] == "epic" and after[ado_id][2] == before[ado_id][2] + 1
            assert node["upload"]["rev"] == after[ado_id][2]
    taken = {n["upload"]["ado_id"] for n in nodes_b if n["match"] != "new"}
    assert taken == {n["upload"]["ado_id"] for n in by_id_a.values()}  # every previous work item reused

    matched = {
        e.payload["id"]: e.payload["match"] for e in events if e.type == "item" and "match" in e.payload
    }
    assert matched == {r.id: r.match for r in rows}  # item events carry the match, test plans' too
    assert {n["id"]: n["match"] for n in nodes_b}.items() <= matched.items()


async def test_a_vanished_item_is_listed_not_deleted_and_nothing_is_created(
    client: Client, services: Services
) -> None:
    """Updating B with A's vision (one key feature fewer) creates no work item, lists the dropped
    epic's subtree as vanished (uploaded rows with their work items, still in Azure DevOps); deleting
    it with in_ado=true closes exactly those work items."""
    job_b = await _run(client, services, {"vision": VISION_B})
    before = _work_items(services)
    job_c = await _run(client, services, {"vision": VISION_A, "update_of": job_b})
    after = _work_items(services)
    tree = await (await client.get(f"/api/jobs/{job_c}/backlog")).json()
    nodes = _nodes(tree)
    assert set(after) == set(before)  # no create
    gone = [n for n in nodes if n["match"] == "vanished"]
    assert {n["type"] for n in gone} == {"epic", "feature", "story", "task", "test_case"}
    assert gone[0]["title"] == "Owners export monthly invoices"
    assert all(n["upload"]["state"] == "uploaded" and n["upload"]["ado_id"] in after for n in gone)
    assert Counter(n["match"] for n in nodes)["new"] == 0

    closed = await client.delete(f"/api/jobs/{job_c}/items/{gone[0]['id']}?in_ado=true")
    assert closed.status == 200, await closed.text()
    assert {d["ado_id"] for d in (await closed.json())["azure_devops"]} == {
        n["upload"]["ado_id"] for n in gone
    }
    assert services.emulator is not None
    states = {services.emulator.state.items[n["upload"]["ado_id"]].fields["System.State"] for n in gone}
    assert states <= {"Removed", "Closed"}  # the user closed what vanished (test cases: Closed)


async def test_a_second_copy_is_refused_unless_asked_for(client: Client, services: Services) -> None:
    """The same vision for the same target again is a 409 backlog_exists naming update_of and the
    earlier job (spacing and case do not make it another vision); new_copy: true makes the copy; a bad
    update_of (unknown job, another target, together with new_copy) is refused naming update_of."""
    job_a = await _run(client, services, {"vision": VISION_A})
    again = {**VISION_A, "vision": "  a web shop for a BICYCLE repair workshop. "}
    refused = await client.post("/api/jobs", json={"vision": again, "limits": LIMITS})
    assert refused.status == 409
    error = (await refused.json())["error"]
    assert error["code"] == "backlog_exists"
    assert error["details"] == [{"field": "update_of", "message": error["message"], "job_id": job_a}]

    unknown = await client.post("/api/jobs", json={"vision": VISION_A, "update_of": "nope"})
    assert unknown.status == 404
    assert (await unknown.json())["error"]["details"][0]["field"] == "update_of"
    for body in (
        {"update_of": job_a, "new_copy": True},
        {"update_of": job_a, "azure_devops": {"target": "none"}},
        {"update_of": job_a, "azure_devops": {"project": "Elsewhere"}},
    ):
        bad = await client.post("/api/jobs", json={"vision": VISION_A, **body})
        assert bad.status == 400, body
        assert (await bad.json())["error"]["details"][0]["field"] == "update_of"
    jobs = (await (await client.get("/api/jobs")).json())["jobs"]
    assert [j["job_id"] for j in jobs] == [job_a]  # nothing refused was created

    copy = await client.post("/api/jobs", json={"vision": VISION_A, "new_copy": True, "limits": LIMITS})
    assert copy.status == 202
    await services.jobs.cancel((await copy.json())["job_id"])
    elsewhere = await client.post("/api/jobs", json={"vision": VISION_A, "azure_devops": {"target": "none"}})
    assert elsewhere.status == 202  # no upload target: no copy to protect


async def test_two_identical_posts_at_once_make_one_job(client: Client, services: Services) -> None:
    """Two POSTs of one vision at the same moment (a double click): one job is created, the other is a
    409 backlog_exists naming it (the check is repeated in the insert's transaction)."""
    body = {"vision": VISION_A, "limits": LIMITS, "upload_mode": "manual"}
    first, second = await asyncio.gather(
        client.post("/api/jobs", json=body), client.post("/api/jobs", json=body)
    )
    assert sorted([first.status, second.status]) == [202, 409]
    made = first if first.status == 202 else second
    refused = second if made is first else first
    job_id = (await made.json())["job_id"]
    assert (await refused.json())["error"]["details"][0]["job_id"] == job_id
    await services.jobs.wait(job_id)
