"""Fuzzing ``POST /api/jobs`` with bad visions: a 400 (or 413) JSON error naming the problem, and
nothing written: no job row, no event."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from service.composition import Services, build_services
from service.settings import AzureDevOpsSettings, DatabaseSettings, ServerSettings, Settings
from tests.fuzz.strategies import FEW, scalars, values
from web.app import create_app

blank = st.text(alphabet=" \t\n\r", max_size=12)
no_sentence = st.builds(lambda pad, c: pad + c + pad, blank, st.characters(codec="utf-8"))
bad_texts = blank | no_sentence
bad_mappings = st.one_of(
    st.fixed_dictionaries({"vision": bad_texts | scalars.filter(lambda v: not isinstance(v, str))}),
    st.fixed_dictionaries({"title": st.text(max_size=20)}),  # no vision at all
    st.fixed_dictionaries({"vision": st.just("Customers book repairs online."), "colour": values}),
)
bad_visions = st.one_of(
    bad_texts, bad_mappings, scalars.filter(lambda v: not isinstance(v, str)), st.lists(values)
)
not_a_mapping_yaml = st.sampled_from(
    ["- a list\n- of things\n", "42\n", "'just a string'\n", "[1, 2]\n", ": :\n"]
)


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings(
        database=DatabaseSettings(path=str(tmp_path / "backlogd.sqlite3")),
        azure_devops=AzureDevOpsSettings(target="none"),
        # this test is about input validation: keep the per-client job rate limit out of its way
        server=ServerSettings(jobs_per_client_per_minute=1_000_000),
    )
    async with build_services(settings, {}) as built:
        yield built


@pytest.fixture
async def client(aiohttp_client: Any, services: Services) -> TestClient[Any, Any]:
    result: TestClient[Any, Any] = await aiohttp_client(create_app(services.settings, services))
    return result


async def _rejected(client: TestClient[Any, Any], services: Services, body: Any, query: str = "") -> None:
    data = io.BytesIO(json.dumps(body).encode())  # large bodies as a stream, as aiohttp asks
    resp = await client.post(f"/api/jobs{query}", data=data, headers={"Content-Type": "application/json"})
    payload = await resp.json()
    assert resp.status in (400, 413), payload
    assert payload["error"]["code"] and payload["error"]["message"]
    assert await services.store.list_jobs(10) == [], "a rejected job leaves no row behind"


@FEW
@given(vision=bad_visions)
async def test_a_bad_vision_is_a_400_and_writes_nothing(
    client: TestClient[Any, Any], services: Services, vision: Any
) -> None:
    """Blank or sentence-less text, a mapping without a usable vision or with unknown keys, or a value of
    the wrong type: 400 with a JSON error, and no job row."""
    await _rejected(client, services, {"vision": vision})


@FEW
@given(text=not_a_mapping_yaml | bad_texts)
async def test_a_bad_vision_file_is_a_400_and_writes_nothing(
    client: TestClient[Any, Any], services: Services, text: str
) -> None:
    """A vision file (``vision_format=yaml``) that is not a mapping, or is blank: 400, no job row."""
    await _rejected(client, services, {"vision": text}, "?vision_format=yaml")


async def test_an_oversized_vision_or_body_writes_nothing(
    client: TestClient[Any, Any], services: Services
) -> None:
    """A vision over 256 KB is a 400 and a body over the server's limit a 413; neither writes a job."""
    await _rejected(client, services, {"vision": "Customers book repairs online. " * 9000})
    await _rejected(client, services, {"vision": "Customers book repairs online. " * 40000})
