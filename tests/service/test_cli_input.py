"""``backlogd run`` refuses bad input and bad settings with exit code 2, one clear line on stderr, and
nothing written: no database file, no job row."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from service.cli import main

BAD_VISIONS: dict[str, tuple[str, bytes, str]] = {
    "empty": ("vision.md", b"", "the vision is empty"),
    "whitespace": ("vision.txt", b"  \n\t\n  ", "the vision is empty"),
    "binary": ("vision.txt", b"PK\x03\x04\x00\x00binary", "looks binary"),
    "not utf-8": ("vision.md", "Caf\u00e9 pour tous".encode("latin-1"), "not valid UTF-8"),
    "oversized": ("vision.md", b"A sentence about the product. " * 9000, "KB vision limit"),
    "unknown key": ("vision.yaml", b"vision: Shops sell.\nmission: x\n", "mission"),
    "no vision": ("vision.json", b'{"title": "T"}', "vision"),
    "bad yaml": ("vision.yaml", b"vision: [unclosed", "cannot parse"),
}


def config(tmp_path: Path, **extra: object) -> Path:
    data = {"database": {"path": str(tmp_path / "state" / "backlogd.sqlite3")}, **extra}
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("case", sorted(BAD_VISIONS))
def test_bad_vision_exits_2_and_writes_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each unusable vision file is refused with exit 2 and its reason on stderr; no state is created."""
    name, raw, reason = BAD_VISIONS[case]
    vision = tmp_path / name
    vision.write_bytes(raw)
    code = main(["run", str(vision), "--target", "none", "--config", str(config(tmp_path))])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.startswith("backlogd: bad vision: ") and reason in captured.err
    assert name in captured.err
    assert not (tmp_path / "state").exists()


def test_missing_vision_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A vision path that does not exist is exit 2 with the path named; no state is created."""
    code = main(["run", str(tmp_path / "nope.md"), "--config", str(config(tmp_path))])
    assert code == 2
    assert "nope.md" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


def test_bad_setting_in_the_file_exits_2_naming_key_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad value in the settings file is exit 2 with the key and the file named; no state is created."""
    path = config(tmp_path, workflow={"limits": {"max_epics": 0}})
    vision = tmp_path / "v.txt"
    vision.write_text("Shops sell bikes online.", encoding="utf-8")
    assert main(["run", str(vision), "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "workflow.limits.max_epics" in err and str(path) in err
    assert not (tmp_path / "state").exists()


def test_bad_setting_from_the_environment_names_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad env override is exit 2 naming the environment variable rather than the file."""
    monkeypatch.setenv("BACKLOGD_LLM__MAX_ATTEMPTS", "lots")
    vision = tmp_path / "v.txt"
    vision.write_text("Shops sell bikes online.", encoding="utf-8")
    assert main(["run", str(vision), "--config", str(config(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert "BACKLOGD_LLM__MAX_ATTEMPTS" in err and "llm.max_attempts" in err
    assert not (tmp_path / "state").exists()


def test_missing_settings_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An explicit --config that does not exist is exit 2 naming the file."""
    assert main(["status", "--config", str(tmp_path / "absent.yaml")]) == 2
    assert "absent.yaml" in capsys.readouterr().err
