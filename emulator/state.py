"""In-memory store of the emulated organization: projects, work items, nodes, test plans, counters."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulator.config import EmulatorConfig, FaultConfig

_NS = uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff")
DEFAULT_SPRINTS = ("Sprint 1", "Sprint 2", "Sprint 3")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def stable_guid(*parts: str) -> str:
    return str(uuid.uuid5(_NS, "/".join(parts)))


@dataclass(frozen=True)
class Project:
    name: str
    id: str
    process: str
    test_types: bool = False  # Basic only: the organization added the test types


@dataclass
class Relation:
    rel: str
    target: int
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class WorkItem:
    id: int
    project: str
    type_name: str
    rev: int
    fields: dict[str, Any]
    relations: list[Relation] = field(default_factory=list)
    created_at: float = 0.0  # state clock at commit, for the WIQL visibility lag

    @property
    def tags(self) -> list[str]:
        return split_tags(str(self.fields.get("System.Tags", "")))

    @property
    def parent_id(self) -> int | None:
        parent = self.fields.get("System.Parent")
        return parent if isinstance(parent, int) else None


@dataclass
class Node:
    id: int
    name: str
    structure: str  # "area" | "iteration"
    attributes: dict[str, Any] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    identifier: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: float | None = None  # state clock at creation (None: part of the project template)

    def child(self, name: str) -> Node | None:
        return next((c for c in self.children if c.name.casefold() == name.casefold()), None)


@dataclass
class TestPlan:
    id: int
    name: str
    project: str
    root_suite_id: int
    area_path: str
    iteration: str
    description: str = ""
    state: str = "Active"
    revision: int = 1


@dataclass
class TestSuite:
    id: int
    plan_id: int
    name: str
    suite_type: str
    parent_id: int | None
    requirement_id: int | None = None
    query_string: str | None = None
    test_case_ids: list[int] = field(default_factory=list)
    revision: int = 1


def split_tags(raw: str) -> list[str]:
    return [t.strip() for t in raw.split(";") if t.strip()]


@dataclass
class EmulatorState:
    """Everything the emulator remembers; reset() returns it to a fresh organization (ids go on)."""

    config: EmulatorConfig
    clock: Callable[[], float] = time.monotonic
    faults: FaultConfig = field(init=False)
    projects: dict[str, Project] = field(init=False)
    items: dict[int, WorkItem] = field(init=False)
    nodes: dict[tuple[str, str], Node] = field(init=False)  # (project, structure) -> root
    plans: dict[int, TestPlan] = field(init=False)
    suites: dict[int, TestSuite] = field(init=False)
    creates_by_tag: Counter[str] = field(init=False)
    status_counts: Counter[int] = field(init=False)
    faults_injected: Counter[str] = field(init=False)
    deadlines: dict[str, tuple[float, float]] = field(init=False)  # identity -> (announced, deadline)
    rng: random.Random = field(init=False)
    early_requests: int = 0
    requests_total: int = 0
    fault_calls: int = 0
    faults_fired: int = 0
    next_id: int = 1
    next_node_id: int = 1000
    saving_suites: set[int] = field(default_factory=set)  # parent suites with a suite save in progress
    team_iterations: dict[str, list[str]] = field(default_factory=dict)  # team → iteration identifiers
    recycle_bin: dict[int, WorkItem] = field(default_factory=dict)  # deleted, restorable (not destroyed)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.set_faults(self.config.faults)
        self.projects = {}
        for name, process in self.config.projects:
            self.projects[name.casefold()] = Project(
                name, stable_guid("project", name), process, self.config.basic_test_types
            )
        self.items, self.plans, self.suites, self.nodes = {}, {}, {}, {}
        self.creates_by_tag, self.status_counts, self.faults_injected = Counter(), Counter(), Counter()
        self.early_requests = self.requests_total = 0
        self.team_iterations = {}
        self.recycle_bin = {}
        # next_id and next_node_id keep counting: an id handed out once never names another item
        for project in self.projects.values():
            self.nodes[(project.name, "area")] = Node(self._node_id(), project.name, "area")
            root = Node(self._node_id(), project.name, "iteration")
            root.children = [Node(self._node_id(), s, "iteration") for s in DEFAULT_SPRINTS]
            self.nodes[(project.name, "iteration")] = root

    def set_faults(self, faults: FaultConfig) -> None:
        self.faults = faults
        self.rng = random.Random(faults.seed)
        self.fault_calls = 0
        self.faults_fired = 0
        self.deadlines = {}

    def _node_id(self) -> int:
        self.next_node_id += 1
        return self.next_node_id

    def new_node(self, name: str, structure: str, attributes: dict[str, Any]) -> Node:
        return Node(self._node_id(), name, structure, attributes, created_at=self.clock())

    def allocate_id(self) -> int:
        """Work item ids are unique across the organization (plans and suites share the counter)."""
        item_id = self.next_id
        self.next_id += 1
        return item_id

    def project(self, name_or_id: str) -> Project | None:
        key = name_or_id.casefold()
        found = self.projects.get(key)
        return found or next((p for p in self.projects.values() if p.id == key), None)

    def find_node(self, project: str, structure: str, segments: list[str]) -> Node | None:
        node: Node | None = self.nodes.get((project, structure))
        for segment in segments:
            if node is None:
                return None
            node = node.child(segment)
        return node

    def tree_path_exists(self, project: Project, structure: str, path: str) -> bool:
        """Work item paths are `Project\\A\\B`: no leading backslash, no Area/Iteration segment."""
        parts = path.split("\\")
        if not parts or parts[0].casefold() != project.name.casefold():
            return False
        node = self.find_node(project.name, structure, parts[1:])
        if node is None:
            return False
        lag = self.faults.node_lag_seconds  # a new node takes a while to reach every service
        return node.created_at is None or lag <= 0 or self.clock() - node.created_at >= lag

    # -- rate-limit bookkeeping per identity ----------------------------------------------------

    def note_arrival(self, identity: str) -> float:
        """Count a request arriving inside its identity's Retry-After window; return the seconds left."""
        now = self.clock()
        announced = self.deadlines.get(identity)
        if announced and announced[0] + self.faults.early_grace_seconds <= now < announced[1]:
            self.early_requests += 1
            return announced[1] - now
        return 0.0

    def announce_retry_after(self, identity: str, seconds: float) -> None:
        now = self.clock()
        previous = self.deadlines.get(identity)
        deadline = now + seconds
        if previous and previous[1] > deadline:
            return
        self.deadlines[identity] = (now, deadline)
