"""How big everything is: the sizing chosen from the settings and the probed hardware, the LLM limiter
and stage rates it implies, and the job metadata that records it. Pure: the composition root and the
``hardware`` command use it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hardware.aimd import SLOW_START_INITIAL, AdaptiveLimiter
from hardware.probe import HardwareProfile
from hardware.sizing import Sizing, size
from service.settings import Settings


def size_for(settings: Settings, profile: HardwareProfile) -> Sizing:
    pp = settings.workflow.parallel_processing
    return size(
        profile,
        use_hardware_optimization=pp.use_hardware_optimization,
        enabled=pp.enabled,
        max_workers=pp.max_workers,
        rate_limit_per_second=pp.rate_limit_per_second,
        llm_max_concurrency=settings.llm.max_concurrency,
        llm_requests_per_minute=settings.llm.requests_per_minute,
        ado_max_concurrency=settings.azure_devops.max_concurrency,
    )


def llm_limiter(
    settings: Settings, sizing: Sizing, make: Callable[..., AdaptiveLimiter] = AdaptiveLimiter
) -> AdaptiveLimiter:
    if settings.llm.provider == "offline":  # local CPU work in the pool: no provider quota to respect
        ceiling = sizing.process_pool_size * 2 if sizing.mode != "disabled" else 1
        return make(ceiling, name="llm")
    ceiling = sizing.llm_concurrency
    # Slow start from a few requests (doubling each round trip while they go through) instead of the
    # whole ceiling at once: a provider's hidden cap then costs one or two 429s, not a burst of them.
    return make(
        ceiling,
        initial=min(ceiling, SLOW_START_INITIAL),
        rate_per_second=sizing.llm_rate_per_second,
        name="llm",
    )


def stage_rates(settings: Settings, sizing: Sizing) -> dict[str, float]:
    """Each stage's share of the provider's request rate (none for the offline generator: no quota)."""
    if settings.llm.provider == "offline":
        return {}
    return {name: budget.tokens_per_second for name, budget in sizing.budgets.items()}


def job_metadata(profile: HardwareProfile, sizing: Sizing) -> dict[str, Any]:
    return {
        "hardware_tier": sizing.tier,
        "optimal_workers": sizing.llm_concurrency,
        "system_info": {
            "effective_cpus": profile.effective_cpus,
            "memory_limit_bytes": profile.memory_limit_bytes,
            "usable_memory_bytes": profile.usable_memory_bytes,
            "sizing_mode": sizing.mode,
            "process_pool_size": sizing.process_pool_size,
            "upload_concurrency": sizing.upload_concurrency,
        },
    }
