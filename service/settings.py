"""Settings: one YAML file, overridden by ``BACKLOGD_<SECTION>__<KEY>`` environment variables,
validated once into frozen models and passed down. Nothing else reads the environment for config.

Nested keys use more ``__``: ``BACKLOGD_WORKFLOW__LIMITS__MAX_EPICS=3``. Values are parsed as YAML
scalars (``true``, ``3``, ``0.5``, ``null``). Secrets are never in the file: it names the environment
variable (or systemd credential) to read them from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from service.errors import SettingsError
from service.org_urls import normal_org_url, upload_url_problem
from vocab.options import Limits

ENV_PREFIX = "BACKLOGD_"
DEFAULT_CONFIG = "config/settings.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    api_token_env: str | None = None
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    max_concurrent_jobs: int = Field(default=4, ge=1)
    max_queued_jobs: int = Field(default=50, ge=0)  # waiting for a slot; past this POST /api/jobs is 429
    max_vision_bytes: int = Field(default=262_144, gt=0)  # the vision's UTF-8 size (413 above)
    jobs_per_client_per_minute: int = Field(default=30, ge=1)  # POST /api/jobs per client address (429)
    sse_connections_per_client: int = Field(default=64, ge=1)  # open progress streams per address (429)
    session_hours: float = Field(default=12.0, gt=0)  # lifetime of the UI's login cookie
    # Host header names the service answers to (421 otherwise); null = the bound address, localhost
    # and 127.0.0.1 (a defence against DNS rebinding).
    allowed_hosts: tuple[str, ...] | None = None

    def answers_to(self) -> frozenset[str]:
        """The host names (no port, lower case, IPv6 without brackets) a request's Host may carry."""
        if self.allowed_hosts is not None:
            return frozenset(h.strip().strip("[]").lower() for h in self.allowed_hosts)
        return frozenset({self.host.strip("[]").lower(), "localhost", "127.0.0.1"})


class DatabaseSettings(_Section):
    path: str = "state/backlogd.sqlite3"
    # postgresql://user@host/db: several instances share it (see README "Running several instances").
    # The password, if any, comes from the URL's environment (PGPASSWORD) or ~/.pgpass, never YAML.
    url: str | None = Field(default=None, pattern=r"^postgres(ql)?://")
    lease_seconds: float = Field(default=15.0, gt=0)  # a dead instance's jobs move on after this
    poll_seconds: float = Field(default=2.0, gt=0)  # fallback when a notification was missed


class LLMSettings(_Section):
    provider: Literal["offline", "openai"] = "offline"
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    api_key_env: str | None = "OPENAI_API_KEY"
    azure_api_version: str | None = None
    structured_output: Literal["auto", "json_schema", "json_object", "prompt"] = "auto"
    timeout_seconds: float = Field(default=120.0, gt=0)
    call_budget_seconds: float = Field(default=600.0, gt=0)  # one call's wall time, throttles included
    max_attempts: int = Field(default=4, ge=1, le=20)
    max_concurrency: int = Field(default=16, ge=1)
    requests_per_minute: float = Field(default=600.0, gt=0)
    max_tokens: int = Field(default=4096, ge=64)
    temperature: float = Field(default=0.2, ge=0, le=2)


class ParallelProcessing(_Section):
    enabled: bool = True
    use_hardware_optimization: bool = True
    max_workers: int | None = Field(default=None, ge=1)
    rate_limit_per_second: float | None = Field(default=None, gt=0)


class QualitySettings(_Section):
    max_regenerations: int = Field(default=1, ge=0, le=5)
    near_duplicate_threshold: float = Field(default=0.9, gt=0, le=1)


class WorkflowSettings(_Section):
    include_qa: bool = True
    pipeline: Literal["dag", "stages"] = "dag"
    limits: Limits = Limits()
    parallel_processing: ParallelProcessing = ParallelProcessing()
    quality: QualitySettings = QualitySettings()


