"""Settings: the shipped file loads, env overrides apply, and bad input names its key and its source."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from service.errors import SettingsError
from service.settings import Settings, load_settings
from tests.conftest import REPO

SHIPPED = REPO / "config" / "settings.yaml"


def test_shipped_file_matches_the_model_defaults() -> None:
    """config/settings.yaml loads and lists exactly the defaults of the settings model."""
    assert load_settings(SHIPPED, {}) == Settings()


def test_every_knob_of_the_model_is_in_the_shipped_file() -> None:
    """Every section and key of the model appears in the shipped file (every knob documented)."""
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))

    def keys(model: BaseModel, prefix: str = "") -> set[str]:
        out: set[str] = set()
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                out |= keys(value, f"{prefix}{name}.")
            else:
                out.add(f"{prefix}{name}")
        return out

    def present(path: str) -> bool:
        node = data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    assert sorted(k for k in keys(Settings()) if not present(k)) == []


def test_env_override_nested_key() -> None:
    """BACKLOGD_WORKFLOW__LIMITS__MAX_EPICS=2 overrides the file's value as an integer."""
    settings = load_settings(SHIPPED, {"BACKLOGD_WORKFLOW__LIMITS__MAX_EPICS": "2"})
    assert settings.workflow.limits.max_epics == 2
    assert settings.workflow.limits.max_features_per_epic == Settings().workflow.limits.max_features_per_epic


def test_env_values_are_yaml_scalars() -> None:
    """Env values parse as YAML scalars: booleans, floats and null."""
    settings = load_settings(
        SHIPPED,
        {
            "BACKLOGD_WORKFLOW__INCLUDE_QA": "false",
            "BACKLOGD_LLM__TEMPERATURE": "0.5",
            "BACKLOGD_LLM__API_KEY_ENV": "null",
        },
    )
    assert (settings.workflow.include_qa, settings.llm.temperature, settings.llm.api_key_env) == (
        False,
        0.5,
        None,
    )


def test_config_path_from_env(tmp_path: Path) -> None:
    """BACKLOGD_CONFIG chooses the file when no path is given."""
    path = tmp_path / "s.yaml"
    path.write_text("llm:\n  model: local-model\n", encoding="utf-8")
    assert load_settings(None, {"BACKLOGD_CONFIG": str(path)}).llm.model == "local-model"


def test_bad_value_names_the_key_and_the_file(tmp_path: Path) -> None:
    """A bad value in the file raises SettingsError naming the dotted key, the file and the value."""
    path = tmp_path / "s.yaml"
    path.write_text("llm:\n  max_concurrency: -3\n", encoding="utf-8")
    with pytest.raises(SettingsError) as err:
        load_settings(path, {})
    assert str(path) in str(err.value) and "llm.max_concurrency" in str(err.value) and "-3" in str(err.value)


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    """A bad value from the environment names the variable, not the file."""
    with pytest.raises(SettingsError) as err:
        load_settings(SHIPPED, {"BACKLOGD_LLM__PROVIDER": "claude"})
    assert "environment variable BACKLOGD_LLM__PROVIDER" in str(err.value) and "llm.provider" in str(
        err.value
    )


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    """A misspelt key is an error naming it, never silently ignored."""
    path = tmp_path / "s.yaml"
    path.write_text("workflow:\n  limits:\n    max_epic: 2\n", encoding="utf-8")
    with pytest.raises(SettingsError) as err:
        load_settings(path, {})
    assert "workflow.limits.max_epic" in str(err.value)


@pytest.mark.parametrize(
    ("text", "reason"), [("llm: [unclosed", "not valid YAML"), ("- a\n- b\n", "must be a mapping")]
)
def test_unreadable_file_is_rejected(tmp_path: Path, text: str, reason: str) -> None:
    """A file that is not a YAML mapping is a SettingsError naming the file."""
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError, match=reason) as err:
        load_settings(path, {})
    assert str(path) in str(err.value)


def test_missing_default_file_gives_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no --config and no default file present, the defaults apply (an explicit path must exist)."""
    monkeypatch.chdir(tmp_path)
    assert load_settings(None, {}) == Settings()
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "missing.yaml", {})


def test_field_defaults_and_iteration_dates_load_from_yaml_and_env(tmp_path: Path) -> None:
    """field_defaults (type → field → value) and the iteration dates load; dates go together, in order."""
    path = tmp_path / "s.yaml"
    path.write_text(
        "azure_devops:\n  field_defaults: {User Story: {Custom.Team: Payroll}}\n"
        "  iteration_start: 2026-01-05\n  iteration_finish: 2026-01-16\n",
        encoding="utf-8",
    )
    ado = load_settings(path, {}).azure_devops
    assert ado.field_defaults == {"User Story": {"Custom.Team": "Payroll"}}
    assert (ado.iteration_start.isoformat(), ado.iteration_finish.isoformat()) == ("2026-01-05", "2026-01-16")
    with pytest.raises(SettingsError, match="set both or neither"):
        load_settings(path, {"BACKLOGD_AZURE_DEVOPS__ITERATION_FINISH": "null"})
    with pytest.raises(SettingsError, match="before iteration_start"):
        load_settings(path, {"BACKLOGD_AZURE_DEVOPS__ITERATION_FINISH": "2026-01-01"})


@pytest.mark.parametrize("text", ["~: 1\n", "1: x\n", "null: {}\n"])
def test_a_top_level_key_that_is_not_a_word_is_a_settings_error(tmp_path: Path, text: str) -> None:
    """A file whose top level has a null or a number for a key names the key and the file (Hypothesis
    found `~:` crashing the settings library with an AttributeError)."""
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError, match="is not a section name") as caught:
        load_settings(path, {})
    assert str(path) in str(caught.value)
