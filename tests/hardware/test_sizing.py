"""size() and report(): tiers from CPUs and memory, provider-bound LLM ceilings, explicit settings winning."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hardware.probe import HardwareProfile
from hardware.sizing import STAGE_SHARES, report, size

GIB = 1 << 30


def _profile(cpus: float = 8.0, memory: int = 32 * GIB, limit: int | None = None) -> HardwareProfile:
    return HardwareProfile(
        logical_cpus=16,
        physical_cpus=8,
        affinity_cpus=16,
        cgroup_version=2,
        cgroup_cpu_quota=cpus if cpus < 16 else None,
        effective_cpus=cpus,
        memory_total_bytes=memory,
        memory_limit_bytes=limit,
        memory_available_bytes=(limit or memory) // 2,
        load_1m=0.5,
        cpu_percent=None,
    )


def _size(profile: HardwareProfile, **overrides: Any) -> Any:
    settings: dict[str, Any] = {
        "use_hardware_optimization": True,
        "enabled": True,
        "max_workers": None,
        "rate_limit_per_second": None,
        "llm_max_concurrency": 16,
        "llm_requests_per_minute": 600.0,
        "ado_max_concurrency": 8,
    }
    settings.update(overrides)
    return size(profile, **settings)


@pytest.mark.parametrize(
    ("cpus", "memory", "limit", "tier"),
    [
        (0.5, 64 * GIB, None, "minimal"),
        (1.5, 64 * GIB, None, "small"),
        (2.0, 64 * GIB, None, "medium"),
        (8.0, 64 * GIB, None, "large"),
        (32.0, 64 * GIB, None, "xlarge"),
        (32.0, 64 * GIB, 2 * GIB, "small"),
        (32.0, 0, None, "xlarge"),
    ],
)
def test_tier_is_the_weaker_of_cpu_and_memory(cpus: float, memory: int, limit: int | None, tier: str) -> None:
    """The tier follows effective CPUs and usable memory (the cgroup limit when set), whichever is weaker."""
    sizing = _size(_profile(cpus, memory, limit))
    assert sizing.tier == tier
    assert "effective_cpus=" in sizing.reason


def test_llm_concurrency_is_bounded_by_the_provider_not_the_cores() -> None:
    """On a 1.5-CPU quota the LLM ceiling still follows llm.max_concurrency; the process pool follows CPUs."""
    sizing = _size(_profile(cpus=1.5))
    assert (sizing.mode, sizing.llm_concurrency, sizing.llm_rate_per_second) == ("auto", 16, 10.0)
    assert (sizing.process_pool_size, sizing.concurrent_jobs) == (1, 1)
    assert "bounded by llm.max_concurrency" in sizing.reason


def test_tiny_rate_and_memory_cap_the_llm_ceiling() -> None:
    """A provider allowing 3 requests/minute, or a 64 MiB cgroup, caps how many calls are in flight."""
    assert _size(_profile(), llm_requests_per_minute=3.0).llm_concurrency == 3
    starved = _size(_profile(memory=64 * GIB, limit=64 << 20))
    assert (starved.llm_concurrency, starved.upload_concurrency) == (2, 2)
    assert "bounded by memory" in starved.reason


def test_budgets_give_deeper_stages_more_of_the_shared_concurrency() -> None:
    """Stage budgets grow from epics to tasks/test cases and none exceeds the shared ceiling or rate."""
    budgets = _size(_profile()).budgets
    assert list(budgets) == list(STAGE_SHARES)
    concurrency = [budget.concurrency for budget in budgets.values()]
    assert concurrency == sorted(concurrency) and concurrency[0] < concurrency[-1] <= 16
    assert all(budget.tokens_per_second <= 10.0 for budget in budgets.values())


def test_manual_settings_win_over_the_probe() -> None:
    """With hardware optimization off, max_workers and rate_limit_per_second are used exactly as given."""
    sizing = _size(
        _profile(cpus=1.0, memory=GIB),
        use_hardware_optimization=False,
        max_workers=40,
        rate_limit_per_second=25.0,
    )
    assert (sizing.mode, sizing.llm_concurrency, sizing.llm_rate_per_second) == ("manual", 40, 25.0)
    assert "max_workers" in sizing.reason


def test_manual_without_values_falls_back_to_llm_settings() -> None:
    """With hardware optimization off and no explicit values, llm.max_concurrency and rpm/60 apply."""
    sizing = _size(
        _profile(), use_hardware_optimization=False, llm_max_concurrency=5, llm_requests_per_minute=120
    )
    assert (sizing.llm_concurrency, sizing.llm_rate_per_second) == (5, 2.0)


def test_auto_mode_treats_explicit_values_as_caps() -> None:
    """With hardware optimization on, max_workers and rate_limit_per_second only lower the sizes."""
    sizing = _size(_profile(), max_workers=4, rate_limit_per_second=50.0)
    assert (sizing.llm_concurrency, sizing.llm_rate_per_second) == (4, 10.0)


def test_disabled_means_one_at_a_time_everywhere() -> None:
    """enabled=False makes every ceiling 1, whatever the hardware and the other settings."""
    sizing = _size(_profile(cpus=32.0, memory=128 * GIB), enabled=False, max_workers=12)
    assert sizing.mode == "disabled"
    assert (sizing.llm_concurrency, sizing.process_pool_size, sizing.upload_concurrency) == (1, 1, 1)
    assert sizing.concurrent_jobs == 1
    assert {budget.concurrency for budget in sizing.budgets.values()} == {1}


def test_report_is_json_with_profile_and_sizing() -> None:
    """The report carries effective_cpus, memory_limit_bytes, tier and budgets and serialises to JSON."""
    profile = _profile(cpus=1.5, limit=4 * GIB)
    data = json.loads(json.dumps(report(profile, _size(profile))))
    assert (data["effective_cpus"], data["memory_limit_bytes"], data["tier"]) == (1.5, 4 * GIB, "small")
    assert data["budgets"]["tasks"]["concurrency"] >= 1
    assert {"logical_cpus", "load_1m", "llm_concurrency", "process_pool_size", "reason"} <= set(data)


def test_non_positive_provider_ceilings_are_rejected() -> None:
    """A zero requests-per-minute or concurrency ceiling is a configuration error, not a silent 0."""
    with pytest.raises(ValueError):
        _size(_profile(), llm_requests_per_minute=0)
