"""cgroup v1/v2 limits of a process: CPU quota and memory limit, tightest over the cgroup's ancestors.

loky and ``os.process_cpu_count`` read only the root ``/sys/fs/cgroup/cpu.max`` (or nothing); a
systemd unit's ``CPUQuota=`` lives on ``…/system.slice/<unit>.service`` and a parent slice can be
tighter still, so we walk from the process's own cgroup up to the mount point and keep the minimum.
Every reader here tolerates missing or garbled files: a missing limit is "no limit".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

UNLIMITED_BYTES = 1 << 60  # v1 writes PAGE_COUNTER_MAX (~9.2e18) for "no limit"


@dataclass(frozen=True)
class Mount:
    """One cgroup filesystem mount: where it is, which cgroup it shows as its root, its controllers."""

    point: str
    root: str
    version: int
    controllers: frozenset[str]


@dataclass(frozen=True)
class CgroupLimits:
    version: int | None
    cpu_quota: float | None
    memory_limit: int | None
    memory_headroom: int | None  # limit - usage at the tightest level, when both are known


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """Map controller name → cgroup path; the v2 unified entry is keyed ``""``."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def parse_mountinfo(text: str) -> list[Mount]:
    mounts: list[Mount] = []
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        fstype, _source, options = [*line.split(" - ", 1)[1].split(), "", ""][:3]
        if fstype == "cgroup2":
            mounts.append(Mount(fields[4], fields[3], 2, frozenset()))
        elif fstype == "cgroup":
            mounts.append(Mount(fields[4], fields[3], 1, frozenset(options.split(","))))
    return mounts


def _default_mounts(base: Path) -> list[Mount]:
    """Conventional layout when mountinfo is unreadable."""
    if (base / "cgroup.controllers").exists():
        return [Mount("/sys/fs/cgroup", "/", 2, frozenset())]
    return [
        Mount(f"/sys/fs/cgroup/{name}", "/", 1, frozenset(name.split(",")))
        for name in ("cpu,cpuacct", "cpu", "memory")
        if (base / name).is_dir()
    ]


def _directory(root: Path, mount: Mount, cgroup_path: str) -> Path:
    relative = cgroup_path
    if mount.root != "/" and (cgroup_path == mount.root or cgroup_path.startswith(mount.root + "/")):
        relative = cgroup_path[len(mount.root) :]
    return root / mount.point.lstrip("/") / relative.strip("/")


def _lineage(root: Path, mount: Mount, cgroup_path: str) -> list[Path]:
    """The process's cgroup directory followed by each ancestor up to the mount point."""
    top = root / mount.point.lstrip("/")
    current = _directory(root, mount, cgroup_path)
    chain = [current]
    while current != top and top in current.parents:
        current = current.parent
        chain.append(current)
    return chain


def _int(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _cpu_quota_at(directory: Path, version: int) -> float | None:
    if version == 2:
        fields = (read_text(directory / "cpu.max") or "").split()
        if len(fields) < 1 or fields[0] == "max":
            return None
        quota, period = _int(fields[0]), _int(fields[1]) if len(fields) > 1 else 100_000
    else:
        quota = _int(read_text(directory / "cpu.cfs_quota_us"))
        period = _int(read_text(directory / "cpu.cfs_period_us"))
    if quota is None or period is None or quota <= 0 or period <= 0:
        return None  # -1 (v1) or garbage: no limit at this level
    return quota / period


def _memory_at(directory: Path, version: int) -> tuple[int | None, int | None]:
    limit_file, usage_file = (
        ("memory.max", "memory.current")
        if version == 2
        else (
            "memory.limit_in_bytes",
            "memory.usage_in_bytes",
        )
    )
    limit = _int(read_text(directory / limit_file))  # "max" parses as None
    if limit is None or limit <= 0 or limit >= UNLIMITED_BYTES:
        return None, None
    return limit, _int(read_text(directory / usage_file))


def _mount_for(mounts: list[Mount], controller: str, paths: dict[str, str]) -> tuple[Mount, str] | None:
    for mount in mounts:  # a v1 hierarchy owning the controller wins (hybrid hosts mount both)
        if mount.version == 1 and controller in mount.controllers and controller in paths:
            return mount, paths[controller]
    for mount in mounts:
        if mount.version == 2 and "" in paths:
            return mount, paths[""]
    return None


def read_limits(root: Path, pid: str = "self") -> CgroupLimits:
    """Read the CPU quota and memory limit that apply to ``pid`` under the filesystem ``root``."""
    proc_text = read_text(root / "proc" / pid / "cgroup")
    paths = parse_proc_cgroup(proc_text) if proc_text is not None else {"": "/", "cpu": "/", "memory": "/"}
    mount_text = read_text(root / "proc" / pid / "mountinfo")
    mounts = parse_mountinfo(mount_text) if mount_text is not None else []
    mounts = mounts or _default_mounts(root / "sys" / "fs" / "cgroup")
    cpu, memory = _mount_for(mounts, "cpu", paths), _mount_for(mounts, "memory", paths)
    if cpu is None and memory is None:
        return CgroupLimits(None, None, None, None)
    used = [found[0] for found in (cpu, memory) if found is not None]
    quotas = [] if cpu is None else [_cpu_quota_at(d, cpu[0].version) for d in _lineage(root, *cpu)]
    levels = [] if memory is None else [_memory_at(d, memory[0].version) for d in _lineage(root, *memory)]
    limits = [limit for limit, _ in levels if limit is not None]
    headrooms = [max(0, limit - usage) for limit, usage in levels if limit is not None and usage is not None]
    return CgroupLimits(
        version=1 if any(mount.version == 1 for mount in used) else 2,
        cpu_quota=min((q for q in quotas if q is not None), default=None),
        memory_limit=min(limits, default=None),
        memory_headroom=min(headrooms, default=None),
    )
