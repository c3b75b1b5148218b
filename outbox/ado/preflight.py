"""Pre-flight: everything a job needs from its target, checked before any LLM call; writes nothing.

Connection and PAT, the project, its process and types, the fields each type requires, the scopes
(Work Items read and write, Test Management), permission to create missing area/iteration nodes and
Test Plans access. Every problem is collected (not just the first) with what is wrong and what to do.

Probes that would write are made so that they cannot: a work item create with ``validateOnly=true``;
a node or a test plan create with an invalid (empty) body, which the service refuses with 401/403
when the user lacks the right and with 400 (nothing saved) when the right is there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from outbox.ado import mapping, process
from outbox.ado.discovery import node_segments, project_info, type_fields, values
from outbox.ado.errors import AdoAuthError, AdoNotFound, AdoPermanent, AdoTransient
from outbox.ado.http import AdoHttp, Reply
from outbox.ado.types import AdoTarget, FieldInfo
from outbox.ado.urls import AdoUrls

_READ_ATTEMPTS = 3
T = TypeVar("T")
SCOPES_HINT = "Work Items (Read & write) and Test Management (Read & write)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the target: ``code`` is its kind, ``fix`` what the user should do."""

    code: str  # connection | pat | project | process | scope | node_permission | required_field |
    #            test_plans | qa_unavailable
    message: str
    fix: str
    fatal: bool = True  # False: the job still runs
    disables_qa: bool = False  # the job runs with QA switched off

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "fix": self.fix,
            "fatal": self.fatal,
            "disables_qa": self.disables_qa,
        }


@dataclass(frozen=True)
class CheckReport:
    organization_url: str
    project: str
    process: str | None = None
    passed: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def fatal(self) -> bool:
        return any(p.fatal for p in self.problems)

    @property
    def qa_available(self) -> bool:
        return not any(p.disables_qa for p in self.problems)

    def warnings(self) -> list[str]:
        return [f"{p.message}; {p.fix}" for p in self.problems if not p.fatal]

    def summary(self) -> str:
        """One line per fatal problem, for a job's error."""
        return "; ".join(f"{p.message} ({p.fix})" for p in self.problems if p.fatal)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "fatal": self.fatal,
            "organization_url": self.organization_url,
            "project": self.project,
            "process": self.process,
            "qa_available": self.qa_available,
            "passed": list(self.passed),
            "problems": [p.as_dict() for p in self.problems],
        }

    def lines(self) -> list[str]:
        """Human-readable, for `backlogd check`."""
        out = [f"target {self.organization_url} project {self.project}"]
        out += [f"  ok    {line}" for line in self.passed]
        for p in self.problems:
            out.append(f"  {'FAIL' if p.fatal else 'WARN'}  [{p.code}] {p.message}")
            out.append(f"        fix: {p.fix}")
        verdict = "all is well" if self.ok else "cannot run" if self.fatal else "runs, with warnings"
        out.append(f"result: {verdict}")
        return out


@dataclass
class _Check:
    http: AdoHttp
    urls: AdoUrls
    target: AdoTarget
    include_qa: bool
    sleep: Callable[[float], Awaitable[None]]
    passed: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    process: str | None = None

    async def read(self, url: Any) -> Reply:
        return await self.call("GET", url)

    async def call(self, method: str, url: Any, body: Any = None, *, patch: bool = False) -> Reply:
        """A request that writes nothing, retried when transient."""
        return await self.retrying(lambda: self.http.call(method, url, body, patch=patch))

    async def retrying(self, request: Callable[[], Awaitable[T]]) -> T:
        """A few attempts while the failure is transient (the gate already honours Retry-After)."""
        for attempt in range(_READ_ATTEMPTS - 1):
            try:
                return await request()
            except AdoTransient as exc:
                await self.sleep(exc.retry_after or 0.2 * 2**attempt)
        return await request()

    def problem(
        self, code: str, message: str, fix: str, *, fatal: bool = True, disables_qa: bool = False
    ) -> None:
        self.problems.append(Problem(code, message, fix, fatal, disables_qa))

    def report(self) -> CheckReport:
        return CheckReport(
            self.urls.org, self.target.project, self.process, tuple(self.passed), tuple(self.problems)
        )


