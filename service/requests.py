"""A request for a job (from ``POST /api/jobs`` or ``backlogd run``), validated at the edge, and the
options it resolves to once the settings fill in what the request left out. Options are stored
with the job; a per-job PAT is not an option: it is held in memory only.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictBool, StrictInt

from service.settings import Settings
from vocab.options import JobOptions


class AdoRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    organization_url: str | None = Field(default=None, max_length=500)
    project: str | None = Field(default=None, min_length=1, max_length=200)
    area_path: str | None = Field(default=None, max_length=500)
    iteration_path: str | None = Field(default=None, max_length=500)
    pat: SecretStr | None = None
    target: Literal["emulator", "ado", "none"] | None = None


class LimitsRequest(BaseModel):
    """Integers as JSON integers: ``true`` or ``"3"`` is a 400, not 1 or 3."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_epics: StrictInt | None = Field(default=None, ge=1, le=50)
    max_features_per_epic: StrictInt | None = Field(default=None, ge=1, le=50)
    max_stories_per_feature: StrictInt | None = Field(default=None, ge=1, le=50)
    max_tasks_per_story: StrictInt | None = Field(default=None, ge=1, le=50)
    max_test_cases_per_story: StrictInt | None = Field(default=None, ge=1, le=50)


class JobRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    vision: str | dict[str, Any]
    azure_devops: AdoRequest = AdoRequest()
    limits: LimitsRequest = LimitsRequest()
    include_qa: StrictBool | None = None  # "yes" or 1 is a 400, not true
    upload_mode: Literal["streaming", "after_generation", "manual", "review"] | None = None
    # a re-run: update that job's backlog (match its work items) instead of uploading a second copy
    update_of: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="update this earlier job's backlog (same organization and project, generation"
        " finished): unchanged items keep their work items, changed ones update them, new ones are"
        " created, vanished ones are listed to close",
    )
    new_copy: StrictBool = Field(
        default=False, description="make a second copy of a vision an earlier job already uploaded"
    )


def resolve_options(request: JobRequest, settings: Settings) -> JobOptions:
    ado, req = settings.azure_devops, request.azure_devops
    limits = settings.workflow.limits.model_copy(update=request.limits.model_dump(exclude_none=True))
    return JobOptions(
        limits=limits,
        include_qa=settings.workflow.include_qa if request.include_qa is None else request.include_qa,
        upload_mode=request.upload_mode or ado.upload_mode,
        target=req.target or ado.target,
        organization_url=req.organization_url or ado.organization_url,
        project=req.project or ado.project,
        area_path=req.area_path if req.area_path is not None else ado.area_path,
        iteration_path=req.iteration_path if req.iteration_path is not None else ado.iteration_path,
        provider=settings.llm.provider,
        pat_source="request" if req.pat is not None else "settings",
        update_of=request.update_of,
    )
