"""Work item type and field fixtures for the four system processes (Agile, Scrum, CMMI, Basic).

The per-type field sets follow the process guidance: StoryPoints only on Agile User Story/Bug, Effort on
Scrum PBI/Bug and Epic/Feature, Size on CMMI Requirement/Bug, no AcceptanceCriteria in Basic, no
OriginalEstimate on Scrum Task, RemainingWork on every Task, Activity on Agile/Scrum Task, Discipline on CMMI.
"""

from __future__ import annotations

from dataclasses import dataclass

PROCESS_IDS: dict[str, str] = {
    "Scrum": "6b724908-ef14-45cf-84f8-768b5384da45",
    "Basic": "b8a3a935-7e91-48b8-a94c-606d37c3e9f2",
    "Agile": "adcc42ab-9882-485e-a3ed-7678f01f66bc",
    "CMMI": "27450541-8e31-4150-9947-dc59f998fc01",
}


@dataclass(frozen=True)
class FieldDef:
    ref: str
    name: str
    kind: str  # string | html | plainText | treePath | integer | double | dateTime | identity
    allowed: tuple[str | int, ...] = ()
    read_only: bool = False


@dataclass(frozen=True)
class TypeDef:
    name: str
    fields: tuple[str, ...]  # type-specific ref names (system fields are always present)
    states: tuple[str, ...]
    initial_reason: str
    backlog: bool = False  # gets ValueArea default

    @property
    def ref_name(self) -> str:
        return "Microsoft.VSTS.WorkItemTypes." + self.name.replace(" ", "")

    @property
    def initial_state(self) -> str:
        return self.states[0]


_F = FieldDef
FIELDS: dict[str, FieldDef] = {
    f.ref: f
    for f in (
        _F("System.Id", "ID", "integer", read_only=True),
        _F("System.Rev", "Rev", "integer", read_only=True),
        _F("System.Title", "Title", "string"),
        _F("System.Description", "Description", "html"),
        _F("System.AreaPath", "Area Path", "treePath"),
        _F("System.IterationPath", "Iteration Path", "treePath"),
        _F("System.TeamProject", "Team Project", "string", read_only=True),
        _F("System.WorkItemType", "Work Item Type", "string", read_only=True),
        _F("System.State", "State", "string"),
        _F("System.Reason", "Reason", "string"),
        _F("System.Tags", "Tags", "plainText"),
        _F("System.AssignedTo", "Assigned To", "identity"),
        _F("System.CreatedDate", "Created Date", "dateTime", read_only=True),
        _F("System.CreatedBy", "Created By", "identity", read_only=True),
        _F("System.ChangedDate", "Changed Date", "dateTime", read_only=True),
        _F("System.ChangedBy", "Changed By", "identity", read_only=True),
        _F("System.CommentCount", "Comment Count", "integer", read_only=True),
        _F("System.History", "History", "html"),
        _F("System.Parent", "Parent", "integer", read_only=True),
        _F("Microsoft.VSTS.Common.StateChangeDate", "State Change Date", "dateTime", read_only=True),
        _F("Microsoft.VSTS.Common.Priority", "Priority", "integer", (1, 2, 3, 4)),
        _F("Microsoft.VSTS.Common.ValueArea", "Value Area", "string", ("Architectural", "Business")),
        _F("Microsoft.VSTS.Common.BusinessValue", "Business Value", "integer"),
        _F("Microsoft.VSTS.Common.AcceptanceCriteria", "Acceptance Criteria", "html"),
        _F("Microsoft.VSTS.Common.Risk", "Risk", "string", ("1 - High", "2 - Medium", "3 - Low")),
        _F("Microsoft.VSTS.Common.Severity", "Severity", "string",
           ("1 - Critical", "2 - High", "3 - Medium", "4 - Low")),
        _F("Microsoft.VSTS.Common.Activity", "Activity", "string",
           ("Deployment", "Design", "Development", "Documentation", "Requirements", "Testing")),
        _F("Microsoft.VSTS.Common.Discipline", "Discipline", "string",
           ("Analysis", "Development", "Test", "User Education", "User Experience")),
        _F("Microsoft.VSTS.Scheduling.StoryPoints", "Story Points", "double"),
        _F("Microsoft.VSTS.Scheduling.Effort", "Effort", "double"),
        _F("Microsoft.VSTS.Scheduling.Size", "Size", "double"),
        _F("Microsoft.VSTS.Scheduling.OriginalEstimate", "Original Estimate", "double"),
        _F("Microsoft.VSTS.Scheduling.RemainingWork", "Remaining Work", "double"),
        _F("Microsoft.VSTS.Scheduling.CompletedWork", "Completed Work", "double"),
        _F("Microsoft.VSTS.TCM.ReproSteps", "Repro Steps", "html"),
        _F("Microsoft.VSTS.TCM.Steps", "Steps", "html"),
        _F("Microsoft.VSTS.TCM.AutomationStatus", "Automation status", "string",
           ("Not Automated", "Planned", "Automated")),
    )
}  # fmt: skip

SYSTEM_FIELDS: tuple[str, ...] = tuple(ref for ref in FIELDS if ref.startswith("System."))

