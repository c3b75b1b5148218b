"""URLs of the ADO REST routes we call, percent-encoded by hand (spaces as %20, never '+')."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from yarl import URL

API_VERSION = "7.1"


def _seg(value: str) -> str:
    return quote(value, safe="")


class AdoUrls:
    """Builds every URL from the organization URL and the project name (or GUID)."""

    def __init__(self, organization_url: str, project: str) -> None:
        self.org = organization_url.rstrip("/")
        self.project = project
        self._proj = f"{self.org}/{_seg(project)}"

    @staticmethod
    def _url(base: str, **query: str) -> URL:
        params = {**query, "api-version": API_VERSION}
        return URL(f"{base}?{urlencode(params, quote_via=quote, safe=',$')}", encoded=True)

    def project_info(self) -> URL:
        return self._url(f"{self.org}/_apis/projects/{_seg(self.project)}", includeCapabilities="true")

    def work_item_types(self) -> URL:
        return self._url(f"{self._proj}/_apis/wit/workitemtypes")

    def type_fields(self, type_name: str) -> URL:
        return self._url(
            f"{self._proj}/_apis/wit/workitemtypes/{_seg(type_name)}/fields", **{"$expand": "allowedValues"}
        )

    def create(self, type_name: str, *, validate_only: bool = False) -> URL:
        extra = {"validateOnly": "true"} if validate_only else {}
        return self._url(
            f"{self._proj}/_apis/wit/workitems/${_seg(type_name)}", suppressNotifications="true", **extra
        )

    def work_items(self, ids: list[int], fields: list[str]) -> URL:
        return self._url(
            f"{self._proj}/_apis/wit/workitems",
            ids=",".join(str(i) for i in ids),
            fields=",".join(fields),
            errorPolicy="omit",
        )

    def work_item(self, ado_id: int) -> URL:
        return self._url(f"{self._proj}/_apis/wit/workitems/{ado_id}")

    def wiql(self) -> URL:
        return self._url(f"{self._proj}/_apis/wit/wiql")

    def node(self, group: str, path: list[str]) -> URL:
        tail = "".join("/" + _seg(p) for p in path)
        return self._url(f"{self._proj}/_apis/wit/classificationnodes/{group}{tail}")

    def team_iterations(self, team: str) -> URL:
        return self._url(f"{self._proj}/{_seg(team)}/_apis/work/teamsettings/iterations")

    def plans(self, continuation: str | None = None) -> URL:
        extra = {"continuationToken": continuation} if continuation else {}
        return self._url(f"{self._proj}/_apis/testplan/plans", **extra)

    def plan(self, plan_id: int) -> URL:
        return self._url(f"{self._proj}/_apis/testplan/plans/{plan_id}")

    def suites(self, plan_id: int, continuation: str | None = None) -> URL:
        extra = {"continuationToken": continuation} if continuation else {}
        return self._url(f"{self._proj}/_apis/testplan/Plans/{plan_id}/suites", **extra)

    def suite_cases(self, plan_id: int, suite_id: int) -> URL:
        return self._url(f"{self._proj}/_apis/testplan/Plans/{plan_id}/Suites/{suite_id}/TestCase")

    def relation(self, ado_id: int) -> str:
        """The full work-item REST URL a relation must point at (org-scoped form)."""
        return f"{self.org}/_apis/wit/workItems/{ado_id}"

    def browser(self, ado_id: int) -> str:
        return f"{self._proj}/_workitems/edit/{ado_id}"

    def plan_browser(self, plan_id: int, suite_id: int | None = None) -> str:
        suffix = f"&suiteId={suite_id}" if suite_id is not None else ""
        return f"{self._proj}/_testPlans/define?planId={plan_id}{suffix}"
