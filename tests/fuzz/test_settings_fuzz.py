"""Fuzzing the settings loader: any YAML file and any ``BACKLOGD_*`` overrides -> Settings or a
SettingsError naming where the bad value came from; never another exception."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import SettingsError
from service.settings import Settings, load_settings
from tests.fuzz.strategies import FUZZ, as_yaml, documents, scalars, values, yaml_noise

SECTIONS = ["server", "database", "llm", "workflow", "azure_devops", "progress", "logging", "limits", "x"]
KEYS = ["port", "host", "path", "provider", "max_attempts", "limits", "max_epics", "enabled", "level", "y"]
parts = st.sampled_from(SECTIONS + KEYS) | st.text(alphabet="abcXYZ_9", min_size=1, max_size=6)
env_keys = st.lists(parts, min_size=1, max_size=4).map(lambda p: "BACKLOGD_" + "__".join(p).upper())
env_values = st.one_of(st.text(max_size=30), yaml_noise, scalars.map(str))
shaped = st.dictionaries(
    st.sampled_from(SECTIONS), st.dictionaries(st.sampled_from(KEYS), values, max_size=4) | values, max_size=4
)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def _check(folder: Path, raw: bytes, env: dict[str, str]) -> None:
    path = folder / "settings.yaml"
    path.write_bytes(raw)
    try:
        loaded = load_settings(path, env)
    except SettingsError as exc:
        message = str(exc)
        assert str(path) in message or "environment variable BACKLOGD_" in message, message
    else:
        assert isinstance(loaded, Settings)


@FUZZ
@given(text=st.one_of(documents, shaped.map(as_yaml)), env=st.dictionaries(env_keys, env_values, max_size=4))
def test_any_file_and_overrides_give_settings_or_a_settings_error(
    folder: Path, text: str, env: dict[str, str]
) -> None:
    """A YAML file of any shape with any overrides loads, or fails with a SettingsError naming its source."""
    _check(folder, text.encode("utf-8", "surrogatepass"), env)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_any_bytes_give_settings_or_a_settings_error(folder: Path, raw: bytes) -> None:
    """A settings file of arbitrary bytes (binary, not UTF-8) loads or fails with a SettingsError."""
    _check(folder, raw, {})


@pytest.mark.parametrize(
    ("text", "env"),
    [
        ("server:\n  port: 2024-13-45\n", {}),
        ("llm:\n  max_attempts: !!int many\n", {}),
        ("", {"BACKLOGD_SERVER__PORT": "2024-13-45"}),
        ("", {"BACKLOGD_LLM__MAX_ATTEMPTS": "!!int many"}),
        ("a: " + "[" * 2000, {}),
    ],
)
def test_values_yaml_cannot_construct_are_settings_errors(
    folder: Path, text: str, env: dict[str, Any]
) -> None:
    """An impossible date, a bad explicit tag or absurd nesting is a SettingsError, not a traceback."""
    path = folder / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError, match=r"settings\.yaml|environment variable"):
        load_settings(path, env)
