"""WrappedException errors as Azure DevOps sends them.

AdoError(status, type_key, message)     -> JSON WrappedException + X-TFS-ServiceError header
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from aiohttp import web

_TYPE_NAMESPACES = {
    "ProjectDoesNotExistWithNameException": "Microsoft.TeamFoundation.Core.WebApi",
    "VssVersionNotSpecifiedException": "Microsoft.VisualStudio.Services.WebApi",
}
JSON_CONTENT_TYPE = "application/json; charset=utf-8"


class AdoError(Exception):
    """An error the emulated service reports with a WrappedException body."""

    def __init__(
        self,
        status: int,
        type_key: str,
        message: str,
        custom_properties: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type_key = type_key
        self.message = message
        self.custom_properties = custom_properties
        self.headers = headers or {}


def wrapped_exception(
    type_key: str, message: str, custom_properties: dict[str, Any] | None = None
) -> dict[str, Any]:
    namespace = _TYPE_NAMESPACES.get(type_key, "Microsoft.TeamFoundation.WorkItemTracking.Server")
    body: dict[str, Any] = {"$id": "1"}
    if custom_properties is not None:
        body["customProperties"] = custom_properties
    body.update(
        {
            "innerException": None,
            "message": message,
            "typeName": f"{namespace}.{type_key}, {namespace}",
            "typeKey": type_key,
            "errorCode": 0,
            "eventId": 3000,
        }
    )
    return body


def error_response(err: AdoError) -> web.Response:
    body = json.dumps(wrapped_exception(err.type_key, err.message, err.custom_properties))
    headers = {"X-TFS-ServiceError": quote(err.message[:500]), **err.headers}
    return web.Response(status=err.status, text=body, content_type="application/json", headers=headers)


def not_found_item(item_id: int) -> AdoError:
    return AdoError(
        404,
        "WorkItemUnauthorizedAccessException",
        f"TF401232: Work item {item_id} does not exist, or you do not have permissions to read it.",
    )


def bad_request(type_key: str, message: str) -> AdoError:
    return AdoError(400, type_key, message)


def rule_error(field_ref: str, field_name: str, code: str) -> AdoError:
    message = f"TF401320: Rule Error for field {field_name}. Error code: {code}."
    detail = {
        "fieldReferenceName": field_ref,
        "fieldStatusFlags": code.lower(),
        "errorMessage": message,
        "fieldStatusCode": 524293,
        "ruleValidationErrors": None,
    }
    props = {
        "FieldReferenceName": None,
        "FieldStatusFlags": "none",
        "ErrorMessage": message,
        "FieldStatusCode": 0,
        "RuleValidationErrors": [detail],
    }
    return AdoError(400, "RuleValidationException", message, props)