class AzureDevOpsSettings(_Section):
    target: Literal["emulator", "ado", "none"] = "emulator"
    organization_url: str = ""
    project: str = "Backlogd"
    pat_env: str = "AZURE_DEVOPS_PAT"
    area_path: str = ""
    iteration_path: str = ""
    upload_mode: Literal["streaming", "after_generation", "manual"] = "streaming"
    staging_batch_size: int = Field(default=200, ge=1, le=5000)
    upload_retry_attempts: int = Field(default=8, ge=1, le=100)
    upload_timeout_seconds: float = Field(default=60.0, gt=0)
    max_concurrency: int = Field(default=8, ge=1)
    lease_seconds: float = Field(default=120.0, gt=0)
    emulator_port: int = Field(default=0, ge=0, le=65535)
    emulator_process: Literal["Agile", "Scrum", "CMMI", "Basic"] = "Agile"
    # work item type → field reference → value: fills fields an (inherited) process makes always required
    field_defaults: dict[str, dict[str, str | int | float | bool]] = Field(default_factory=dict)
    iteration_start: date | None = None  # dates given to an iteration backlogd creates (both or neither)
    iteration_finish: date | None = None

    @model_validator(mode="after")
    def _iteration_dates(self) -> AzureDevOpsSettings:
        start, finish = self.iteration_start, self.iteration_finish
        if (start is None) != (finish is None):
            raise ValueError("iteration_start and iteration_finish go together: set both or neither")
        if start is not None and finish is not None and finish < start:
            raise ValueError("iteration_finish is before iteration_start")
        return self

    # organizations a job may name in azure_devops.organization_url; empty = only organization_url
    allowed_organizations: tuple[str, ...] = ()

    @field_validator("organization_url")
    @classmethod
    def _org_url_scheme(cls, value: str) -> str:
        return upload_url_problem_or(value) if value else value

    @field_validator("allowed_organizations")
    @classmethod
    def _allowed_schemes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(upload_url_problem_or(v) for v in value)

    def allowed_upload_organizations(self) -> frozenset[str]:
        """Normalised organization URLs a job may upload to (the configured one is always allowed)."""
        allowed = {normal_org_url(u) for u in self.allowed_organizations}
        if self.organization_url:
            allowed.add(normal_org_url(self.organization_url))
        return frozenset(allowed)


class EmulatorSettings(_Section):
    # the /_emulator/* control routes (faults, state, reset) exist only when true, and even then
    # answer only to the emulator's PAT
    control: bool = False


class ProgressSettings(_Section):
    enable_sse: bool = True
    heartbeat_seconds: float = Field(default=15.0, gt=0)
    retry_ms: int = Field(default=2000, ge=100)
    client_queue_size: int = Field(default=256, ge=8)


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    llm: LLMSettings = LLMSettings()
    workflow: WorkflowSettings = WorkflowSettings()
    azure_devops: AzureDevOpsSettings = AzureDevOpsSettings()
    progress: ProgressSettings = ProgressSettings()
    logging: LoggingSettings = LoggingSettings()
    emulator: EmulatorSettings = EmulatorSettings()


def upload_url_problem_or(url: str) -> str:
    """The URL itself, or a ValueError saying why uploads may not go there."""
    problem = upload_url_problem(url)
    if problem:
        raise ValueError(problem)
    return url


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the YAML file (if it exists), apply env overrides, validate. Raises SettingsError."""
    env = os.environ if env is None else env
    where = str(path or env.get("BACKLOGD_CONFIG") or DEFAULT_CONFIG)
    data = _read_yaml(Path(where), explicit=path is not None or "BACKLOGD_CONFIG" in env)
    for key, value in env.items():
        if key.startswith(ENV_PREFIX) and "__" in key:
            _apply_override(data, key, value)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        source = _source_of(loc, env, where)
        raise SettingsError(f"{source}: {loc}: {err['msg']} (got {err.get('input')!r})") from None


def _read_yaml(path: Path, explicit: bool) -> dict[str, Any]:
    if not path.exists():
        if explicit:
            raise SettingsError(f"{path}: settings file not found")
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # ValueError: bad dates, !!int tags
        raise SettingsError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: the top level must be a mapping of sections")
    return data


def _apply_override(data: dict[str, Any], key: str, raw: str) -> None:
    parts = [p.lower() for p in key[len(ENV_PREFIX) :].split("__")]
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except (yaml.YAMLError, ValueError, RecursionError):  # not a YAML scalar: keep the text as given
        value = raw
    node[parts[-1]] = value


def _source_of(loc: str, env: Mapping[str, str], path: str) -> str:
    env_key = ENV_PREFIX + loc.upper().replace(".", "__")
    return f"environment variable {env_key}" if env_key in env else path
