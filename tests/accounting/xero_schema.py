"""Validate recorded Xero traffic against Xero's own OpenAPI description (a copy lives next to the
stand-in, see standins/accounting/xero_accounting.yaml): request bodies with the write rules (no
read-only fields), 200 bodies with the read rules, 400 bodies against ``Error``."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker

import standins.accounting
from standins.accounting.common import RecordedCall

SPEC_PATH = Path(standins.accounting.__file__).parent / "xero_accounting.yaml"

# (method, path pattern) → (request schema, 200 response schema)
ROUTES: list[tuple[str, re.Pattern[str], str | None, str]] = [
    ("PUT", re.compile(r"/Invoices$"), "Invoices", "Invoices"),
    ("POST", re.compile(r"/Invoices(/[^/]+)?$"), "Invoices", "Invoices"),
    ("GET", re.compile(r"/Invoices(/[^/]+)?$"), None, "Invoices"),
    ("PUT", re.compile(r"/Contacts$"), "Contacts", "Contacts"),
    ("GET", re.compile(r"/Contacts(/[^/]+)?$"), None, "Contacts"),
    ("PUT", re.compile(r"/Payments$"), "Payments", "Payments"),
    ("GET", re.compile(r"/Payments$"), None, "Payments"),
]


@cache
def _components() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_PATH.open(encoding="utf-8") as handle:
        return dict(yaml.load(handle, Loader=loader)["components"])


@cache
def _validator(schema: str, write: bool) -> Any:
    cls = OAS30WriteValidator if write else OAS30ReadValidator
    return cls(
        {"$ref": f"#/components/schemas/{schema}", "components": _components()},
        format_checker=oas30_format_checker,
    )


def errors_in(schema: str, instance: Any, *, write: bool) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _validator(schema, write).iter_errors(instance)
    ]


def validate_calls(calls: list[RecordedCall]) -> int:
    """Check every JSON request and response in ``calls``; returns how many bodies were checked.
    Bodies are parsed the plain way (numbers as floats) because the spec's ``format: double`` is about
    the JSON type on the wire, which is what is being checked here."""
    checked, problems = 0, []
    for call in calls:
        route = next(
            (
                (req, resp)
                for method, pattern, req, resp in ROUTES
                if method == call.method and pattern.search(call.path)
            ),
            None,
        )
        assert route is not None, f"no schema known for {call.method} {call.path}"
        request_schema, response_schema = route
        if request_schema and call.body:
            problems += [
                f"request {call.method} {call.path} {p}"
                for p in errors_in(request_schema, json.loads(call.body), write=True)
            ]
            checked += 1
        if call.status == 200:
            problems += [
                f"response {call.method} {call.path} {p}"
                for p in errors_in(response_schema, json.loads(call.response), write=False)
            ]
            checked += 1
        elif call.status == 400:
            problems += [
                f"error {call.method} {call.path} {p}"
                for p in errors_in("Error", json.loads(call.response), write=False)
            ]
            checked += 1
    assert not problems, "\n".join(problems)
    return checked
