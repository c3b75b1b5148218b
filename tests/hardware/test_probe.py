"""probe() against fake /proc and /sys/fs/cgroup trees: cgroup v1/v2 quotas and memory, affinity, cores."""

from __future__ import annotations

from pathlib import Path

from hardware.probe import HardwareProfile, probe, probe_async

GIB = 1 << 30
V2_MOUNTINFO = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw\n"
V1_MOUNTINFO = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _cpuinfo(sockets: int, cores: int, threads: int) -> str:
    blocks, index = [], 0
    for socket in range(sockets):
        for core in range(cores):
            for _ in range(threads):
                blocks.append(f"processor\t: {index}\nphysical id\t: {socket}\ncore id\t\t: {core}\n")
                index += 1
    return "\n".join(blocks) + "\n"


def _host(root: Path, *, cpus: tuple[int, int, int] = (1, 4, 2), mem_gib: int = 16) -> None:
    _write(root, "proc/cpuinfo", _cpuinfo(*cpus))
    _write(
        root,
        "proc/meminfo",
        f"MemTotal: {mem_gib * GIB // 1024} kB\nMemAvailable: {mem_gib * GIB // 2048} kB\n",
    )
    _write(root, "proc/loadavg", "0.75 0.50 0.25 1/123 4567\n")


def test_v2_quota_150000_over_100000_is_one_and_a_half_cpus(tmp_path: Path) -> None:
    """cgroup v2 cpu.max '150000 100000' on the process's own cgroup gives 1.5 effective CPUs."""
    _host(tmp_path)
    _write(tmp_path, "proc/self/cgroup", "0::/system.slice/backlogd.service\n")
    _write(tmp_path, "proc/self/mountinfo", V2_MOUNTINFO)
    _write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
    _write(tmp_path, "sys/fs/cgroup/system.slice/backlogd.service/cpu.max", "150000 100000\n")
    profile = probe(tmp_path)
    assert (profile.logical_cpus, profile.physical_cpus, profile.affinity_cpus) == (8, 4, 8)
    assert (profile.cgroup_version, profile.cgroup_cpu_quota, profile.effective_cpus) == (2, 1.5, 1.5)
    assert profile.load_1m == 0.75
    assert profile.cpu_percent is None


def test_v2_tighter_parent_wins_and_max_means_no_limit(tmp_path: Path) -> None:
    """A parent slice's cpu.max tighter than the unit's own applies; 'max' levels impose nothing."""
    _host(tmp_path)
    _write(tmp_path, "proc/self/cgroup", "0::/system.slice/backlogd.service\n")
    _write(tmp_path, "proc/self/mountinfo", V2_MOUNTINFO)
    _write(tmp_path, "sys/fs/cgroup/cpu.max", "max 100000\n")
    _write(tmp_path, "sys/fs/cgroup/system.slice/cpu.max", "50000 100000\n")
    _write(tmp_path, "sys/fs/cgroup/system.slice/backlogd.service/cpu.max", "300000 100000\n")
    assert probe(tmp_path).effective_cpus == 0.5
    _write(tmp_path, "sys/fs/cgroup/system.slice/cpu.max", "max 100000\n")
    _write(tmp_path, "sys/fs/cgroup/system.slice/backlogd.service/cpu.max", "max 100000\n")
    profile = probe(tmp_path)
    assert (profile.cgroup_cpu_quota, profile.effective_cpus) == (None, 8.0)


def test_v2_memory_limit_and_headroom(tmp_path: Path) -> None:
    """memory.max on an ancestor is the limit and limit - current bounds the available memory."""
    _host(tmp_path, mem_gib=64)
    _write(tmp_path, "proc/self/cgroup", "0::/system.slice/backlogd.service\n")
    _write(tmp_path, "proc/self/mountinfo", V2_MOUNTINFO)
    _write(tmp_path, "sys/fs/cgroup/system.slice/memory.max", f"{4 * GIB}\n")
    _write(tmp_path, "sys/fs/cgroup/system.slice/memory.current", f"{3 * GIB}\n")
    _write(tmp_path, "sys/fs/cgroup/system.slice/backlogd.service/memory.max", "max\n")
    profile = probe(tmp_path)
    assert (profile.memory_total_bytes, profile.memory_limit_bytes) == (64 * GIB, 4 * GIB)
    assert profile.memory_available_bytes == GIB
    assert profile.usable_memory_bytes == 4 * GIB


