"""Settings: one YAML file, overridden by ``BACKLOGD_<SECTION>__<KEY>`` environment variables,
validated once into frozen models and passed down. Nothing else reads the environment for config.

pydantic-settings reads both (``load_settings``): nested keys use more ``__``
(``BACKLOGD_WORKFLOW__LIMITS__MAX_EPICS=3``); a value is validated like the file's (``true``, ``3``,
``0.5``; ``null`` is None; a list or mapping is written in YAML or JSON). ``Settings()`` alone is the
defaults, whatever the environment holds. Secrets are never in the file: it names the environment
variable (or systemd credential) to read them from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from service.errors import SettingsError
from service.org_urls import normal_org_url, upload_url_problem
from service.settings_sources import ENV_PREFIX, LOADING, EnvSource, Inputs, YamlSource
from vocab.options import Limits

_SECRET_KEYS = frozenset({"notifications.webhook_url"})  # never echoed in an error
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
    # The address people open the page at (behind a proxy, a TLS terminator): links in notifications
    # start with it. Null: http://host:port of the bound address.
    public_url: str | None = Field(default=None, pattern=r"^https?://")

    def page_url(self) -> str:
        """Where the web page is, without a trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

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
    upload_mode: Literal["streaming", "after_generation", "manual", "review"] = "streaming"
    # what DELETE ...?in_ado=true does to an uploaded work item: close it, or move it to the recycle bin
    delete_action: Literal["close", "remove"] = "close"
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


class NotificationSettings(_Section):
    """A Slack or Teams incoming webhook told when a job awaits review, finishes or fails. Set by the
    operator only (a job request cannot name one); the URL carries a token, so it is a secret: keep it
    out of the file with ``BACKLOGD_NOTIFICATIONS__WEBHOOK_URL``. Only its host is ever logged."""

    webhook_url: SecretStr | None = None
    max_attempts: int = Field(default=5, ge=1, le=20)
    retry_base_seconds: float = Field(default=2.0, gt=0)  # doubled after each failed attempt
    retry_max_seconds: float = Field(default=300.0, gt=0)  # also caps a Retry-After
    timeout_seconds: float = Field(default=10.0, gt=0)
    queue_size: int = Field(default=100, ge=1)  # notifications waiting; past it the newest is dropped

    @field_validator("webhook_url")
    @classmethod
    def _http_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("webhook_url must be an http(s) URL")
        return value


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_parse_none_str="null",
    )

    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    llm: LLMSettings = LLMSettings()
    workflow: WorkflowSettings = WorkflowSettings()
    azure_devops: AzureDevOpsSettings = AzureDevOpsSettings()
    progress: ProgressSettings = ProgressSettings()
    logging: LoggingSettings = LoggingSettings()
    emulator: EmulatorSettings = EmulatorSettings()
    notifications: NotificationSettings = NotificationSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then the file; outside ``load_settings`` arguments only."""
        inputs = LOADING.get()
        if inputs is None:
            return (init_settings,)
        return (init_settings, EnvSource(settings_cls, inputs.env), YamlSource(settings_cls, inputs.path))


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
    file = Path(where)
    if not file.is_file() and (path is not None or "BACKLOGD_CONFIG" in env):
        raise SettingsError(f"{file}: settings file not found")
    _check_sections(env)
    token = LOADING.set(Inputs(file, env))
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        source = _source_of(loc, env, where)
        got = "a hidden value" if loc in _SECRET_KEYS else repr(err.get("input"))
        raise SettingsError(f"{source}: {loc}: {err['msg']} (got {got})") from None
    finally:
        LOADING.reset(token)


def _check_sections(env: Mapping[str, str]) -> None:
    """A ``BACKLOGD_<SECTION>__…`` variable naming no section is an error, never silently ignored."""
    for key in env:
        section = key[len(ENV_PREFIX) :].partition("__")[0].lower()
        if key.startswith(ENV_PREFIX) and "__" in key and section not in Settings.model_fields:
            raise SettingsError(f"environment variable {key}: there is no settings section {section!r}")


def _source_of(loc: str, env: Mapping[str, str], path: str) -> str:
    env_key = ENV_PREFIX + loc.upper().replace(".", "__")
    return f"environment variable {env_key}" if env_key in env else path
