"""What this process may really use: CPUs after affinity and cgroup quota, memory after cgroup limits.

The old optimizer asked psutil for host totals, so inside a container or a systemd unit with
``CPUQuota=``/``MemoryMax=`` it sized for a machine it did not have. ``probe`` reads the files
under ``root`` (``/`` in production, a fake tree in tests); with a fake root it reads nothing else.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Literal

import psutil
from pydantic import BaseModel, ConfigDict, computed_field

from hardware import procfs
from hardware.cgroup import read_limits, read_text


class HardwareProfile(BaseModel):
    """A snapshot of the resources available to one process. Memory sizes are bytes; 0 = unknown."""

    model_config = ConfigDict(frozen=True)

    logical_cpus: int
    physical_cpus: int
    affinity_cpus: int
    cgroup_version: Literal[1, 2] | None
    cgroup_cpu_quota: float | None
    effective_cpus: float
    memory_total_bytes: int
    memory_limit_bytes: int | None
    memory_available_bytes: int
    load_1m: float
    cpu_percent: float | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def usable_memory_bytes(self) -> int:
        """The memory this process may grow into: the cgroup limit when tighter than the host."""
        known = [size for size in (self.memory_total_bytes, self.memory_limit_bytes) if size]
        return min(known, default=0)


def probe(root: str | Path = "/", *, pid: str = "self") -> HardwareProfile:
    """Blocking: reads /proc and /sys/fs/cgroup under ``root``. Never raises on missing files."""
    base = Path(root)
    real = base.resolve() == Path("/").resolve()
    cpuinfo = read_text(base / "proc" / "cpuinfo") or ""
    logical = _logical_cpus(base, cpuinfo, real)
    affinity = min(logical, _affinity_cpus(base, pid, real) or logical)
    limits = read_limits(base, pid)
    meminfo = procfs.parse_meminfo(read_text(base / "proc" / "meminfo") or "")
    total = meminfo.get("MemTotal") or (psutil.virtual_memory().total if real else 0)
    available = meminfo.get("MemAvailable") or (psutil.virtual_memory().available if real else total)
    if limits.memory_headroom is not None:
        available = min(available, limits.memory_headroom) if available else limits.memory_headroom
    quota = limits.cpu_quota
    return HardwareProfile(
        logical_cpus=logical,
        physical_cpus=min(logical, _physical_cpus(cpuinfo, real) or logical),
        affinity_cpus=affinity,
        cgroup_version=2 if limits.version == 2 else 1 if limits.version == 1 else None,
        cgroup_cpu_quota=quota,
        effective_cpus=min(float(affinity), quota) if quota is not None else float(affinity),
        memory_total_bytes=total,
        memory_limit_bytes=limits.memory_limit,
        memory_available_bytes=available,
        load_1m=_load_1m(base, real),
        # interval=None compares with the previous call (or import): it never blocks the caller.
        cpu_percent=psutil.cpu_percent(interval=None) if real else None,
    )


async def probe_async(root: str | Path = "/", *, pid: str = "self") -> HardwareProfile:
    """``probe`` in a worker thread, so the event loop never waits on file I/O."""
    return await asyncio.to_thread(probe, root, pid=pid)


def _logical_cpus(base: Path, cpuinfo: str, real: bool) -> int:
    if real and os.cpu_count():
        return os.cpu_count() or 1
    online = procfs.parse_cpu_list(read_text(base / "sys" / "devices" / "system" / "cpu" / "online") or "")
    return procfs.count_processors(cpuinfo) or len(online) or 1


def _physical_cpus(cpuinfo: str, real: bool) -> int | None:
    cores = procfs.count_cores(cpuinfo)
    if cores is None and real:
        cores = psutil.cpu_count(logical=False)
    return cores


def _affinity_cpus(base: Path, pid: str, real: bool) -> int | None:
    if real and hasattr(os, "sched_getaffinity"):
        try:
            return len(os.sched_getaffinity(0 if pid == "self" else int(pid)))
        except (OSError, ValueError):
            pass
    allowed = procfs.parse_allowed_cpus(read_text(base / "proc" / pid / "status") or "")
    return len(allowed) if allowed else None


def _load_1m(base: Path, real: bool) -> float:
    load = procfs.parse_load_1m(read_text(base / "proc" / "loadavg") or "")
    if load is None and real:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = None
    return load or 0.0
