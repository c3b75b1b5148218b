"""Property: any vision the parser accepts gives, through the real runner and the offline provider,
a backlog with no cut-off title and no two stories with the same title."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from hardware.aimd import AdaptiveLimiter
from outbox.store import Store
from service.items import JobContext
from service.progress import Progress
from service.runner import GenerationRunner
from service.settings import LLMSettings, QualitySettings
from stages.errors import VisionError
from stages.providers.offline import OfflineProvider
from stages.text import cut_off_reason, normalise, wordset
from stages.vision import Vision, from_mapping, from_text
from tests.fuzz.strategies import FUZZ
from tests.jobrows import OPTIONS
from vocab.options import Limits

LIMITS = Limits(
    max_epics=2,
    max_features_per_epic=2,
    max_stories_per_feature=3,
    max_tasks_per_story=2,
    max_test_cases_per_story=2,
)
WORDS = st.sampled_from(
    sorted(
        wordset(
            "the a of to and with for in on by drivers owners patients managers book see track send record "
            "report dashboard orders (tools) tools, 40% hectares under their each every quickly: - ; "
            "'quote \"x"
        )
    )
)
sentence = st.lists(WORDS, min_size=1, max_size=16).map(lambda ws: " ".join(ws))
free_text = st.lists(sentence, min_size=1, max_size=6).map(lambda ss: ". ".join(ss) + ".")
structured = st.fixed_dictionaries(
    {"vision": sentence},
    optional={
        "title": sentence,
        "target_users": st.lists(sentence, max_size=4),
        "key_features": st.lists(sentence, max_size=6),
        "success_metrics": st.lists(sentence, max_size=3),
        "constraints": st.lists(sentence, max_size=2),
    },
)


async def _generate(vision: Vision, folder: Path) -> list[tuple[str, str]]:
    """Run the real runner over the offline provider (in a thread: no process pool per example)."""
    job_id = str(uuid.uuid4())
    async with Store.open(folder / "db.sqlite3") as store:
        await store.create_job(job_id, vision, OPTIONS, {})
        runner = GenerationRunner(
            store=store,
            provider=OfflineProvider(None),
            limiter=AdaptiveLimiter(1, name="llm"),  # one call at a time: Hypothesis needs a fixed order
            llm=LLMSettings(),
            quality_settings=QualitySettings(),
            publish=lambda events: None,
        )
        progress = Progress(
            job_id=job_id, limits=LIMITS, include_qa=True, uploading=False, started_at=time.monotonic()
        )
        ctx = JobContext(job_id, vision, LIMITS, True, "held", progress)
        await runner.run(ctx)
        assert not ctx.failed_calls, ctx.failed_calls
        return [(i.kind, i.title) for i in await store.items(job_id)]


def _check(vision: Vision) -> None:
    with tempfile.TemporaryDirectory() as folder:
        items = asyncio.run(_generate(vision, Path(folder)))
    generated = [(k, t) for k, t in items if k in ("epic", "feature", "story", "task", "test_case")]
    assert generated
    assert [t for _, t in generated if cut_off_reason(t)] == []
    stories = [normalise(t) for k, t in generated if k == "story"]
    assert len(set(stories)) == len(stories), stories


@settings(FUZZ, max_examples=25)
@given(text=free_text)
def test_any_free_text_vision_gives_complete_and_distinct_titles(text: str) -> None:
    """Free text of any role, verb, bracket and percent soup: no cut-off titles, no duplicate stories."""
    try:
        vision = from_text(text)
    except VisionError:
        return
    _check(vision)


@settings(FUZZ, max_examples=25)
@given(data=structured)
# found by Hypothesis: features that differ only by a pasted bullet, and a qualifier cut inside a quote
@example(data={"vision": "-", "key_features": ['"x', '"x', "'quote", "- 'quote"]})
@example(data={"vision": "of", "key_features": ['"x', '"x', "dashboard", "- - dashboard and 'quote"]})
def test_any_structured_vision_gives_complete_and_distinct_titles(data: dict[str, object]) -> None:
    """Structured visions with any users, features, metrics and rules: the same two properties hold."""
    try:
        vision = from_mapping(data)
    except VisionError:
        return
    _check(vision)
