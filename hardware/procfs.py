"""Parsers for the /proc files the probe needs: cpuinfo, meminfo, loadavg, status (pure text → values)."""

from __future__ import annotations


def parse_cpu_list(text: str) -> set[int]:
    """'0-3,8,10-11' → {0, 1, 2, 3, 8, 10, 11}; garbage pieces are ignored."""
    cpus: set[int] = set()
    for piece in text.strip().split(","):
        low, _, high = piece.strip().partition("-")
        try:
            start = int(low)
            cpus.update(range(start, int(high) + 1 if high else start + 1))
        except ValueError:
            continue
    return cpus


def count_processors(cpuinfo: str) -> int:
    return sum(1 for line in cpuinfo.splitlines() if line.split(":", 1)[0].strip() == "processor")


def count_cores(cpuinfo: str) -> int | None:
    """Distinct (physical id, core id) pairs; None when cpuinfo does not say (many ARM and VM kernels)."""
    cores: set[tuple[str, str]] = set()
    physical = core = None
    for line in [*cpuinfo.splitlines(), ""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not line.strip():  # blank line ends one processor's block
            if physical is not None and core is not None:
                cores.add((physical, core))
            physical = core = None
    return len(cores) or None


def parse_meminfo(text: str) -> dict[str, int]:
    """'MemTotal:  16318412 kB' → {'MemTotal': 16710053888} (bytes)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if not fields:
            continue
        try:
            number = int(fields[0])
        except ValueError:
            continue
        values[key.strip()] = number * 1024 if len(fields) > 1 and fields[1].lower() == "kb" else number
    return values


def parse_load_1m(text: str) -> float | None:
    try:
        return float(text.split()[0])
    except (IndexError, ValueError):
        return None


def parse_allowed_cpus(status: str) -> set[int] | None:
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Cpus_allowed_list":
            return parse_cpu_list(value) or None
    return None
