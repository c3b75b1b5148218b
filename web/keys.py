"""Every resource the application holds, as typed ``web.AppKey``s."""

from __future__ import annotations

import asyncio

from aiohttp import web

from service.composition import Services
from service.settings import Settings
from web.streams import StreamRegistry

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
STREAMS = web.AppKey("streams", StreamRegistry)
DRAINING = web.AppKey("draining", asyncio.Event)  # set once shutdown begins: /readyz fails, streams end
