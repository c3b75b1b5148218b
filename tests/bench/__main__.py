"""Run every benchmark in tests/bench/ and write docs/benchmarks.md.

Each ``bench_*.py`` module exposes ``async def run() -> list[dict]`` whose rows carry
``name, value, bound, ratio, unit, target, ok``: a figure measured next to a bound measured in the
same run, because these shared machines are noisy and absolute times drift.

    python -m tests.bench                 # all benchmarks
    python -m tests.bench pipeline upload # only bench_pipeline and bench_upload
"""

from __future__ import annotations

import asyncio
import importlib
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).parent
REPORT = HERE.parent.parent / "docs" / "benchmarks.md"


def _modules(only: list[str]) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    return [n for n in names if not only or n.removeprefix("bench_") in only or n in only]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def main(argv: list[str]) -> int:
    rows: list[tuple[str, dict[str, Any]]] = []
    failed = False
    for name in _modules(argv):
        module = importlib.import_module(f"tests.bench.{name}")
        started = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            results = asyncio.run(module.run())
        except Exception as exc:  # a broken benchmark is reported, the others still run
            print(f"   FAILED: {type(exc).__name__}: {exc}", flush=True)
            rows.append(
                (
                    name,
                    {
                        "name": "(crashed)",
                        "value": str(exc)[:80],
                        "bound": "",
                        "ratio": "",
                        "unit": "",
                        "target": "",
                        "ok": False,
                    },
                )
            )
            failed = True
            continue
        for row in results:
            rows.append((name, row))
            failed |= not row.get("ok", True)
            print(
                f"   {row['name']}: {_fmt(row['value'])} {row.get('unit', '')} (bound {_fmt(row['bound'])}, "
                f"ratio {_fmt(row['ratio'])}, target {row['target']}) {'ok' if row.get('ok') else 'MISSED'}",
                flush=True,
            )
        print(f"   ({time.monotonic() - started:.1f} s)", flush=True)
    write_report(rows, argv)
    return 1 if failed else 0


def _kept_rows(ran: set[str]) -> list[str]:
    """Table lines of benchmarks not run this time (a partial run updates only its own rows)."""
    if not REPORT.exists():
        return []
    lines = REPORT.read_text(encoding="utf-8").splitlines()
    end = next((i for i, ln in enumerate(lines) if ln.startswith("## ")), len(lines))
    rows = [ln for ln in lines[:end] if ln.startswith("| ") and not ln.startswith(("| benchmark", "|---"))]
    return [ln for ln in rows if ln.split("|")[1].strip() not in ran]


def _kept_sections() -> list[str]:
    """Sections after the table (``## ...``: figures other commands measure, e.g. ``make test-llm``)."""
    if not REPORT.exists():
        return []
    lines = REPORT.read_text(encoding="utf-8").splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("## ")), len(lines))
    return ["", *lines[start:]] if start < len(lines) else []


def write_report(rows: list[tuple[str, dict[str, Any]]], argv: list[str]) -> None:
    kept = _kept_rows({module.removeprefix("bench_") for module, _ in rows})
    sections = _kept_sections()
    mem = psutil.virtual_memory().total / 2**30
    lines = [
        "# Benchmarks",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} logical CPUs, "
        f"{mem:.0f} GiB memory, Python {platform.python_version()} ({platform.machine()}).",
        "",
        "Reproduce with `make bench` (or `.venv/bin/python -m tests.bench NAME...` for some of them; the"
        " rows of the others are kept). Every figure is compared with a bound measured in the same run.",
        "",
        "| benchmark | figure | value | unit | bound | ratio | target | ok |",
        "|---|---|---|---|---|---|---|---|",
        *kept,
    ]
    for module, r in rows:
        lines.append(
            f"| {module.removeprefix('bench_')} | {r['name']} | {_fmt(r['value'])} | {r.get('unit', '')} | "
            f"{_fmt(r['bound'])} | {_fmt(r['ratio'])} | {r['target']} | {'yes' if r.get('ok') else 'NO'} |"
        )
    lines += sections
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {REPORT.relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
