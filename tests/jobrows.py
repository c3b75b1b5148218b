"""A vision and options to store a job with, for tests that write job rows straight into a store."""

from __future__ import annotations

from typing import Any

from vocab.options import JobOptions, Limits
from vocab.vision import Vision

VISION = Vision(title="t", vision="v")


def options(**update: Any) -> JobOptions:
    """Options of a job that uploads nowhere, with ``update`` over them."""
    base = JobOptions(
        limits=Limits(),
        include_qa=True,
        upload_mode="streaming",
        target="none",
        organization_url="",
        project="Backlog",
        area_path="",
        iteration_path="",
        provider="offline",
    )
    return base.model_copy(update=update)


OPTIONS = options()
