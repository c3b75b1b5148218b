"""The review, edit and conflict flow of ``test_items_api.py`` on PostgreSQL: both store backends
behave the same (the edits' statements are written once and numbered for PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from outbox.pg.store import PgStore
from service.composition import Services, build_services
from service.settings import Settings
from tests.web import test_items_api as flows
from tests.web.conftest import make_settings


@pytest.fixture
def settings(tmp_path: Path, pg_url: str) -> Settings:
    base = make_settings(tmp_path, emulator={"control": True})
    return base.model_copy(update={"database": base.database.model_copy(update={"url": pg_url})})


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with build_services(settings, {}, backoff_base=0.01) as built:
        assert isinstance(built.store, PgStore)
        yield built


async def test_review_then_upload_on_postgresql(client: Any, services: Services) -> None:
    """Review mode, one epic then the rest, on PostgreSQL."""
    await flows.test_review_mode_uploads_nothing_until_asked_then_one_epic_then_the_rest(client, services)


async def test_edits_before_upload_on_postgresql(client: Any, services: Services) -> None:
    """Validated, audited, published edits of held items, on PostgreSQL."""
    await flows.test_edits_before_upload_are_validated_audited_and_published(client, services)


async def test_edit_after_upload_on_postgresql(client: Any, services: Services) -> None:
    """An edit after upload is the same work item at rev + 1 within 2 s, on PostgreSQL."""
    await flows.test_an_edit_after_upload_updates_the_same_work_item_within_two_seconds(client, services)


async def test_conflict_on_postgresql(client: Any, services: Services) -> None:
    """A change made in Azure DevOps meanwhile is a 409 conflict, theirs then kept, on PostgreSQL."""
    await flows.test_a_change_in_ado_meanwhile_is_a_409_conflict_and_keep_theirs_adopts_it(client, services)


async def test_add_and_delete_on_postgresql(client: Any, services: Services) -> None:
    """Adding and deleting items (closing their work items when asked), on PostgreSQL."""
    await flows.test_add_and_delete_items_with_and_without_azure_devops(client, services)