async def check(
    http: AdoHttp,
    urls: AdoUrls,
    target: AdoTarget,
    *,
    include_qa: bool,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> CheckReport:
    c = _Check(http, urls, target, include_qa, sleep)
    try:
        project = await _project(c)
        if project is None:
            return c.report()
        type_names = await _process(c)
        if type_names is None:
            return c.report()
        await _required_fields(c, type_names)
        await _work_item_scopes(c, type_names)
        name = str(project.get("name") or target.project)
        await _node(c, "Areas", "area_path", name, target.area_path)
        await _node(c, "Iterations", "iteration_path", name, target.iteration_path)
        if include_qa and type_names.get("test_case"):
            await _test_plans(c)
    except (AdoTransient, aiohttp.ClientError) as exc:  # the service kept failing: the job may still run
        c.problem(
            "unverified",
            f"part of the check could not be completed: {exc}",
            "run the check again later; uploads retry such failures",
            fatal=False,
        )
    except AdoAuthError as exc:
        c.problem("scope", f"the PAT may not read the project's setup: {exc}", f"give the PAT {SCOPES_HINT}")
    except AdoPermanent as exc:
        c.problem(
            "service", f"the service refused a check request: {exc}", "see the message; fix, then check again"
        )
    return c.report()


async def _project(c: _Check) -> dict[str, Any] | None:
    org, project = c.urls.org, c.target.project
    try:
        data = await c.retrying(lambda: project_info(c.http, c.urls, project))
    except AdoAuthError as exc:
        c.problem(
            "pat",
            f"the PAT was refused by {org} (HTTP {exc.status}): it is wrong, expired or revoked, "
            "or belongs to another organization",
            f"create a PAT in {org} with the scopes {SCOPES_HINT} and configure it (azure_devops.pat_env)",
        )
        return None
    except AdoNotFound:
        c.problem(
            "project",
            f"project '{project}' does not exist in {org}, or the PAT's user cannot see it",
            "check azure_devops.project (the project's name or GUID) and that the user is a member",
        )
        return None
    except (AdoTransient, AdoPermanent, aiohttp.ClientError, ValueError) as exc:
        c.problem(
            "connection",
            f"cannot reach Azure DevOps at {org}: {exc}",
            "check azure_devops.organization_url (https://dev.azure.com/<organization>) and the network",
        )
        return None
    c.passed.append(f"connection to {org} and the PAT")
    c.passed.append(f"project {data.get('name') or project}")
    return data


async def _process(c: _Check) -> dict[str, str | None] | None:
    types = values((await c.read(c.urls.work_item_types())).data)
    try:
        name, type_names = process.discover(process.enabled_type_names(types))
    except AdoPermanent as exc:
        c.problem("process", exc.message, "use a project on Agile, Scrum, CMMI or Basic (or inherited)")
        return None
    c.process = name
    used = [type_names[k] for k in ("epic", "feature", "story", "task") if type_names.get(k)]
    c.passed.append(f"process {name}: {', '.join(dict.fromkeys(t for t in used if t))}")
    if c.include_qa and not type_names.get("test_case"):
        c.problem(
            "qa_unavailable",
            f"QA artifacts are not available for process {name}: it has no Test Plan, Test Suite or "
            "Test Case types",
            "the job runs without QA; add the test types to the process to get them",
            fatal=False,
            disables_qa=True,
        )
    return type_names


def _kinds(c: _Check) -> tuple[str, ...]:
    backlog = ("epic", "feature", "story", "task")
    return (*backlog, "test_case") if c.include_qa else backlog


async def _required_fields(c: _Check, type_names: dict[str, str | None]) -> None:
    wanted = sorted({t for k in _kinds(c) if (t := type_names.get(k))})
    fields = await type_fields(c.http, c.urls, wanted)
    missing = 0
    for type_name in wanted:
        defaults = c.target.defaults_for(type_name)
        for info in fields[type_name].values():
            if _unfilled(info, defaults):
                missing += 1
                c.problem(
                    "required_field",
                    f"work item type '{type_name}' requires the field {info.ref} ({info.name}), "
                    "which backlogd does not fill",
                    f"set a value in azure_devops.field_defaults, e.g. "
                    f'{{"{type_name}": {{"{info.ref}": "{_example(info)}"}}}}',
                )
    if not missing:
        c.passed.append(f"required fields of {', '.join(wanted)}")


def _unfilled(info: FieldInfo, defaults: Any) -> bool:
    # System fields are set by backlogd (title, tags, paths) or maintained by the service.
    return (
        info.always_required
        and not info.has_default
        and not info.ref.startswith("System.")
        and info.ref != mapping.STEPS
        and info.ref not in defaults
    )


def _example(info: FieldInfo) -> str:
    return str(info.allowed[0]) if info.allowed else "<value>"


async def _work_item_scopes(c: _Check, type_names: dict[str, str | None]) -> None:
    query = {
        "query": "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
        "AND [System.Tags] CONTAINS 'backlogd-preflight'"
    }
    try:
        await c.call("POST", c.urls.wiql(), query)
    except AdoAuthError:
        c.problem(
            "scope",
            "the PAT cannot read or query work items",
            f"give the PAT the scope Work Items (Read & write) (vso.work_write); needed: {SCOPES_HINT}",
        )
        return
    story = type_names.get("story") or ""
    ops = [
        {"op": "add", "path": f"/fields/{mapping.TITLE}", "value": "backlogd pre-flight (never saved)"},
        *(
            {"op": "add", "path": f"/fields/{ref}", "value": value}
            for ref, value in c.target.defaults_for(story).items()
        ),
    ]
    try:
        await c.call("POST", c.urls.create(story, validate_only=True), ops, patch=True)
    except AdoAuthError:
        c.problem(
            "scope",
            "the PAT can read but not write work items",
            f"give the PAT the scope Work Items (Read & write) (vso.work_write); needed: {SCOPES_HINT}",
        )
        return
    except AdoPermanent:
        pass  # a rule error on the probe: the required-field check names the field
    c.passed.append("Work Items read and write")


async def _node(c: _Check, group: str, setting: str, project: str, path: str) -> None:
    segments = node_segments(project, path)
    if not segments:
        return
    full = "\\".join([project, *segments])
    kind = "area" if group == "Areas" else "iteration"
    existing: list[str] = []
    for depth in range(1, len(segments) + 1):
        try:
            await c.read(c.urls.node(group, segments[:depth]))
        except AdoNotFound:
            break
        existing = segments[:depth]
    if existing == segments:
        c.passed.append(f"{kind} path {full} exists")
        return
    try:  # an empty name can never be saved: 400 when allowed, 401/403 when not
        await c.call("POST", c.urls.node(group, existing), {"name": ""})
    except AdoAuthError as exc:
        c.problem(
            "node_permission",
            f"the {kind} path {full} does not exist and the PAT's user may not create it "
            f"(HTTP {exc.status}: needs 'Create child nodes' on the {group} root)",
            f"ask a project administrator to create {full} or grant 'Create child nodes', "
            f"or set azure_devops.{setting} to an existing path",
        )
        return
    except AdoPermanent:
        pass
    dates = " with dates" if kind == "iteration" and c.target.iteration_start else ""
    c.passed.append(f"{kind} path {full} will be created{dates}")


async def _test_plans(c: _Check) -> None:
    try:
        await c.read(c.urls.plans())
        await c.call("POST", c.urls.plans(), {})  # no name: refused with 400, nothing saved
    except AdoAuthError as exc:
        if exc.status == 403:
            c.problem(
                "test_plans",
                "the PAT's user has no Test Plans access (the Basic + Test Plans access level)",
                "the job runs without QA; ask an organization administrator to assign Basic + Test Plans",
                fatal=False,
                disables_qa=True,
            )
        else:
            c.problem(
                "scope",
                "the PAT cannot create test plans",
                "the job runs without QA; give the PAT the scope Test Management (Read & write)",
                fatal=False,
                disables_qa=True,
            )
        return
    except AdoPermanent:
        pass
    c.passed.append("Test Plans access")
