"""``backlogd check``: the pre-flight alone, printed, exit 0 only when all is well."""

from __future__ import annotations

import contextlib
import io
import json
import socket
from pathlib import Path
from typing import Any

import yaml

from service.cli import main


def _config(tmp_path: Path, **ado: Any) -> Path:
    config = {
        "database": {"path": str(tmp_path / "state" / "backlogd.sqlite3")},
        "workflow": {"parallel_processing": {"use_hardware_optimization": False, "max_workers": 1}},
        "azure_devops": ado,
    }
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _check(tmp_path: Path, *extra: str, **ado: Any) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["check", "--config", str(_config(tmp_path, **ado)), *extra])
    return code, out.getvalue()


def test_healthy_target_prints_every_check_and_exits_0(tmp_path: Path) -> None:
    """Against a healthy target (the embedded emulator) every check passes and the exit code is 0."""
    code, text = _check(
        tmp_path, "--json", str(tmp_path / "check.json"), target="emulator", iteration_path="Sprint 9"
    )
    assert code == 0, text
    assert "ok    process Agile: Epic, Feature, User Story, Task" in text
    assert "iteration path Backlogd\\Sprint 9 will be created" in text
    assert text.rstrip().endswith("result: all is well")
    assert json.loads((tmp_path / "check.json").read_text(encoding="utf-8"))["ok"] is True


def test_unreachable_organization_exits_1_naming_the_setting(tmp_path: Path, monkeypatch: Any) -> None:
    """Nothing listening at organization_url: exit 1 and the fix names azure_devops.organization_url."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("CHECK_PAT", "some-pat")
    code, text = _check(
        tmp_path, target="ado", organization_url=f"http://127.0.0.1:{port}/org", pat_env="CHECK_PAT"
    )
    assert code == 1
    assert "FAIL  [connection]" in text and "azure_devops.organization_url" in text and "some-pat" not in text


def test_missing_pat_exits_1_naming_the_variable(tmp_path: Path, monkeypatch: Any) -> None:
    """No PAT in the named environment variable: exit 1 and the fix names that variable."""
    monkeypatch.delenv("NO_SUCH_PAT_VAR", raising=False)
    code, text = _check(
        tmp_path, target="ado", organization_url="https://dev.azure.com/org", pat_env="NO_SUCH_PAT_VAR"
    )
    assert code == 1 and "FAIL  [pat] no PAT to check with" in text and "NO_SUCH_PAT_VAR" in text
