"""Kill the worker process in the middle of sending the invoice email; exactly one email arrives.

Both crash windows of an SMTP send, with a real worker process, the real SMTP server and PostgreSQL:
1. after the server accepted the message, before Temporal learned the activity finished;
2. during the SMTP conversation, before the server accepted (it holds its reply; the client dies).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from core.settings import Settings
from invoiceflow.mailbox import AcceptGate, DevMailbox
from persistence.db import session_scope
from persistence.models import OutboxEntry
from tests.support import api_client, customer_body, eventually
from worker import build_worker
from workflows.invoice import InvoiceWorkflow

ROOT = Path(__file__).resolve().parent.parent


def spawn_worker(settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        INVOICEFLOW_DATABASE_URL=settings.require_database_url(),
        INVOICEFLOW_TEMPORAL_ADDRESS=settings.temporal_address,
        INVOICEFLOW_TEMPORAL_NAMESPACE=settings.temporal_namespace,
        INVOICEFLOW_TASK_QUEUE=settings.task_queue,
        INVOICEFLOW_SMTP_HOST=settings.smtp_host or "",
        INVOICEFLOW_SMTP_PORT=str(settings.smtp_port),
    )
    return subprocess.Popen([sys.executable, "-m", "tests.crashing_worker", *args], cwd=ROOT, env=env)


def outbox_row(settings: Settings, invoice_id: str) -> OutboxEntry:
    with session_scope(settings.require_database_url()) as session:
        return session.scalars(
            select(OutboxEntry).where(OutboxEntry.key == f"invoice:{invoice_id}:sent")
        ).one()


async def _create_invoice(settings: Settings, client) -> tuple[dict, dict]:  # type: ignore[no-untyped-def]
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
    return customer, invoice


async def _wait_open(client, invoice: dict) -> None:  # type: ignore[no-untyped-def]
    handle = client.get_workflow_handle(invoice["workflow_id"])

    async def is_open():  # type: ignore[no-untyped-def]
        state = await handle.query(InvoiceWorkflow.state)
        return state.status == "open"

    await eventually(is_open, timeout=90, what="invoice open after the crash")


async def test_crash_after_send_before_completion(temporal_env, make_settings, mailbox, tmp_path) -> None:
    client = temporal_env.client
    settings = make_settings(client)
    marker = tmp_path / "crashed"
    customer, invoice = await _create_invoice(settings, client)
    process = spawn_worker(settings, str(marker))
    try:
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
    assert marker.exists()
    assert outbox_row(settings, invoice["id"]).status == "done"

    # A fresh worker picks the activity up again after its heartbeat timeout: the outbox says done.
    async with build_worker(client, settings):
        await _wait_open(client, invoice)
    messages = mailbox.store.list()
    assert len([m for m in messages if customer["emails"][0] in m.rcpt_tos]) == 1
    row = outbox_row(settings, invoice["id"])
    assert row.attempts == 1


async def test_crash_during_smtp_conversation(temporal_env, make_settings, tmp_path) -> None:
    client = temporal_env.client
    gate = AcceptGate(held=True)
    with DevMailbox(tmp_path / "held-mail", before_accept=gate) as held_mailbox:
        settings = make_settings(client, smtp_port=held_mailbox.smtp_port, email_unknown_resend_delay_s=0.5)
        customer, invoice = await _create_invoice(settings, client)
        process = spawn_worker(settings)
        try:
            gate.wait_for_waiting(1, timeout=60)  # the whole message is at the server, awaiting its 250
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
        gate.wait_for_abandoned(1)
        gate.release()
        assert held_mailbox.store.list() == []  # never accepted
        # Known: the crash came after the final dot, so the outcome is unknown (the resend below is counted).
        assert outbox_row(settings, invoice["id"]).status == "data_sent"

        async with build_worker(client, settings):
            await _wait_open(client, invoice)
        messages = [m for m in held_mailbox.store.list() if customer["emails"][0] in m.rcpt_tos]
        assert len(messages) == 1
        row = outbox_row(settings, invoice["id"])
        assert row.status == "done" and row.attempts == 2 and row.payload["unknown_resends"] == 1
        assert messages[0].message_id == row.result["message_id"]  # the deterministic Message-ID
