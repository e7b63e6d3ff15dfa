"""`invoiceflow status` lists what needs a person; `invoiceflow doctor` finds what is wrong and says
how to fix it. Both run as the CLI runs (typer), against the real PostgreSQL, Temporal and SMTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from typer.testing import CliRunner

from core.settings import get_settings
from invoiceflow.cli import app
from persistence.db import session_scope
from persistence.models import OutboxEntry, WebhookEvent
from standins.server import free_port
from tests.conftest import target_of

runner = CliRunner()


def invoke(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        return runner.invoke(app, list(args))
    finally:
        get_settings.cache_clear()


def counts(result) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {s["name"]: s["count"] for s in json.loads(result.stdout)["sections"]}


def test_status_counts_and_lists_what_needs_a_person(monkeypatch: pytest.MonkeyPatch, pg_url: str) -> None:
    env = {"INVOICEFLOW_DATABASE_URL": pg_url}
    before = counts(invoke(monkeypatch, env, "status", "--json"))
    ref = f"PROJ-{uuid.uuid4().hex[:6]}"
    with session_scope(pg_url) as session:
        session.add(
            WebhookEvent(
                provider="jira",
                dedupe_key=ref,
                kind="milestone_done",
                system="jira",
                ref=ref,
                status="unmatched",
                payload={},
                note=f"no project is linked to jira {ref!r}",
                received_at=datetime.now(UTC) - timedelta(days=400),  # the oldest: listed first
            )
        )
        session.add(
            OutboxEntry(key=f"email:{ref}", kind="email.invoice", status="failed", last_error="550 no")
        )
    result = invoke(monkeypatch, env, "status", "--json")
    assert result.exit_code == 1  # something needs a person
    after = counts(result)
    assert after["unmatched webhook events"] == before["unmatched webhook events"] + 1
    assert after["outbox not done"] == before["outbox not done"] + 1
    assert after["awaiting approval"] == before["awaiting approval"]
    unmatched = next(
        s for s in json.loads(result.stdout)["sections"] if s["name"] == "unmatched webhook events"
    )
    assert unmatched["items"][0]["ref"] == f"jira {ref}"
    assert unmatched["oldest"] < (datetime.now(UTC) - timedelta(days=399)).isoformat()

    table = invoke(monkeypatch, env | {"COLUMNS": "220"}, "status")
    with session_scope(pg_url) as session:  # the database is shared: leave no stray rows for other tests
        session.query(WebhookEvent).filter(WebhookEvent.dedupe_key == ref).delete()
        session.query(OutboxEntry).filter(OutboxEntry.key == f"email:{ref}").delete()
    assert table.exit_code == 1
    for heading in (
        "awaiting approval",
        "accounting sync failures",
        "unmatched webhook events",
        "held invoices",
    ):
        assert heading in table.stdout
    assert ref in table.stdout


def healthy_env(pg_url: str, temporal_env, mailbox) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "INVOICEFLOW_DATABASE_URL": pg_url,
        "INVOICEFLOW_TEMPORAL_ADDRESS": target_of(temporal_env.client),
        "INVOICEFLOW_TEMPORAL_NAMESPACE": "default",
        "INVOICEFLOW_SMTP_HOST": "127.0.0.1",
        "INVOICEFLOW_SMTP_PORT": str(mailbox.smtp_port),
        "INVOICEFLOW_SECRET_KEY": "a-real-secret-for-the-doctor",
        "INVOICEFLOW_API_TOKEN": "a-real-token-for-the-doctor",
        "INVOICEFLOW_ACCOUNTING_PROVIDER": "none",
    }


def checks_of(result) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {c["name"]: c for c in json.loads(result.stdout)}


def test_doctor_passes_a_healthy_installation(monkeypatch, pg_url, temporal_env, mailbox) -> None:  # type: ignore[no-untyped-def]
    result = invoke(monkeypatch, healthy_env(pg_url, temporal_env, mailbox), "doctor", "--json")
    checks = checks_of(result)
    assert result.exit_code == 0, checks
    assert {
        "secret key",
        "API token",
        "database",
        "migrations",
        "temporal",
        "search attributes",
        "SMTP",
        "accounting",
    } <= set(checks)
    assert all(c["ok"] for c in checks.values())


def test_doctor_says_what_to_fix(monkeypatch, pg_url, temporal_env, mailbox) -> None:  # type: ignore[no-untyped-def]
    env = (
        healthy_env(pg_url, temporal_env, mailbox)
        | {
            "INVOICEFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing listens there
            "INVOICEFLOW_SMTP_PORT": str(free_port()),
            "INVOICEFLOW_SECRET_KEY": "dev-only-change-me",
            "INVOICEFLOW_ACCOUNTING_PROVIDER": "xero",
            "INVOICEFLOW_XERO_TENANT_ID": f"never-connected-{uuid.uuid4().hex[:6]}",
            "INVOICEFLOW_XERO_CLIENT_ID": "client",
            "INVOICEFLOW_XERO_CLIENT_SECRET": "client-secret",
        }
    )
    result = invoke(monkeypatch, env, "doctor", "--json")
    assert result.exit_code == 1
    checks = checks_of(result)
    failed = {name for name, c in checks.items() if not c["ok"]}
    assert failed == {"secret key", "temporal", "search attributes", "SMTP", "accounting"}, checks
    assert "INVOICEFLOW_SECRET_KEY" in checks["secret key"]["fix"]
    assert "INVOICEFLOW_TEMPORAL_ADDRESS" in checks["temporal"]["fix"]
    assert "invoiceflow connect xero" in checks["accounting"]["fix"]
    assert checks["database"]["ok"] and checks["migrations"]["ok"]

    table = invoke(monkeypatch, env | {"COLUMNS": "220"}, "doctor")
    assert table.exit_code == 1 and "FAIL" in table.stdout and "5 problem(s) to fix" in table.stderr


async def test_doctor_names_missing_search_attributes(monkeypatch, pg_url, temporal_env, mailbox) -> None:  # type: ignore[no-untyped-def]
    namespace = f"bare-{uuid.uuid4().hex[:6]}"
    await temporal_env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    env = healthy_env(pg_url, temporal_env, mailbox) | {"INVOICEFLOW_TEMPORAL_NAMESPACE": namespace}
    checks: dict[str, dict] = {}
    for _ in range(20):  # a new namespace takes a moment to be served
        result = await asyncio.to_thread(invoke, monkeypatch, env, "doctor", "--json")
        checks = checks_of(result)
        if checks["temporal"]["ok"]:
            break
        await asyncio.sleep(0.5)
    assert checks["temporal"]["ok"], checks
    sa = checks["search attributes"]
    assert not sa["ok"] and "InvoiceStatus" in sa["detail"]
    assert f"--namespace {namespace} --name InvoiceStatus --type Keyword" in sa["fix"]
