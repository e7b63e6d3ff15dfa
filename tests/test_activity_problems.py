"""A workflow step that keeps failing surfaces in GET /invoices/{id} with its error, attempt count and a
retry action; after the cause is fixed the retry runs it at once.

The bad data is written past the API (which now refuses it), as data from before this release or from a
bug would be: a due date in year 9999 makes the issue activity overflow on every attempt."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import update

from billing.totals import LineInput
from persistence import invoices as repo
from persistence.db import session_scope
from persistence.models import Customer, Invoice
from tests.support import api_client, customer_body, eventually
from worker import build_worker
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import InvoiceWorkflowInput


async def test_a_failing_step_is_shown_and_retried(temporal_env, make_settings, pg_url) -> None:
    client = temporal_env.client
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = (await api.post("/customers", json=customer_body())).json()
        with session_scope(pg_url) as session:
            invoice = repo.create_invoice(
                session,
                repo.NewInvoice(
                    customer=session.get(Customer, uuid.UUID(customer["id"])),
                    currency="USD",
                    lines=[LineInput("Support", Decimal(1), Decimal("100.00"))],
                    payment_terms="net_30",
                    due_date=date(9999, 12, 31),
                ),
            )
            invoice_id, workflow_id = invoice.id, invoice.workflow_id
        await client.start_workflow(
            InvoiceWorkflow.run,
            InvoiceWorkflowInput(invoice_id=str(invoice_id), customer_id=customer["id"], currency="USD"),
            id=workflow_id,
            task_queue=settings.task_queue,
        )

        async def failing():  # type: ignore[no-untyped-def]
            body = (await api.get(f"/invoices/{invoice_id}")).json()
            return body if body["problems"] else None

        body = await eventually(failing, timeout=30, what="the failing issue step in GET /invoices/{id}")
        [problem] = body["problems"]
        assert body["status"] == "draft"
        assert problem["activity"] == "issue_invoice" and problem["attempt"] >= 2, problem
        assert "Overflow" in problem["error_type"] + problem["error"], problem
        assert problem["retry"] == f"POST /invoices/{invoice_id}/activities/retry"

        # Fix the data, retry: the invoice is issued without waiting out the backoff.
        with session_scope(pg_url) as session:
            session.execute(
                update(Invoice).where(Invoice.id == invoice_id).values(requested_due_date=date(2027, 1, 31))
            )
        retried = await api.post(f"/invoices/{invoice_id}/activities/retry")
        assert retried.status_code == 202, retried.text

        async def issued():  # type: ignore[no-untyped-def]
            body = (await api.get(f"/invoices/{invoice_id}")).json()
            return body if body["number"] and not body["problems"] else None

        await eventually(issued, timeout=15, what="issued after the retry")
        assert (await api.post(f"/invoices/{invoice_id}/activities/retry")).status_code == 409
