"""The OpenAPI document against the live service: schemathesis (its CLI, examples + coverage +
fuzzing + stateful phases through the document's links) drives a real ``backlogd serve`` with auth on
and finds no 5xx and no response that violates the document."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from tests.ops.conftest import TOKEN
from tests.ops.procs import Serve

# negative_data_rejection: whatever the document rules out (a Last-Event-ID outside 0…2^53, a string
# for a boolean, an unknown field, …) must be refused with a 4xx. Left out: the checks that need
# resources we cannot create on demand.
CHECKS = [
    "not_a_server_error",
    "negative_data_rejection",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    """Every operation, fuzzed and chained (create a job, then read, stream, export, retry, cancel it):
    no 5xx, every status documented, every body and header as the document says."""
    settings = {
        "server": {
            "host": "127.0.0.1",
            "port": 0,
            "api_token_env": "BACKLOGD_API_TOKEN",
            "jobs_per_client_per_minute": 300,
            "max_queued_jobs": 300,
        },
        "database": {"path": str(tmp_path / "db.sqlite3")},
        "azure_devops": {"target": "none"},
        "workflow": {"include_qa": False, "limits": dict.fromkeys(_LIMITS, 1)},
        "progress": {"heartbeat_seconds": 0.5},
        "logging": {"level": "warning", "format": "json"},
    }
    serve = Serve(tmp_path, settings, {"BACKLOGD_API_TOKEN": TOKEN})
    base = await serve.start()
    try:
        report = tmp_path / "schemathesis.txt"
        with report.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{base}/api/openapi.json",
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--checks",
                ",".join(CHECKS),
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                "25",
                "--seed",
                "20261128",
                # One worker: CPython 3.11.7 keeps the AST constructor's recursion depth per interpreter,
                # not per thread, so two threads describing hypothesis lambdas at once (ast.parse) fail
                # with "SystemError: AST constructor recursion depth mismatch".
                "--workers",
                "1",
                "--request-timeout",
                "10",
                "--no-color",
                cwd=tmp_path,  # its example database stays out of the work tree
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
            async with asyncio.timeout(120):
                code = await proc.wait()
        output = report.read_text(encoding="utf-8", errors="replace")
        assert code == 0, output[-6000:]
        summary = output.split("SUMMARY")[-1]
        selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", summary)
        assert selected is not None, summary  # every operation of the document selected and tested
        assert selected[1] == selected[2] == selected[3] and int(selected[1]) >= 25, summary
        assert "failed" not in summary
        assert (await serve.terminate(15))[0] == 0
    finally:
        serve.kill()


_LIMITS = (
    "max_epics",
    "max_features_per_epic",
    "max_stories_per_feature",
    "max_tasks_per_story",
    "max_test_cases_per_story",
)
