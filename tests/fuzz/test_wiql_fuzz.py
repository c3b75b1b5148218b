"""Fuzzing WIQL: the emulator's parser answers any text with a Query or its own WiqlError, and the ADO
client's key lookup (its WIQL string quoting) finds exactly the work item carrying the key, never one
with a neighbouring key, whatever characters the key holds."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import assume, given
from hypothesis import strategies as st

from emulator import wiql
from emulator.app import create_emulator_app
from emulator.config import EmulatorConfig
from outbox.ado.client import AdoClient
from outbox.ado.mapping import tag_of
from outbox.ado.types import AdoTarget, UploadItem
from tests.fakes.emulator_control import control_headers
from tests.fakes.gate import SimpleGate
from tests.fuzz.strategies import FEW, FUZZ, scalars

WORDS = ["SELECT", "FROM", "WorkItems", "WHERE", "AND", "OR", "NOT", "CONTAINS", "IN", "ORDER", "BY", "DESC"]
TOKENS = [*WORDS, "[System.Id]", "[System.Tags]", "[System.Title]", "@project", "@me", "=", "<>", "(", ")"]
token = st.one_of(
    st.sampled_from(TOKENS),
    st.text(alphabet="ab'\" ;,", max_size=8).map(lambda t: "'" + t.replace("'", "''") + "'"),
    st.integers(-(10**6), 10**6).map(str),
    st.text(alphabet="[]()'@=<>!,*. aZ9", max_size=6),
)
queries = st.one_of(
    st.lists(token, max_size=25).map(" ".join),
    st.lists(token, max_size=20).map(lambda t: "SELECT [System.Id] FROM WorkItems WHERE " + " ".join(t)),
    st.text(max_size=120),
)
fields = st.dictionaries(
    st.sampled_from(["System.Id", "System.Tags", "System.Title", "x"]), scalars, max_size=4
)


@FUZZ
@given(text=queries, item=fields)
def test_any_text_parses_or_raises_a_wiql_error(text: str, item: dict[str, Any]) -> None:
    """Any text is a Query or a WiqlError (the emulator's 400), and a parsed query evaluates to a bool."""
    try:
        query = wiql.parse(text)
    except wiql.WiqlError as exc:
        assert str(exc)
        return
    assert isinstance(wiql.matches(query.where, item, "Backlogd"), bool)


@pytest.mark.parametrize(
    "where", ["(" * 1500 + "[a] = 1" + ")" * 1500, "[a] = " + "9" * 5000], ids=["deep_parens", "long_int"]
)
def test_absurd_queries_are_wiql_errors(where: str) -> None:
    """Absurdly nested parentheses or a 5000-digit number give a WiqlError, not a crash."""
    with pytest.raises(wiql.WiqlError):
        wiql.parse(f"SELECT [System.Id] FROM WorkItems WHERE {where}")


# ----- the client's quoting, end to end against the emulator --------------------------------------


@dataclass
class Rig:
    session: aiohttp.ClientSession
    base: str
    client: AdoClient
    wiql_sent: list[str] = field(default_factory=list)  # every WIQL query the client sent, as sent

    async def reset(self) -> None:
        self.wiql_sent.clear()
        url, headers = f"{self.base}/_emulator/reset", control_headers("pat")
        async with self.session.post(url, headers=headers) as resp:
            assert resp.status == 200


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    server = TestServer(create_emulator_app(EmulatorConfig(pats=frozenset({"pat"}), control=True)))
    await server.start_server()
    sent: list[str] = []

    async def on_chunk(_: Any, __: Any, params: aiohttp.TraceRequestChunkSentParams) -> None:
        if params.url.path.endswith("/wiql") and params.chunk:
            sent.append(json.loads(params.chunk)["query"])

    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(on_chunk)
    try:
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            base = str(server.make_url("")).rstrip("/")
            target = AdoTarget(f"{base}/backlogd", "Backlogd", "pat", timeout_seconds=5.0)
            yield Rig(session, base, AdoClient(session, target, SimpleGate(4)), sent)
    finally:
        await server.close()


def _matches(query: str, key: str) -> bool:
    """Whether the query, as the emulator parses it, selects a work item tagged ``key``."""
    fields = {"System.TeamProject": "Backlogd", "System.Tags": f"{tag_of(key)}; bi-fuzz"}
    return wiql.matches(wiql.parse(query).where, fields, "Backlogd")


def _item(key: str) -> UploadItem:
    return UploadItem(id=key, job_id="job", kind="epic", title="An epic", body={}, key=key, run_tag="bi-fuzz")


keys = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=24
)


def _distinct(*raw: str) -> bool:
    tags = [tag_of(k).casefold() for k in raw]
    return all(tags) and len(set(tags)) == len(tags)


@FEW
@given(key=keys, suffix=st.sampled_from(["'", "''", "x", " x", "]", "%", "*", "\\"]))
async def test_a_key_finds_its_own_work_item_and_no_neighbour(rig: Rig, key: str, suffix: str) -> None:
    """Whatever a key's characters (quotes included), the WIQL lookup is accepted and matches only the
    work item tagged with that exact key: not one whose key extends it, nor one it extends."""
    longer, shorter = key + suffix, key[:-1]
    assume(_distinct(key, longer) and (not tag_of(shorter) or _distinct(key, longer, shorter)))
    await rig.reset()
    mine = await rig.client.upload(_item(key), reconcile=False)
    other = await rig.client.upload(_item(longer), reconcile=False)
    found = await rig.client.find_existing(_item(key))
    assert found is not None and found.ado_id == mine.ado_id
    [query] = rig.wiql_sent
    assert _matches(query, key) and not _matches(query, longer), query
    found_other = await rig.client.find_existing(_item(longer))
    assert found_other is not None and found_other.ado_id == other.ado_id
    if tag_of(shorter):
        assert await rig.client.find_existing(_item(shorter)) is None
