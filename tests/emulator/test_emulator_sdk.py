"""Wire compatibility: Microsoft's own azure-devops Python SDK drives the emulator unmodified."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.emulator.conftest import PAT, Ado


def _sdk_client(url: str, monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> Any:
    """A v7.1 work item tracking client; the SDK's on-disk location caches are kept in memory."""
    monkeypatch.setenv("AZURE_DEVOPS_CACHE_DIR", str(cache_dir))
    from azure.devops import client as sdk_client
    from azure.devops import connection as sdk_connection
    from azure.devops.connection import Connection
    from msrest.authentication import BasicAuthentication

    monkeypatch.setattr(sdk_client, "OPTIONS_FILE_CACHE", collections.defaultdict(lambda: None))
    monkeypatch.setattr(sdk_connection, "RESOURCE_FILE_CACHE", collections.defaultdict(lambda: None))
    connection = Connection(base_url=url, creds=BasicAuthentication("", PAT))
    return connection.clients_v7_1.get_work_item_tracking_client()


async def test_official_sdk_creates_links_queries_and_reads(
    emu_server: TestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The SDK creates a parent and a linked child, finds the child by WIQL and reads its relations."""
    from azure.devops.v7_1.work_item_tracking.models import JsonPatchOperation, TeamContext, Wiql

    org_url = str(emu_server.make_url("/backlogd"))
    wit = await asyncio.to_thread(_sdk_client, org_url, monkeypatch, tmp_path)

    def create(type_name: str, title: str, parent_url: str | None = None) -> Any:
        ops = [JsonPatchOperation(op="add", path="/fields/System.Title", value=title)]
        ops.append(JsonPatchOperation(op="add", path="/fields/System.Tags", value=f"bk:{title}"))
        if parent_url:
            link = {"rel": "System.LinkTypes.Hierarchy-Reverse", "url": parent_url}
            ops.append(JsonPatchOperation(op="add", path="/relations/-", value=link))
        return wit.create_work_item(document=ops, project="Backlogd", type=type_name)

    feature = await asyncio.to_thread(create, "Feature", "F1")
    story = await asyncio.to_thread(create, "User Story", "S1", feature.url)
    assert story.fields["System.Parent"] == feature.id

    query = Wiql(
        query="SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
        "AND [System.Tags] CONTAINS 'bk:S1' ORDER BY [System.Id]"
    )
    result = await asyncio.to_thread(wit.query_by_wiql, query, TeamContext(project="Backlogd"))
    assert [ref.id for ref in result.work_items] == [story.id]

    fetched = await asyncio.to_thread(wit.get_work_item, story.id, "Backlogd", None, None, "Relations")
    assert fetched.fields["System.Title"] == "S1"
    assert fetched.relations[0].rel == "System.LinkTypes.Hierarchy-Reverse"
    assert fetched.relations[0].url.endswith(f"/workItems/{feature.id}")


def _sdk_connection(url: str, monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> Any:
    _sdk_client(url, monkeypatch, cache_dir)  # sets the in-memory caches
    from azure.devops.connection import Connection
    from msrest.authentication import BasicAuthentication

    return Connection(base_url=url, creds=BasicAuthentication("", PAT))


async def test_official_sdk_reads_work_items_in_a_batch(
    emu: Ado, emu_server: TestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The SDK's get_work_items_batch finds its route in OPTIONS _apis and returns the asked fields."""
    from azure.devops.v7_1.work_item_tracking.models import WorkItemBatchGetRequest

    ids = [(await emu.create("Task", {"System.Title": f"T{i}"})).json["id"] for i in range(3)]
    org_url = str(emu_server.make_url("/backlogd"))
    wit = await asyncio.to_thread(_sdk_client, org_url, monkeypatch, tmp_path)
    request = WorkItemBatchGetRequest(ids=ids, fields=["System.Id", "System.Title"])
    items = await asyncio.to_thread(wit.get_work_items_batch, request, "Backlogd")
    assert sorted((i.id, i.fields["System.Title"]) for i in items) == [
        (n, f"T{k}") for k, n in enumerate(ids)
    ]


async def test_official_sdk_lists_the_hidden_types(
    emu_server: TestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The type list has the hidden Test Plan, Test Suite and Shared Steps types (not on Basic)."""
    org_url = str(emu_server.make_url("/backlogd"))
    wit = await asyncio.to_thread(_sdk_client, org_url, monkeypatch, tmp_path)
    agile = {t.name for t in await asyncio.to_thread(wit.get_work_item_types, "Backlogd")}
    basic = {t.name for t in await asyncio.to_thread(wit.get_work_item_types, "BasicProj")}
    assert {"Test Plan", "Test Suite", "Shared Steps", "Test Case", "User Story"} <= agile
    assert basic == {"Epic", "Issue", "Task"}


async def test_older_test_client_gets_the_test_cases_of_a_suite(
    emu: Ado, emu_server: TestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The older test client's get_test_cases (GET …/test/Plans/{p}/suites/{s}/testcases) lists the cases."""
    base = "/backlogd/Backlogd/_apis/testplan/plans"
    plan = (await emu.request("POST", f"{base}?api-version=7.1", {"name": "P"})).json
    case = (await emu.create("Test Case", {"System.Title": "C"})).json["id"]
    root = plan["rootSuite"]["id"]
    added = await emu.request(
        "POST",
        f"/backlogd/Backlogd/_apis/test/Plans/{plan['id']}/suites/{root}/testcases/{case}?api-version=7.1",
    )
    assert added.status == 200
    connection = await asyncio.to_thread(
        _sdk_connection, str(emu_server.make_url("/backlogd")), monkeypatch, tmp_path
    )
    test = await asyncio.to_thread(connection.clients_v7_1.get_test_client)  # it asks the server
    cases = await asyncio.to_thread(test.get_test_cases, "Backlogd", plan["id"], root)
    assert [int(c.test_case.id) for c in cases] == [case]
