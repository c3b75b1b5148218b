"""Azure DevOps REST emulator: a real aiohttp app that behaves like the service for backlog uploads."""

from emulator.app import create_emulator_app
from emulator.config import EmulatorConfig, FaultConfig
from emulator.routing import EMULATOR_STATE
from emulator.state import EmulatorState

__all__ = ["EMULATOR_STATE", "EmulatorConfig", "EmulatorState", "FaultConfig", "create_emulator_app"]