def test_v1_quota_and_memory_limit(tmp_path: Path) -> None:
    """cgroup v1 cfs quota/period gives fractional CPUs; memory.limit_in_bytes is the memory limit."""
    _host(tmp_path)
    _write(tmp_path, "proc/self/cgroup", "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/\n")
    _write(tmp_path, "proc/self/mountinfo", V1_MOUNTINFO)
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "150000\n")
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n")
    _write(tmp_path, "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", f"{2 * GIB}\n")
    _write(tmp_path, "sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes", f"{GIB // 2}\n")
    profile = probe(tmp_path)
    assert (profile.cgroup_version, profile.cgroup_cpu_quota, profile.effective_cpus) == (1, 1.5, 1.5)
    assert (profile.memory_limit_bytes, profile.memory_available_bytes) == (2 * GIB, GIB + GIB // 2)


def test_v1_unlimited_values_mean_no_limit(tmp_path: Path) -> None:
    """A v1 quota of -1 and the huge 'unlimited' memory value both read as no limit."""
    _host(tmp_path)
    _write(tmp_path, "proc/self/cgroup", "4:memory:/\n2:cpu,cpuacct:/\n")
    _write(tmp_path, "proc/self/mountinfo", V1_MOUNTINFO)
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    _write(tmp_path, "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")
    profile = probe(tmp_path)
    assert (profile.cgroup_version, profile.cgroup_cpu_quota, profile.memory_limit_bytes) == (1, None, None)
    assert profile.effective_cpus == 8.0


def test_container_mount_root_maps_the_cgroup_path(tmp_path: Path) -> None:
    """When the cgroup mount shows a sub-tree as its root, the process path is resolved inside it."""
    _host(tmp_path)
    _write(tmp_path, "proc/self/cgroup", "0::/kubepods/pod1/ctr\n")
    _write(
        tmp_path,
        "proc/self/mountinfo",
        V2_MOUNTINFO.replace(" / /sys/fs/cgroup", " /kubepods/pod1 /sys/fs/cgroup"),
    )
    _write(tmp_path, "sys/fs/cgroup/ctr/cpu.max", "200000 100000\n")
    assert probe(tmp_path).effective_cpus == 2.0


def test_affinity_smaller_than_core_count(tmp_path: Path) -> None:
    """Cpus_allowed_list narrower than the machine limits the effective CPUs under a fake root."""
    _host(tmp_path, cpus=(2, 8, 2))
    _write(tmp_path, "proc/self/status", "Name:\tpython\nCpus_allowed_list:\t0-2,7\n")
    profile = probe(tmp_path)
    assert (profile.logical_cpus, profile.physical_cpus, profile.affinity_cpus) == (32, 16, 4)
    assert profile.effective_cpus == 4.0


def test_default_mount_layout_when_mountinfo_is_missing(tmp_path: Path) -> None:
    """Without mountinfo the conventional /sys/fs/cgroup v2 layout is assumed."""
    _host(tmp_path)
    _write(tmp_path, "proc/self/cgroup", "0::/app.service\n")
    _write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
    _write(tmp_path, "sys/fs/cgroup/app.service/cpu.max", "100000 100000\n")
    assert probe(tmp_path).effective_cpus == 1.0


def test_empty_root_falls_back_without_crashing(tmp_path: Path) -> None:
    """An empty tree yields one CPU, unknown memory and no cgroup instead of an exception."""
    _write(tmp_path, "proc/self/cgroup", "garbage\n")
    _write(tmp_path, "proc/cpuinfo", "nonsense")
    profile = probe(tmp_path)
    assert (profile.logical_cpus, profile.effective_cpus, profile.cgroup_version) == (1, 1.0, None)
    assert (profile.memory_total_bytes, profile.memory_limit_bytes, profile.load_1m) == (0, None, 0.0)


async def test_probe_async_reads_the_real_machine() -> None:
    """probe_async on the real root returns a consistent profile from a worker thread."""
    profile = await probe_async()
    assert isinstance(profile, HardwareProfile)
    assert 0 < profile.effective_cpus <= profile.affinity_cpus <= profile.logical_cpus
    assert profile.memory_total_bytes > 0
    assert profile.cpu_percent is not None
