"""``backlogd run`` / ``export`` / ``status`` in-process (the real command functions, offline provider,
a real SQLite file in a tmp dir): exit codes, the first line, the --json summary and the exports."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.cli import main
from tests.conftest import SAMPLES

UUID = re.compile(r"^job: ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")


def write_config(tmp_path: Path) -> Path:
    config = {
        "database": {"path": str(tmp_path / "state" / "backlogd.sqlite3")},
        "workflow": {"parallel_processing": {"use_hardware_optimization": False, "max_workers": 2}},
        "azure_devops": {"target": "emulator"},  # the --target flag must win
    }
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def finished_job(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One offline job of the clinic sample, run through ``backlogd run`` (shared by the export tests)."""
    tmp_path = tmp_path_factory.mktemp("cli")
    config = write_config(tmp_path)
    out = tmp_path / "out.json"
    capture = io.StringIO()
    with contextlib.redirect_stdout(capture):
        code = main(
            [
                "run",
                str(SAMPLES / "clinic-scheduling.yaml"),
                "--target",
                "none",
                "--json",
                str(out),
                "--config",
                str(config),
            ]
        )
    return {
        "code": code,
        "stdout": capture.getvalue(),
        "summary": json.loads(out.read_text()),
        "config": config,
    }


def test_run_prints_the_job_first_and_writes_the_summary(finished_job: dict[str, Any]) -> None:
    """``run --target none --json`` exits 0, prints ``job: <uuid>`` first, and writes the summary JSON."""
    assert finished_job["code"] == 0
    first = finished_job["stdout"].splitlines()[0]
    match = UUID.match(first)
    assert match is not None, first
    summary = finished_job["summary"]
    assert summary["job_id"] == match.group(1)
    assert summary["status"] == "completed"
    assert set(summary["counts"]) == {"epics", "features", "stories", "tasks", "test_cases"}
    assert all(summary["counts"][k] > 0 for k in summary["counts"])
    assert summary["counts"]["epics"] == 3  # the default max_epics, exactly
    assert isinstance(summary["duration_seconds"], float) and summary["duration_seconds"] > 0
    llm = summary["llm"]
    assert (
        llm["calls"]
        == 1 + summary["counts"]["epics"] + summary["counts"]["features"] + 2 * summary["counts"]["stories"]
    )
    assert llm["prompt_tokens"] > 0 and llm["completion_tokens"] > 0
    assert summary["uploads"]["uploaded"] == 0


