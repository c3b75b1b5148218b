"""The emulator's control routes (``/_emulator/*``) answer only to its PAT, and only when it was started
with ``control=True`` (setting ``emulator.control: true``): the header every test sends them."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp

from emulator.server import RunningEmulator


def control_headers(pat: str) -> dict[str, str]:
    token = base64.b64encode(f":{pat}".encode()).decode()
    return {"Authorization": f"Basic {token}", "X-TFS-FedAuthRedirect": "Suppress"}


async def emulator_state(emulator: RunningEmulator) -> dict[str, Any]:
    """``GET /_emulator/state`` of a running emulator, with its PAT."""
    url, headers = f"{emulator.base_url}/_emulator/state", control_headers(emulator.pat or "any")
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        return data


async def set_faults(emulator: RunningEmulator, faults: dict[str, Any]) -> None:
    """``POST /_emulator/faults`` of a running emulator, with its PAT."""
    url, headers = f"{emulator.base_url}/_emulator/faults", control_headers(emulator.pat or "any")
    async with aiohttp.ClientSession() as session, session.post(url, json=faults, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
