"""The reliability suite runs reduced in ``make test``; ``--soak`` (or ``BACKLOGD_SOAK=1``) runs it at
the full size of ``make soak``."""

from __future__ import annotations

import os

import pytest

SOAK_ENV = "BACKLOGD_SOAK"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak", action="store_true", default=False, help="run the reliability suite at full (soak) size"
    )


@pytest.fixture
def soak(request: pytest.FixtureRequest) -> bool:
    """True when the full-size soak was asked for (``--soak`` or ``BACKLOGD_SOAK=1``)."""
    return bool(request.config.getoption("--soak")) or os.environ.get(SOAK_ENV, "") not in ("", "0")