def export(finished_job: dict[str, Any], fmt: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = main(
        [
            "export",
            finished_job["summary"]["job_id"],
            "--format",
            fmt,
            "--config",
            str(finished_job["config"]),
        ]
    )
    assert code == 0
    return capsys.readouterr().out


def test_export_json_is_the_nested_tree(
    finished_job: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """``export --format json`` writes epics[].features[].stories[].{tasks[], test_cases[]} with each
    type's fields, and the counts match the run's summary."""
    tree = json.loads(export(finished_job, "json", capsys))
    counts = finished_job["summary"]["counts"]
    epics = tree["epics"]
    features = [f for e in epics for f in e["features"]]
    stories = [s for f in features for s in f["stories"]]
    tasks = [t for s in stories for t in s["tasks"]]
    cases = [c for s in stories for c in s["test_cases"]]
    assert [len(epics), len(features), len(stories), len(tasks), len(cases)] == [
        counts["epics"],
        counts["features"],
        counts["stories"],
        counts["tasks"],
        counts["test_cases"],
    ]
    for node in [*epics, *features, *stories, *tasks, *cases]:
        assert {"id", "title", "description", "sources"} <= set(node)
        assert node["sources"] and all(re.fullmatch(r"S\d+", s) for s in node["sources"])
    story = stories[0]
    assert story["user_story"].startswith("As a") and ", I want " in story["user_story"]
    assert len(story["acceptance_criteria"]) >= 3 and story["story_points"] in (1, 2, 3, 5, 8, 13, 21)
    assert all(t["estimate_hours"] > 0 for t in tasks)
    assert all(len(c["steps"]) >= 2 and set(c["steps"][0]) == {"action", "expected"} for c in cases)


def test_export_csv_follows_the_azure_boards_layout(
    finished_job: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """``export --format csv`` has Work Item Type and Title 1..4, each title in the column of its depth."""
    rows = list(csv.DictReader(io.StringIO(export(finished_job, "csv", capsys))))
    header = list(rows[0])
    assert {"Work Item Type", "Title 1", "Title 2", "Title 3", "Title 4"} <= set(header)
    depth = {
        "Epic": "Title 1",
        "Feature": "Title 2",
        "User Story": "Title 3",
        "Task": "Title 4",
        "Test Case": "Title 4",
    }
    for row in rows:
        filled = [col for col in ("Title 1", "Title 2", "Title 3", "Title 4") if row[col]]
        assert filled == [depth[row["Work Item Type"]]]
    kinds = [r["Work Item Type"] for r in rows]
    counts = finished_job["summary"]["counts"]
    assert kinds.count("Epic") == counts["epics"] and kinds.count("Task") == counts["tasks"]
    assert kinds[0] == "Epic" and kinds[1] == "Feature" and kinds[2] == "User Story"


def test_export_md_to_a_file(finished_job: dict[str, Any], tmp_path: Path) -> None:
    """``export --format md --output FILE`` writes a readable document titled after the vision."""
    target = tmp_path / "backlog.md"
    code = main(
        [
            "export",
            finished_job["summary"]["job_id"],
            "--format",
            "md",
            "--output",
            str(target),
            "--config",
            str(finished_job["config"]),
        ]
    )
    assert code == 0
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# CarePath Scheduling\n")
    assert text.count("## Epic: ") == finished_job["summary"]["counts"]["epics"]
    assert "#### Story: " in text and "Acceptance criteria:" in text and "Test case: **" in text


def test_status_shows_the_job(finished_job: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """``status JOB`` prints the job's status and item counts as JSON; ``status`` lists it."""
    capsys.readouterr()
    job_id = finished_job["summary"]["job_id"]
    assert main(["status", job_id, "--config", str(finished_job["config"])]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "completed" and shown["items"]["epic"] == {"held": 3}
    assert main(["status", "--config", str(finished_job["config"])]) == 0
    assert job_id in capsys.readouterr().out


def test_unknown_job_exits_2(finished_job: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """``export`` of a job that does not exist exits 2 with a message on stderr."""
    code = main(["export", "00000000-0000-0000-0000-000000000000", "--config", str(finished_job["config"])])
    assert code == 2
    assert "00000000-0000-0000-0000-000000000000" in capsys.readouterr().err


def test_run_update_of_a_job_without_a_target_exits_2(
    finished_job: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """``run --update-of`` names a job that uploaded nowhere (target none): exit 2, nothing run."""
    job_id = UUID.match(finished_job["stdout"].splitlines()[0])
    assert job_id is not None
    vision, config = str(SAMPLES / "clinic-scheduling.yaml"), str(finished_job["config"])
    code = main(["run", vision, "--target", "none", "--update-of", job_id[1], "--config", config])
    assert code == 2
    assert "uploads nowhere" in capsys.readouterr().err


def test_run_prints_the_quality_line(finished_job: dict[str, Any]) -> None:
    """The run summary ends with the quality line: every metric with its value, all on target here."""
    lines = finished_job["stdout"].splitlines()
    quality = [ln for ln in lines if ln.startswith("quality: ")]
    assert quality == [ln for ln in quality if "all targets met" in ln] and len(quality) == 1
    assert "cut_off_titles=0" in quality[0] and "coverage=100%" in quality[0]


def test_run_advises_on_a_vision_before_the_first_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A terse vision without a measurable goal gets advice right after the job id, before the first call."""
    vision = tmp_path / "terse.txt"
    vision.write_text("A seamless, best-in-class experience. Drivers log their hours.", encoding="utf-8")
    code = main(["run", str(vision), "--target", "none", "--no-qa", "--config", str(write_config(tmp_path))])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith("job: ")  # the job id stays the first line
    first_call = next(i for i, ln in enumerate(out) if ln.startswith(("stage:", "progress")))
    advice = [ln for ln in out[1:first_call] if ln.startswith("advice: ")]
    assert any("No measurable success metric" in ln for ln in advice), out[:first_call]
    assert any("[S1] is too vague" in ln for ln in advice), advice
