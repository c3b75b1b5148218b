"""Azure DevOps REST emulator: a real aiohttp app that behaves like the service for backlog uploads."""

from outbox.emulator.app import create_emulator_app
from outbox.emulator.config import EmulatorConfig, FaultConfig
from outbox.emulator.routing import EMULATOR_STATE
from outbox.emulator.state import EmulatorState

__all__ = ["EMULATOR_STATE", "EmulatorConfig", "EmulatorState", "FaultConfig", "create_emulator_app"]
