"""Value types of the ADO client: the target, one item to upload, its result, the project's process."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AdoTarget:
    """Where to upload; ``pat`` is the secret itself and never appears in ``repr``."""

    organization_url: str
    project: str
    pat: str = field(repr=False)
    area_path: str = ""
    iteration_path: str = ""
    timeout_seconds: float = 60.0
    # work item type name → field reference → value, for fields a process makes always required
    field_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    iteration_start: str | None = None  # ISO dates given to a newly created iteration
    iteration_finish: str | None = None
    node_settle_seconds: float = 30.0  # how long TF401347 on a node we just created is retried
    node_retry_seconds: float = 1.0  # the wait between those retries

    def defaults_for(self, type_name: str) -> Mapping[str, Any]:
        """The configured values for a type (type names compare case-insensitively)."""
        wanted = type_name.casefold()
        return next((v for k, v in self.field_defaults.items() if k.casefold() == wanted), {})


@dataclass(frozen=True)
class UploadItem:
    """One outbox row to upload (``body`` is the persisted row format of its kind).

    ``parent_ado_id``: feature→epic, story→feature, task→story (Hierarchy parent); test_case→story
    (TestedBy); test_plan→feature (informational); test_suite→story (requirementId).
    ``refs``: test_suite {"plan_id", "root_suite_id"}; test_case {"plan_id", "suite_id"}.
    ``existing_ado_id``: an earlier attempt created it; only the remaining steps are done.
    ``rev``: set for an update of the uploaded work item ``existing_ado_id`` (written at that revision,
    with ``written`` the owned fields as we wrote them then).
    """

    id: str
    job_id: str
    kind: str
    title: str
    body: dict[str, Any]
    key: str
    run_tag: str
    parent_ado_id: int | None = None
    refs: dict[str, int] = field(default_factory=dict)
    existing_ado_id: int | None = None
    rev: int | None = None
    written: dict[str, Any] = field(default_factory=dict)

    @property
    def is_update(self) -> bool:
        return self.rev is not None and self.existing_ado_id is not None


@dataclass(frozen=True)
class Uploaded:
    """The ADO side of an uploaded item: its id, browser URL, revision and extra ids (root suite);
    ``written``: the owned fields as they now are in the work item (what a later update compares)."""

    ado_id: int
    url: str
    rev: int
    extra: dict[str, int] = field(default_factory=dict)
    written: dict[str, Any] | None = None


@dataclass(frozen=True)
class FieldInfo:
    """What the service told us about one field of one work item type."""

    ref: str
    always_required: bool = False
    allowed: tuple[Any, ...] = ()
    name: str = ""
    has_default: bool = False  # the process fills it when a create leaves it out


@dataclass(frozen=True)
class ProcessProfile:
    """The project's process as discovered: type name per kind (None = unsupported) and fields per type."""

    process: str
    project_id: str
    project_name: str
    type_names: Mapping[str, str | None]
    fields: Mapping[str, Mapping[str, FieldInfo]]
    area_path: str = ""
    iteration_path: str = ""
    field_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # per type, fillable

    def type_for(self, kind: str) -> str | None:
        return self.type_names.get(kind)

    @property
    def flat_hierarchy(self) -> bool:
        """Basic: features are Epics too, and an Epic under an Epic is not shown on its boards."""
        return self.type_for("feature") is not None and self.type_for("feature") == self.type_for("epic")

    def required_fields(self, type_name: str) -> list[str]:
        return sorted(ref for ref, info in self.fields.get(type_name, {}).items() if info.always_required)

    def has_field(self, type_name: str, ref: str) -> bool:
        return ref in self.fields.get(type_name, {})

    def allowed(self, type_name: str, ref: str) -> tuple[Any, ...]:
        info = self.fields.get(type_name, {}).get(ref)
        return info.allowed if info else ()
