"""Emulator configuration: the org/projects it serves, accepted PATs, and the fault-injection knobs.

Faults are chosen per request from the route classes in `FaultConfig.routes` (create, update, wiql,
get, testplan, nodes, batch, meta, or "any"): either by probability (one seeded draw per matching
request) or every Nth matching call (`every_nth`). Precedence when several fire on one request is the
order of `FAULT_KINDS`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal[
    "reset",
    "throttle",
    "error_503",
    "error_500",
    "error_503_after",
    "lose_response",
    "delay",
    "slow",
    "warning",
]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "reset",
    "throttle",
    "error_503",
    "error_500",
    "error_503_after",
    "lose_response",
    "delay",
    "slow",
    "warning",
)
ROUTE_CLASSES = frozenset({"create", "update", "wiql", "get", "testplan", "nodes", "batch", "meta", "any"})
ProcessName = Literal["Agile", "Scrum", "CMMI", "Basic"]


class FaultConfig(BaseModel):
    """Deterministic (seeded) fault injection; all probabilities are in [0, 1]."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    throttle: float = Field(0.0, ge=0, le=1)  # 429 + Retry-After, nothing written
    delay: float = Field(0.0, ge=0, le=1)  # sleep delay_seconds, then 200 + X-RateLimit-Delay
    warning: float = Field(0.0, ge=0, le=1)  # 200 with Retry-After and low X-RateLimit-Remaining
    error_503: float = Field(0.0, ge=0, le=1)
    error_503_html: bool = False  # 503 body as an HTML page instead of TF10216 JSON
    error_500: float = Field(0.0, ge=0, le=1)  # 500 TF246020 before the write
    # The write commits, then Azure Front Door answers 503 because the origin was slow to respond.
    error_503_after: float = Field(0.0, ge=0, le=1)
    reset: float = Field(0.0, ge=0, le=1)  # connection dropped before processing
    lose_response: float = Field(0.0, ge=0, le=1)  # write committed, then the response is lost
    lose_response_mode: Literal["disconnect", "502"] = "disconnect"
    slow: float = Field(0.0, ge=0, le=1)  # write committed, response after slow_seconds
    every_nth: dict[FaultKind, int] = Field(default_factory=dict)  # fault fires on every Nth matching call
    limit: int | None = None  # stop injecting after this many faults
    retry_after_seconds: float = 1.0
    delay_seconds: float = 0.05
    slow_seconds: float = 1.0
    latency_seconds: float = 0.0  # added to every API request (benchmarks)
    early_grace_seconds: float = 0.0  # arrivals this soon after an announcement are not "early"
    enforce_retry_after: bool = False  # early arrivals from a throttled identity also get 429
    seed: int = 0
    routes: frozenset[str] = frozenset({"create"})
    # $batch atomicity: each item on its own, or one failure fails (and rolls back) the whole batch.
    batch_mode: Literal["independent", "whole-bulk-fails"] = "independent"
    batch_missing_entries: int = 0  # drop this many trailing entries from a $batch response
    wiql_lag_seconds: float = 0.0  # new items stay invisible to WIQL this long (eventual visibility)
    # A suite created while another is being saved under the same parent suite gets 409 TF26071.
    suite_conflicts: bool = False
    suite_save_seconds: float = 0.02  # how long a suite save holds its parent (the conflict window)
    node_lag_seconds: float = 0.0  # a new area/iteration is rejected (TF401347) this long after creation


class EmulatorConfig(BaseModel):
    """What the emulator serves; `pats=None` accepts any non-empty PAT."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    organization: str = "backlogd"
    projects: tuple[tuple[str, ProcessName], ...] = (("Backlogd", "Agile"),)
    pats: frozenset[str] | None = None
    control: bool = False  # the /_emulator/* test knobs (faults, state, reset); they need a PAT too
    expired_pats: frozenset[str] = frozenset()  # 401 AccessCheckException "token used has expired"
    faults: FaultConfig = FaultConfig()
    # Extra always-required fields per work item type name (rule fixture for TF401320).
    required_fields: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    base_url_override: str | None = None
    max_wiql_results: int = 20_000
    max_batch_items: int = 200
    link_changes_bump_rev: bool = False
    basic_test_types: bool = False  # Basic projects also have Test Plan/Suite/Case (added by the org)
    # The PAT's user may create area/iteration nodes (project administrators may; others get 403).
    node_admin: bool = True
    # The user has the Basic + Test Plans access level; without it plan and suite creation is refused.
    test_plans_access: bool = True
    # PAT → the scopes it was granted (vso.work, vso.work_write, vso.test, vso.test_write); a PAT not
    # listed has them all. A request outside its PAT's scopes gets 401.
    pat_scopes: dict[str, frozenset[str]] = Field(default_factory=dict)
