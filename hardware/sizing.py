"""From a HardwareProfile and the settings to concurrency budgets (pure: no I/O, no clock).

LLM and ADO calls are network-bound: their ceilings come from the provider (max concurrency,
requests per minute), and hardware only caps them through memory. Cores size what is CPU-bound:
the process pool and how many jobs run side by side. The old optimizer did the opposite
(``cores × GHz × 2`` requests/s, "1 GB per worker for LLM processing") and read host totals.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict

from hardware.probe import HardwareProfile

Tier = Literal["minimal", "small", "medium", "large", "xlarge"]
TIERS: tuple[Tier, ...] = ("minimal", "small", "medium", "large", "xlarge")
MIB = 1 << 20
GIB = 1 << 30
# Upper bounds (exclusive) of effective CPUs and of usable memory for each tier below xlarge.
CPU_STEPS = (1.0, 2.0, 4.0, 16.0)
MEMORY_STEPS = (1 * GIB, 4 * GIB, 8 * GIB, 32 * GIB)
MEMORY_PER_LLM_CALL = 32 * MIB  # request + response buffers + parsed items, generously
MEMORY_PER_WORKER = 256 * MIB  # one process-pool worker with the interpreter and our modules
MEMORY_PER_JOB = 512 * MIB
MAX_CONCURRENT_JOBS = 16
# Share of the shared LLM concurrency and rate each stage may take. Deeper stages fan out wider
# (one epic → many features → more stories → most tasks/test cases), so they may use more; none
# takes all of it, so a wide stage cannot starve the stages that feed it.
STAGE_SHARES: dict[str, float] = {
    "epics": 0.2,
    "features": 0.4,
    "stories": 0.6,
    "tasks": 0.8,
    "test_cases": 0.8,
}


class StageBudget(BaseModel):
    model_config = ConfigDict(frozen=True)

    concurrency: int
    tokens_per_second: float


class Sizing(BaseModel):
    """Every size the service needs, and in ``reason`` which inputs decided them."""

    model_config = ConfigDict(frozen=True)

    mode: Literal["auto", "manual", "disabled"]
    tier: Tier
    reason: str
    llm_concurrency: int
    llm_rate_per_second: float
    budgets: dict[str, StageBudget]
    process_pool_size: int
    upload_concurrency: int
    concurrent_jobs: int


def size(
    profile: HardwareProfile,
    *,
    use_hardware_optimization: bool,
    enabled: bool,
    max_workers: int | None,
    rate_limit_per_second: float | None,
    llm_max_concurrency: int,
    llm_requests_per_minute: float,
    ado_max_concurrency: int,
) -> Sizing:
    """Size the service; explicit settings win over the probe, and ``enabled=False`` serialises everything."""
    if llm_requests_per_minute <= 0 or llm_max_concurrency < 1 or ado_max_concurrency < 1:
        raise ValueError("llm and ado ceilings must be positive")
    tier, tier_reason = _tier(profile)
    memory = profile.usable_memory_bytes
    rate = llm_requests_per_minute / 60.0
    if rate_limit_per_second is not None:
        rate = rate_limit_per_second if not use_hardware_optimization else min(rate, rate_limit_per_second)
    if not enabled:
        mode: Literal["auto", "manual", "disabled"] = "disabled"
        llm = pool = upload = jobs = 1
        why = "parallel processing disabled: one call at a time everywhere"
    elif not use_hardware_optimization:
        mode = "manual"
        llm = max_workers if max_workers is not None else llm_max_concurrency
        pool, upload, jobs = _cpu_bound(profile), ado_max_concurrency, _jobs(profile)
        why = f"hardware optimization off: llm concurrency {llm} from " + (
            "max_workers" if max_workers is not None else "llm.max_concurrency"
        )
    else:
        mode = "auto"
        llm, why = _llm_ceiling(memory, llm_max_concurrency, llm_requests_per_minute, max_workers)
        pool, jobs = _cpu_bound(profile), _jobs(profile)
        upload = min(ado_max_concurrency, _by_memory(memory, MEMORY_PER_LLM_CALL, ado_max_concurrency))
    return Sizing(
        mode=mode,
        tier=tier,
        reason=f"{tier_reason}; {why}; llm rate {rate:g}/s",
        llm_concurrency=llm,
        llm_rate_per_second=rate,
        budgets=_budgets(llm, rate),
        process_pool_size=pool,
        upload_concurrency=upload,
        concurrent_jobs=jobs,
    )


def report(profile: HardwareProfile, sizing: Sizing) -> dict[str, object]:
    """The JSON of ``backlogd hardware`` and ``GET /api/hardware``: the profile and the sizing, flat."""
    return {
        **profile.model_dump(mode="json"),  # usable_memory_bytes included (a computed field)
        **sizing.model_dump(mode="json"),
    }


def _tier(profile: HardwareProfile) -> tuple[Tier, str]:
    cpu_rank = sum(1 for step in CPU_STEPS if profile.effective_cpus >= step)
    cpu_text = f"effective_cpus={profile.effective_cpus:g} → {TIERS[cpu_rank]}"
    memory = profile.usable_memory_bytes
    if not memory:
        return TIERS[cpu_rank], f"{cpu_text}; memory unknown"
    memory_rank = sum(1 for step in MEMORY_STEPS if memory >= step)
    source = "cgroup limit" if profile.memory_limit_bytes == memory else "host"
    memory_text = f"memory={memory / GIB:.1f} GiB ({source}) → {TIERS[memory_rank]}"
    return TIERS[min(cpu_rank, memory_rank)], f"{cpu_text}; {memory_text}"


def _llm_ceiling(memory: int, provider: int, rpm: float, max_workers: int | None) -> tuple[int, str]:
    # More calls in flight than requests allowed per minute can only queue at the provider
    # (a call shorter than 60 s frees its slot before the minute is over).
    limits = {"llm.max_concurrency": provider, "requests_per_minute": max(1, math.floor(rpm))}
    if memory:
        limits["memory"] = _by_memory(memory, MEMORY_PER_LLM_CALL, provider)
    if max_workers is not None:
        limits["max_workers"] = max_workers
    decider = min(limits, key=lambda name: limits[name])
    return limits[decider], f"llm concurrency {limits[decider]} bounded by {decider}"


def _by_memory(memory: int, per_unit: int, default: int) -> int:
    return max(1, memory // per_unit) if memory else default


def _cpu_bound(profile: HardwareProfile) -> int:
    cpus = max(1, math.floor(profile.effective_cpus))
    return min(cpus, _by_memory(profile.usable_memory_bytes, MEMORY_PER_WORKER, cpus))


def _jobs(profile: HardwareProfile) -> int:
    cpus = max(1, math.floor(profile.effective_cpus))
    return min(cpus, _by_memory(profile.usable_memory_bytes, MEMORY_PER_JOB, cpus), MAX_CONCURRENT_JOBS)


def _budgets(llm: int, rate: float) -> dict[str, StageBudget]:
    return {
        stage: StageBudget(concurrency=max(1, round(llm * share)), tokens_per_second=rate * share)
        for stage, share in STAGE_SHARES.items()
    }
