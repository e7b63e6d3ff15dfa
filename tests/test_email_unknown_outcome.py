"""An email whose send has an unknown outcome (the worker is killed after the final dot, while a slow
relay holds its 250) is resent at most INVOICEFLOW_EMAIL_MAX_UNKNOWN_RESENDS times, later; then it
waits for an operator, shown as "may have been delivered" on the invoice's timeline and in the outbox,
until the operator marks it delivered (or resends it). Real worker processes, SIGKILL, a real relay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from core.settings import Settings
from persistence.db import session_scope
from persistence.models import OutboxEntry
from standins.smtp_relay import SlowRelay
from tests.support import api_client, customer_body, eventually
from worker import build_worker
from workflows.invoice import InvoiceWorkflow

ROOT = Path(__file__).resolve().parent.parent
FAST = {
    "email_unknown_resend_delay_s": 0.5,
    "email_operator_poll_s": 0.5,
}


def spawn_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """A real worker process with these settings (the chaos tests kill it)."""
    env = dict(os.environ)
    env.update(
        INVOICEFLOW_DATABASE_URL=settings.require_database_url(),
        INVOICEFLOW_TEMPORAL_ADDRESS=settings.temporal_address,
        INVOICEFLOW_TEMPORAL_NAMESPACE=settings.temporal_namespace,
        INVOICEFLOW_TASK_QUEUE=settings.task_queue,
        INVOICEFLOW_SMTP_HOST=settings.smtp_host or "",
        INVOICEFLOW_SMTP_PORT=str(settings.smtp_port),
        INVOICEFLOW_SECRET_KEY=settings.secret_key,
        INVOICEFLOW_EMAIL_MAX_UNKNOWN_RESENDS=str(settings.email_max_unknown_resends),
        INVOICEFLOW_EMAIL_UNKNOWN_RESEND_DELAY_S=str(settings.email_unknown_resend_delay_s),
        INVOICEFLOW_EMAIL_OPERATOR_POLL_S=str(settings.email_operator_poll_s),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crashing_worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def state_of(client, invoice: dict):  # type: ignore[no-untyped-def]
    return await client.get_workflow_handle(invoice["workflow_id"]).query(InvoiceWorkflow.state)


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def outbox_row(settings: Settings, key: str) -> OutboxEntry:
    with session_scope(settings.require_database_url()) as session:
        return session.scalars(select(OutboxEntry).where(OutboxEntry.key == key)).one()


@pytest.mark.slow
async def test_unknown_outcomes_resend_once_then_wait_for_an_operator(
    temporal_env, make_settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    with SlowRelay(tmp_path / "relay", delay_s=30) as relay:  # its 250 never comes in time
        settings = make_settings(client, smtp_port=relay.smtp_port, **FAST)
        async with api_client(settings, client) as api:
            customer = (await api.post("/customers", json=customer_body())).json()
            invoice = (
                await api.post(
                    "/invoices",
                    json={
                        "customer_id": customer["id"],
                        "lines": [{"description": "Ops", "unit_price": "42.00"}],
                    },
                )
            ).json()
            key = f"invoice:{invoice['id']}:sent"
            for copies in (1, 2):  # the first send, then the one resend; each killed before its 250
                process = spawn_worker(settings)
                try:
                    relay.wait_for_count(copies, timeout=60)
                finally:
                    kill(process)
                assert (
                    outbox_row(settings, key).status == "data_sent"
                )  # the crash is known to be after the dot

            async with build_worker(client, settings):

                async def in_doubt():  # type: ignore[no-untyped-def]
                    rows = (await api.get("/outbox/emails")).json()
                    return [r for r in rows if r["key"] == key and r["status"] == "uncertain"] or None

                [row] = await eventually(in_doubt, timeout=60, what="the email waits for an operator")
                assert row["may_have_been_delivered"] and row["resends_after_unknown"] == 1
                assert row["unknown_outcomes"] == 2 and row["to"] == customer["emails"]
                timeline = [
                    e["kind"] for e in (await api.get(f"/invoices/{invoice['id']}")).json()["timeline"]
                ]
                assert timeline.count("email.invoice.outcome_unknown") == 2, timeline
                assert "email.invoice.may_have_been_delivered" in timeline, timeline
                assert relay.count == 2  # waiting sends nothing more
                assert (await state_of(client, invoice)).status != "open"  # the step has not completed

                done = await api.post(f"/outbox/emails/{key}/mark-delivered")
                assert done.status_code == 200 and done.json()["status"] == "done", done.text
                again = await api.post(f"/outbox/emails/{key}/mark-delivered")
                assert again.status_code == 409

                async def is_open():  # type: ignore[no-untyped-def]
                    return (await state_of(client, invoice)).status == "open" or None

                await eventually(is_open, timeout=60, what="the invoice goes on once the operator decided")
        ids = Counter(m.message_id for m in relay.store.list())
        assert list(ids.values()) == [2]  # one email, two copies with one Message-ID, never a third


@pytest.mark.slow
async def test_an_operator_resend_sends_once_more(temporal_env, make_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    with SlowRelay(tmp_path / "relay", delay_s=30) as relay:
        settings = make_settings(client, smtp_port=relay.smtp_port, email_max_unknown_resends=0, **FAST)
        async with api_client(settings, client) as api:
            customer = (await api.post("/customers", json=customer_body())).json()
            invoice = (
                await api.post(
                    "/invoices",
                    json={
                        "customer_id": customer["id"],
                        "lines": [{"description": "Ops", "unit_price": "7.00"}],
                    },
                )
            ).json()
            key = f"invoice:{invoice['id']}:sent"
            process = spawn_worker(settings)
            try:
                relay.wait_for_count(1, timeout=60)
            finally:
                kill(process)
            relay.delay_s = 0.1  # the relay answers promptly again
            async with build_worker(client, settings):

                async def uncertain():  # type: ignore[no-untyped-def]
                    return outbox_row(settings, key).status == "uncertain" or None

                await eventually(uncertain, timeout=60, what="no resend allowed: waits for an operator")
                resent = await api.post(f"/outbox/emails/{key}/resend")
                assert resent.status_code == 200 and resent.json()["status"] == "resend", resent.text

                async def is_open():  # type: ignore[no-untyped-def]
                    return (await state_of(client, invoice)).status == "open" or None

                await eventually(is_open, timeout=60, what="resent by the operator")
        assert relay.count == 2 and outbox_row(settings, key).status == "done"
        assert (
            await_missing := [e for e in relay.store.list() if customer["emails"][0] not in e.rcpt_tos]
        ) == [], await_missing
