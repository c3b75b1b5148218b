"""What a job runs with, as stored with it: its limits and its resolved options. Data only.

They live here, below both ``service`` (which resolves them from a request and the settings) and
``outbox`` (which stores them with the job and hands them back as models).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Limits(BaseModel):
    """How many items each stage may make (``workflow.limits`` in the settings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_epics: int = Field(default=3, ge=1, le=50)
    max_features_per_epic: int = Field(default=4, ge=1, le=50)
    max_stories_per_feature: int = Field(default=4, ge=1, le=50)
    max_tasks_per_story: int = Field(default=4, ge=1, le=50)
    max_test_cases_per_story: int = Field(default=3, ge=1, le=50)

    def cap(self, name: str) -> int:
        """The limit a stage names (``StageDef.limit``: one of the fields above)."""
        return int(getattr(self, name))


class JobOptions(BaseModel):
    """What a job runs with: the request merged over the settings. Never holds a secret."""

    model_config = ConfigDict(frozen=True)

    limits: Limits
    include_qa: bool
    upload_mode: Literal["streaming", "after_generation", "manual", "review"]
    target: Literal["emulator", "ado", "none"]
    organization_url: str
    project: str
    area_path: str
    iteration_path: str
    provider: str
    # "request": the job came with its own PAT (held in memory only); after a restart it waits in
    # needs_credentials for that PAT again instead of falling back to the server's PAT.
    pat_source: Literal["settings", "request"] = "settings"
    update_of: str | None = None  # the job whose backlog this one updates

    @property
    def holds_items(self) -> bool:
        """Generated items wait (held) for a release: anything but streaming, and every re-run (its
        items are matched to the previous job's work items before any is uploaded)."""
        return not (self.uploading and self.upload_mode == "streaming" and self.update_of is None)

    @property
    def uploading(self) -> bool:
        return self.target != "none"
