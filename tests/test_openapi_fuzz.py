"""A bounded schemathesis run over the whole OpenAPI document: every operation, generated valid and
invalid requests, against the real API (uvicorn, PostgreSQL, Temporal). No server error, and every
response conforms to the document (status code documented, body matching its schema, content type).

A few examples per operation by default; more with ``INVOICEFLOW_SCHEMATHESIS_EXAMPLES=200`` (or
``--schemathesis-examples 200``). Failures are collected over all operations and reported together."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

# What the issue asks of the document: no server error, and every response as documented. (Whether the
# server accepts every schema-valid body is not asked: a JSON schema cannot say "an IANA time zone" or
# "a customer that exists".)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
# INVOICEFLOW_SCHEMATHESIS_STRICT=1 also asks that schema-invalid requests be refused (4xx).
if os.environ.get("INVOICEFLOW_SCHEMATHESIS_STRICT") == "1":
    CHECKS.append(checks.negative_data_rejection)

pytestmark = pytest.mark.slow


def examples(config: pytest.Config) -> int:
    option = config.getoption("schemathesis_examples", default=None)
    return int(option or os.environ.get("INVOICEFLOW_SCHEMATHESIS_EXAMPLES", "4"))


def test_every_operation_conforms_to_the_document(served_api, request) -> None:  # type: ignore[no-untyped-def]
    served = served_api(generic_webhook_secret="generic-secret", stripe_webhook_secret="whsec_test")
    schema = schemathesis.openapi.from_url(f"{served.public_url}/openapi.json")
    headers = {"Authorization": f"Bearer {served.api_token}"}
    count = examples(request.config)
    failures: dict[str, list[str]] = {}
    operations = 0

    def fuzz(label: str, strategy) -> None:  # type: ignore[no-untyped-def]
        @given(case=strategy)
        @settings(
            max_examples=count,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case) -> None:  # type: ignore[no-untyped-def]
            try:
                case.call_and_validate(base_url=served.public_url, headers=headers, checks=CHECKS, timeout=20)
            except BaseException as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
                if isinstance(exc, KeyboardInterrupt):
                    raise
                failures.setdefault(label, []).append(f"{type(exc).__name__}: {exc}"[:1500])

        run()

    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        fuzz(operation.label, operation.as_strategy())
    assert operations >= 60
    report = "\n\n".join(
        f"{label}:\n  " + "\n  ".join(sorted(set(found))) for label, found in failures.items()
    )
    assert not failures, f"{len(failures)} of {operations} operations failed:\n{report}"
