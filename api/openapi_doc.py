"""The OpenAPI document describes the server: the error answers every operation can give.

FastAPI documents a route's success answer and its 422; the API also answers, for any operation, 400
(a NUL character in the path or query, a body that is not JSON), 401 (operator routes without the
bearer token), 404 (an id that does not exist), 409 (a change the invoice's state refuses), 413 (a body
over the limit) and 503 (Temporal unreachable). A client (or schemathesis) reading the document would
otherwise meet status codes it was never told about. All error bodies have one shape, ``Error``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {
        "detail": {
            "description": "What was refused and why: a message, or a list of {loc, msg, type} per field.",
            "anyOf": [{"type": "string"}, {"type": "array"}, {"type": "object"}],
        }
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_DESCRIPTIONS = {
    "400": "Malformed request (a NUL character in the path or query, a body that is not JSON)",
    "401": "Missing or wrong bearer token (INVOICEFLOW_API_TOKEN), or a webhook's bad signature",
    "404": "Not found (or the feature is not configured)",
    "409": "Conflicts with the current state (e.g. the invoice is already paid)",
    "413": "Request body above INVOICEFLOW_MAX_BODY_BYTES, refused before it is read",
    "422": "Validation error naming the field",
    "503": "A service the request needs (Temporal) is unreachable; retry later",
}
_METHODS = ("get", "put", "post", "delete", "patch")


def _error(code: str) -> dict[str, Any]:
    return {"description": _DESCRIPTIONS[code], "content": {"application/json": {"schema": _ERROR_REF}}}


def document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with the common error responses added to every operation."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            codes = ["400", "401", "404", "409", "422", "503"]
            if method in ("post", "put", "patch"):
                codes.append("413")
            if path.startswith("/webhooks/") and method == "post" and "202" not in responses:
                responses["202"] = {
                    "description": "Accepted and kept for an operator (no project knows the event yet)",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            for code in codes:
                responses.setdefault(code, _error(code))
    app.openapi_schema = schema
    return schema


def install(app: FastAPI) -> None:
    app.openapi = lambda: document(app)  # type: ignore[method-assign]
