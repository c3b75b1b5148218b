"""A product vision as the job keeps it: its texts and its numbered sentences. Data only; reading a
vision from text or YAML is ``stages.vision``'s work."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

# What a vision's author writes; the numbered sentences are derived from them.
TEXT_FIELDS = ("title", "domain", "vision", "target_users", "key_features", "success_metrics", "constraints")


class Sentence(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    section: str
    text: str


class Vision(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str = ""
    domain: str = ""
    vision: str
    target_users: tuple[str, ...] = ()
    key_features: tuple[str, ...] = ()
    success_metrics: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    sentences: tuple[Sentence, ...] = ()

    def sentence(self, sid: str) -> Sentence | None:
        return next((s for s in self.sentences if s.id == sid), None)

    def display_title(self, width: int) -> str:
        """Its title, else the start of its text (a job list's or an export's heading)."""
        return self.title or self.vision[:width]

    def as_mapping(self) -> dict[str, Any]:
        """Its texts as a structured vision mapping (a request's ``vision``): read back, it numbers
        its sentences again."""
        return self.model_dump(include=set(TEXT_FIELDS))