_PRI = "Microsoft.VSTS.Common.Priority"
_VA = "Microsoft.VSTS.Common.ValueArea"
_BV = "Microsoft.VSTS.Common.BusinessValue"
_AC = "Microsoft.VSTS.Common.AcceptanceCriteria"
_RISK = "Microsoft.VSTS.Common.Risk"
_SEV = "Microsoft.VSTS.Common.Severity"
_ACT = "Microsoft.VSTS.Common.Activity"
_DISC = "Microsoft.VSTS.Common.Discipline"
_SP = "Microsoft.VSTS.Scheduling.StoryPoints"
_EFF = "Microsoft.VSTS.Scheduling.Effort"
_SIZE = "Microsoft.VSTS.Scheduling.Size"
_OE = "Microsoft.VSTS.Scheduling.OriginalEstimate"
_RW = "Microsoft.VSTS.Scheduling.RemainingWork"
_CW = "Microsoft.VSTS.Scheduling.CompletedWork"
_REPRO = "Microsoft.VSTS.TCM.ReproSteps"
_STEPS = "Microsoft.VSTS.TCM.Steps"
_AUTO = "Microsoft.VSTS.TCM.AutomationStatus"

_PORTFOLIO = (_PRI, _VA, _BV, _AC, _RISK, _EFF)
_TEST_CASE = TypeDef("Test Case", (_PRI, _STEPS, _AUTO), ("Design", "Ready", "Closed"), "New")
# The hidden types (Microsoft.HiddenCategory): listed by `workitemtypes` like any other type, but
# plans and suites are made through the test plan API. Every process has them except Basic.
_HIDDEN = (
    TypeDef("Test Plan", (), ("Active", "Inactive"), "New test plan"),
    TypeDef("Test Suite", (), ("In Planning", "In Progress", "Completed"), "New test suite"),
    TypeDef("Shared Steps", (_PRI, _STEPS), ("Active", "Closed"), "New shared steps"),
)


def _t(
    name: str, fields: tuple[str, ...], states: tuple[str, ...], reason: str, backlog: bool = False
) -> TypeDef:
    return TypeDef(name, fields, states, reason, backlog)


_AGILE_STATES = ("New", "Active", "Resolved", "Closed", "Removed")
_SCRUM_STATES = ("New", "Approved", "Committed", "Done", "Removed")
_CMMI_STATES = ("Proposed", "Active", "Resolved", "Closed")

PROCESSES: dict[str, tuple[TypeDef, ...]] = {
    "Agile": (
        _t("Epic", _PORTFOLIO, _AGILE_STATES, "New", True),
        _t("Feature", _PORTFOLIO, _AGILE_STATES, "New", True),
        _t("User Story", (_PRI, _VA, _AC, _RISK, _SP), _AGILE_STATES, "New", True),
        _t("Task", (_PRI, _ACT, _OE, _RW, _CW), ("New", "Active", "Closed", "Removed"), "New"),
        _t("Bug", (_PRI, _VA, _AC, _SEV, _SP, _ACT, _OE, _RW, _CW, _REPRO), _AGILE_STATES, "New", True),
        _t("Issue", (_PRI,), ("Active", "Closed"), "New"),
        _TEST_CASE,
        *_HIDDEN,
    ),
    "Scrum": (
        _t("Epic", _PORTFOLIO, _SCRUM_STATES, "New epic", True),
        _t("Feature", _PORTFOLIO, _SCRUM_STATES, "New feature", True),
        _t("Product Backlog Item", (_PRI, _VA, _BV, _AC, _EFF), _SCRUM_STATES, "New backlog item", True),
        _t("Task", (_PRI, _ACT, _RW), ("To Do", "In Progress", "Done", "Removed"), "New task"),
        _t(
            "Bug", (_PRI, _VA, _AC, _SEV, _EFF, _ACT, _RW, _REPRO), _SCRUM_STATES, "New defect reported", True
        ),
        _t("Impediment", (_PRI,), ("Open", "Closed"), "New"),
        _TEST_CASE,
        *_HIDDEN,
    ),
    "CMMI": (
        _t("Epic", (*_PORTFOLIO, _SIZE), _CMMI_STATES, "New", True),
        _t("Feature", (*_PORTFOLIO, _SIZE), _CMMI_STATES, "New", True),
        _t("Requirement", (_PRI, _VA, _RISK, _SIZE), _CMMI_STATES, "New", True),
        _t("Task", (_PRI, _DISC, _OE, _RW, _CW), _CMMI_STATES, "New"),
        _t("Bug", (_PRI, _VA, _SEV, _SIZE, _DISC, _OE, _RW, _CW, _REPRO), _CMMI_STATES, "New", True),
        _t("Change Request", (_PRI,), _CMMI_STATES, "New"),
        _t("Issue", (_PRI,), _CMMI_STATES, "New"),
        _t("Risk", (_PRI,), _CMMI_STATES, "New"),
        _t("Review", (), _CMMI_STATES, "New"),
        _TEST_CASE,
        *_HIDDEN,
    ),
    "Basic": (
        _t("Epic", (_PRI, _EFF), ("To Do", "Doing", "Done"), "Added to backlog"),
        _t("Issue", (_PRI, _EFF), ("To Do", "Doing", "Done"), "Added to backlog"),
        _t("Task", (_PRI, _RW), ("To Do", "Doing", "Done"), "Added to backlog"),
    ),
}

REQUIREMENT_TYPES = frozenset({"User Story", "Product Backlog Item", "Requirement", "Issue", "Bug"})


def types_of(process: str, test_types: bool = False) -> tuple[TypeDef, ...]:
    """The process's types; ``test_types`` adds the test types to Basic (an organization can)."""
    types = PROCESSES[process]
    return (*types, _TEST_CASE, *_HIDDEN) if test_types and process == "Basic" else types


def find_type(process: str, name: str, test_types: bool = False) -> TypeDef | None:
    """Type lookup is case-insensitive, like the service."""
    wanted = name.casefold()
    return next((t for t in types_of(process, test_types) if t.name.casefold() == wanted), None)


def type_fields(type_def: TypeDef) -> tuple[str, ...]:
    return SYSTEM_FIELDS + type_def.fields
