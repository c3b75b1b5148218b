"""The ``backlogd`` command line. Settings are loaded once here and passed down.

Exit codes: 0 success; 1 the job did not complete cleanly; 2 bad input or settings (nothing written).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from hardware.probe import probe_async
from hardware.sizing import report
from outbox.backend import StoreBackend
from outbox.records import JobRow
from service import logs
from service.capacity import size_for
from service.composition import Services, build_services, open_readonly
from service.console import ProgressView, summary_tree, terminal_safe
from service.errors import InvalidInput, JobNotFound, JobStateError, SettingsError
from service.export import render
from service.requests import JobRequest, resolve_options
from service.secrets import read_secret
from service.settings import Settings, load_settings
from stages.errors import VisionError
from stages.vision import parse_bytes
from vocab import GENERATED_KINDS, KINDS, CallStatus, ItemState, JobStatus

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]
COUNT_KEYS = {kind.value: KINDS[kind].plural for kind in GENERATED_KINDS}


def build_parser(extra: dict[str, tuple[str, Command]] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backlogd", description="Vision → agile backlog → Azure DevOps.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="settings file (default config/settings.yaml or $BACKLOGD_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[common], help="generate (and upload) a backlog from a vision file")
    run.add_argument("vision_file")
    run.add_argument("--update-of", metavar="JOB", help="update that job's backlog instead of a new copy")
    _job_options(run)
    resume = sub.add_parser("resume", parents=[common], help="finish an interrupted job")
    resume.add_argument("job_id")
    _job_options(resume, vision=False)
    status = sub.add_parser("status", parents=[common], help="show one job, or list the recent ones")
    status.add_argument("job_id", nargs="?")
    retry = sub.add_parser("retry", parents=[common], help="re-queue dead/blocked uploads and upload them")
    retry.add_argument("job_id")
    export = sub.add_parser("export", parents=[common], help="write a job's backlog as json, csv or md")
    export.add_argument("job_id")
    export.add_argument("--format", choices=("json", "csv", "md"), default="json")
    export.add_argument("--output", help="file to write (default: stdout)")
    hardware = sub.add_parser("hardware", parents=[common], help="print the probed hardware and the sizing")
    hardware.add_argument("--root", default="/", help="read /proc and /sys under this folder (tests)")
    emulator = sub.add_parser("emulator", parents=[common], help="run the Azure DevOps emulator alone")
    emulator.add_argument("--port", type=int, help="default azure_devops.emulator_port (0: any free port)")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--journal", help="keep its work items in this file across restarts")
    check = sub.add_parser(
        "check", parents=[common], help="pre-flight of the Azure DevOps target (no writes)"
    )
    check.add_argument("--no-qa", action="store_true", help="do not check test plan access")
    check.add_argument("--json", dest="json_out", help="also write the report as JSON to this file")
    for name, (help_text, _) in (extra or {}).items():
        sub.add_parser(name, parents=[common], help=help_text)
    return parser


def _job_options(p: argparse.ArgumentParser, vision: bool = True) -> None:
    p.add_argument("--provider", choices=("offline", "openai"), help="override llm.provider")
    p.add_argument("--json", dest="json_out", help="write the result summary as JSON to this file")
    if vision:
        p.add_argument("--no-qa", action="store_true", help="skip test plans, suites and cases")
        p.add_argument("--target", choices=("emulator", "ado", "none"), help="override azure_devops.target")


def main(argv: Sequence[str] | None = None, extra: dict[str, tuple[str, Command]] | None = None) -> int:
    commands: dict[str, Command] = {
        "run": cmd_run,
        "resume": cmd_resume,
        "status": cmd_status,
        "retry": cmd_retry,
        "export": cmd_export,
        "emulator": cmd_emulator,
        "hardware": cmd_hardware,
        "check": cmd_check,
    }
    parser = build_parser(extra)
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if getattr(args, "provider", None):
        env["BACKLOGD_LLM__PROVIDER"] = args.provider
    if getattr(args, "target", None):
        env["BACKLOGD_AZURE_DEVOPS__TARGET"] = args.target
    try:
        settings = load_settings(args.config, env)
    except SettingsError as exc:
        print(f"backlogd: bad settings: {exc}", file=sys.stderr)
        return 2
    quiet = args.command in ("run", "resume", "retry", "export", "status", "hardware", "check")
    logs.configure(
        "warning" if quiet and settings.logging.level == "info" else settings.logging.level,
        settings.logging.format,
    )
    handler = {**commands, **{k: v[1] for k, v in (extra or {}).items()}}[args.command]
    try:
        return asyncio.run(handler(args, settings))
    except (JobNotFound, JobStateError, InvalidInput) as exc:
        print(f"backlogd: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("backlogd: interrupted; resume with `backlogd resume JOB`", file=sys.stderr)
        return 130


# ----- commands ----------------------------------------------------------------------------------


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.vision_file)
    try:
        raw = await asyncio.to_thread(path.read_bytes)
        vision = parse_bytes(raw, path.name)
    except OSError as exc:
        print(f"backlogd: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    except VisionError as exc:
        print(f"backlogd: bad vision: {exc}", file=sys.stderr)
        return 2
    request = JobRequest(
        vision=vision.as_mapping(),
        include_qa=False if args.no_qa else None,
        update_of=args.update_of,
    )
    started = time.monotonic()
    async with build_services(settings, os.environ) as services:
        job_id = await services.jobs.submit(request, start=False)
        print(f"job: {job_id}", flush=True)
        for tip in await services.jobs.advise(vision):  # before any token is spent; advice, not a refusal
            print(f"advice: {tip['message']}", flush=True)
        return await _follow(services, job_id, args, started)


async def cmd_resume(args: argparse.Namespace, settings: Settings) -> int:
    started = time.monotonic()
    async with build_services(settings, os.environ) as services:
        job = await _job(services.store, args.job_id)
        print(f"job: {job.id}", flush=True)
        if job.status in (JobStatus.NEEDS_CREDENTIALS, JobStatus.COMPLETED_WITH_ERRORS):
            await services.jobs.start_upload(job.id)
            return await _follow(services, job.id, args, started, already_started=True)
        return await _follow(services, job.id, args, started)


async def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    started = time.monotonic()
    async with build_services(settings, os.environ) as services:
        job = await _job(services.store, args.job_id)
        sub = services.broadcaster.subscribe(job.id)
        moved = await services.jobs.retry_uploads(job.id)
        print(f"job: {job.id}\nre-queued {moved} items", flush=True)
        return await _follow(services, job.id, args, started, already_started=True, sub=sub)


async def _follow(
    services: Services,
    job_id: str,
    args: argparse.Namespace,
    started: float,
    *,
    already_started: bool = False,
    sub: Any = None,
) -> int:
    sub = sub or services.broadcaster.subscribe(job_id)
    view = ProgressView()
    follower = asyncio.create_task(view.follow(sub))
    if not already_started:
        services.jobs.start(job_id)
    job = await services.jobs.wait(job_id)
    await asyncio.wait_for(asyncio.gather(follower, return_exceptions=True), timeout=2)
    sub.close()
    items = await services.store.items(job_id)
    print(summary_tree(items))
    summary = await _summary(services, job, time.monotonic() - started)
    _print_outcome(job, summary, services)
    if getattr(args, "json_out", None):
        await asyncio.to_thread(Path(args.json_out).write_text, json.dumps(summary, indent=2), "utf-8")
    if services.emulator is not None and summary["uploads"]["uploaded"] and sys.stdin.isatty():
        # someone at a terminal wants to look at what was uploaded before the emulator goes away
        await _wait_for_enter("press Enter to stop the emulator and exit ")
    return 0 if job.status == JobStatus.COMPLETED else 1


async def _wait_for_enter(prompt: str) -> None:
    """Wait for a line on stdin without a thread (a blocked reader thread would outlive Ctrl-C)."""
    print(prompt, end="", flush=True)
    loop, entered = asyncio.get_running_loop(), asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), entered.set)
    try:
        await entered.wait()
    finally:
        loop.remove_reader(sys.stdin.fileno())
    sys.stdin.readline()


async def _summary(services: Services, job: JobRow, duration: float) -> dict[str, Any]:
    counts = await services.store.item_counts(job.id)
    calls = await services.store.calls(job.id)
    generated = {COUNT_KEYS[k]: sum(counts.get(k, {}).values()) for k in COUNT_KEYS}
    uploaded = sum(v.get(ItemState.UPLOADED, 0) for v in counts.values())
    return {
        "job_id": job.id,
        "status": job.status,
        "counts": generated,
        "uploads": {"uploaded": uploaded, "states": counts},
        "duration_seconds": round(duration, 3),
        "llm": {
            "calls": sum(1 for c in calls if c.status == CallStatus.DONE),
            "failed_calls": sum(1 for c in calls if c.status == CallStatus.FAILED),
            # every HTTP request, throttled and failed ones included (a failed job made them too)
            "requests": int(
                (job.metadata.get("llm") or {}).get("requests") or sum(c.attempts for c in calls)
            ),
            "repairs": dict((job.metadata.get("llm") or {}).get("repairs") or {}),
            "prompt_tokens": sum(c.prompt_tokens for c in calls),
            "completion_tokens": sum(c.completion_tokens for c in calls),
        },
        "error": job.error,
    }


def _print_outcome(job: JobRow, summary: dict[str, Any], services: Services) -> None:
    c = summary["counts"]
    print(
        f"status: {job.status} in {summary['duration_seconds']:.1f}s — {c['epics']} epics, {c['features']} "
        f"features, {c['stories']} stories, {c['tasks']} tasks, {c['test_cases']} test cases; "
        f"{summary['uploads']['uploaded']} items uploaded; {summary['llm']['requests']} LLM requests "
        f"({summary['llm']['calls']} calls done, {summary['llm']['failed_calls']} failed)"
    )
    if job.error:
        print(terminal_safe(f"error: {job.error}"))
    report = job.metadata.get("traceability")
    if report and report.get("uncovered"):
        print(f"traceability: {len(report['uncovered'])} vision sentences no story covers:")
        for s in report["uncovered"][:5]:
            print(terminal_safe(f"  [{s['id']}] {s['text'][:100]}"))
    print_quality(job.metadata.get("quality"))
    if services.emulator is not None and summary["uploads"]["uploaded"]:
        project = services.settings.azure_devops.project.replace(" ", "%20")
        print(
            f"work items: {services.emulator.url}/{project}/_backlogs (while this command runs, and under "
            f"`make run`, which replays the emulator's journal)"
        )


def print_quality(card: dict[str, Any] | None) -> None:
    """The quality line, then each metric short of its target with its first offending items."""
    if not card:
        return
    print(card["line"])
    for metric in card["metrics"]:
        if metric["ok"]:
            continue
        print(f"  {metric['label']}: {metric['definition']}")
        for off in metric["offenders"][:3]:
            print(f"    {off['kind']} '{off['title'][:70]}': {off['problem'][:100]}")


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    async with open_readonly(settings) as store:
        if args.job_id:
            job = await _job(store, args.job_id)
            counts = await store.item_counts(job.id)
            print(
                json.dumps(
                    {"job_id": job.id, "status": job.status, "error": job.error, "items": counts}, indent=2
                )
            )
            return 0
        for job in await store.list_jobs(50):
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at))
            title = job.vision.display_title(40)
            print(terminal_safe(f"{job.id}  {when}  {job.status:<22} {title}"))
        return 0


async def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    async with open_readonly(settings) as store:
        job = await _job(store, args.job_id)
        text = render(job, await store.items(job.id), args.format)
    if args.output:
        await asyncio.to_thread(Path(args.output).write_text, text, "utf-8")
    else:
        text = terminal_safe(text)  # stdout may be a terminal: generated text never drives it
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


async def cmd_hardware(args: argparse.Namespace, settings: Settings) -> int:
    profile = await probe_async(args.root)
    sizing = size_for(settings, profile)
    print(json.dumps(report(profile, sizing), indent=2))
    return 0


async def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    """Pre-flight of the configured target, alone: exit 0 only when all is well, 1 otherwise."""
    async with build_services(settings, os.environ, with_relay=False) as services:
        if services.uploads is None:
            print("azure_devops.target is none: there is no target to check")
            return 0
        request = JobRequest(vision="-", include_qa=False if args.no_qa else None)
        report = await services.uploads.check_options(resolve_options(request, settings))
    print("\n".join(report.lines()))
    if args.json_out:
        await asyncio.to_thread(
            Path(args.json_out).write_text, json.dumps(report.as_dict(), indent=2), "utf-8"
        )
    return 0 if report.ok else 1


async def cmd_emulator(args: argparse.Namespace, settings: Settings) -> int:
    from emulator.config import EmulatorConfig
    from emulator.server import serve

    ado = settings.azure_devops
    pat = read_secret(ado.pat_env, os.environ)  # the PAT the service would send; else a fresh one
    made_up = pat is None
    pat = pat or secrets.token_urlsafe(24)
    config = EmulatorConfig(
        projects=((ado.project, ado.emulator_process),),
        pats=frozenset({pat}),
        control=settings.emulator.control,
    )
    port = ado.emulator_port if args.port is None else args.port
    try:
        emulator = await serve(config, args.host, port, journal=Path(args.journal) if args.journal else None)
    except ValueError as exc:
        print(f"backlogd: {exc}", file=sys.stderr)
        return 2
    # the PAT itself is never printed: whoever uploads here reads it from the same variable
    which = (
        f"a PAT made up for this run: set {ado.pat_env} to choose it"
        if made_up
        else f"the PAT in {ado.pat_env}"
    )
    print(
        f"emulator: {emulator.url}  (project {ado.project!r}, {which}; browse "
        f"{emulator.url}/{ado.project}/_backlogs)",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await emulator.close()
    return 0


async def _job(store: StoreBackend, job_id: str) -> JobRow:
    job = await store.get_job(job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job
