"""Where ``service.settings`` reads from: the ``BACKLOGD_*`` variables of a given mapping and the YAML
file, as pydantic-settings sources. ``load_settings`` sets ``LOADING`` while it builds ``Settings``."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, YamlConfigSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from service.errors import SettingsError

ENV_PREFIX = "BACKLOGD_"


@dataclass(frozen=True)
class Inputs:
    path: Path
    env: Mapping[str, str]


LOADING: ContextVar[Inputs | None] = ContextVar("settings_inputs", default=None)


class EnvSource(EnvSettingsSource):
    """``BACKLOGD_*`` from the given mapping (not always ``os.environ``); lists and mappings in YAML."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._given = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        given = {k: v for k, v in self._given.items() if k.startswith(ENV_PREFIX)}
        return parse_env_vars(given, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return yaml.safe_load(value)  # JSON is YAML too
        except (yaml.YAMLError, ValueError, RecursionError):  # not YAML: validation says what is wrong
            return value


class YamlSource(YamlConfigSettingsSource):
    """The settings file; what is not a YAML mapping is a SettingsError naming the file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls, yaml_file=path)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            data = yaml.safe_load(Path(file_path).read_text(encoding="utf-8"))
        except (yaml.YAMLError, ValueError, RecursionError) as exc:  # ValueError: bad dates, !!int tags
            raise SettingsError(f"{file_path}: not valid YAML: {' '.join(str(exc).split())}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise SettingsError(f"{file_path}: the top level must be a mapping of sections")
        odd = next((key for key in data if not isinstance(key, str)), None)
        if odd is not None or None in data:  # `~:` or `1:` — no section is named so
            raise SettingsError(f"{file_path}: {odd!r} is not a section name (sections are words)")
        return data
