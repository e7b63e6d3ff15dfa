"""Throughput section: invoice lives against the bare workflow with as many activities, same server, same
run, with the books stand-in holding each invoice and payment exactly once."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.worker import Worker

import worker as worker_module
from bench import machine
from bench.bare import BareWorkflow, bench_noop
from bench.histories import activity_times, history_counts
from bench.stack import (
    Stack,
    accounting_standin,
    api_process,
    cpu_ms_per,
    cpu_s,
    new_customer,
    percentile,
    wait_status,
)


async def books_rows(http: Any, books: str, entity: str) -> list[dict[str, Any]]:
    """Every row of one entity in the QuickBooks stand-in, page by page (QBO answers 100 rows a query
    unless asked for up to 1,000). Its real limits apply to us too: the run may have used this minute's
    500 calls, so a 429 waits for the window (Retry-After) and asks again."""
    rows: list[dict[str, Any]] = []
    tries = 0
    while tries < 10:
        query = f"select * from {entity} startposition {len(rows) + 1} maxresults 1000"
        response = await http.get(
            f"{books}/query",
            params={"query": query},
            headers={"Authorization": "Bearer dev-accounting-token"},
        )
        if response.status_code == 429:
            tries += 1
            await asyncio.sleep(float(response.headers.get("Retry-After") or 10))
            continue
        response.raise_for_status()
        page = list(response.json()["QueryResponse"].get(entity, []))
        rows += page
        if len(page) < 1000:
            return rows
    raise SystemExit(f"the QuickBooks stand-in kept answering 429 to a query of {entity}")


def _books_calls() -> dict[str, float]:
    """Calls this process's worker made to the books so far, by operation (its Prometheus counter)."""
    from observability import metrics

    totals: dict[str, float] = {}
    for family in metrics.ACCOUNTING_CALLS.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                operation = sample.labels["operation"]
                totals[operation] = totals.get(operation, 0.0) + sample.value
    return totals


async def throughput_section(
    stack: Stack, n: int, bare_activities: int | None = None, bare_local_activities: int | None = None
) -> dict[str, Any]:
    """n invoices through the whole life, entering through the API: issue, number, PDF, email to the
    SMTP sink, sync to the QuickBooks stand-in, payment through the API, its sync, receipt, completion.
    The bare workflow then runs as many regular and local activities as the invoices' histories show."""
    import httpx

    url = stack.settings.require_database_url()
    customer_id = new_customer(url)
    lines = [{"description": f"Service {i}", "unit_price": "100.00", "tax_rate": "8.875"} for i in range(3)]
    requested: dict[str, float] = {}
    with accounting_standin(stack) as (settings, books), api_process(settings) as api_url:
        async with (
            worker_module.build_worker(stack.client, settings),
            httpx.AsyncClient(
                base_url=api_url,
                headers={"Authorization": f"Bearer {settings.api_token}"},
                timeout=120,
            ) as http,
        ):
            gate = asyncio.Semaphore(
                32
            )  # requests in flight, as a busy billing day's callers would send them

            async def create(i: int) -> tuple[str, str, str]:
                async with gate:
                    at = time.time()
                    response = await http.post(
                        "/invoices",
                        json={"customer_id": str(customer_id), "lines": lines},
                        headers={"Idempotency-Key": f"bench-{uuid.uuid4()}"},
                    )
                    response.raise_for_status()
                    body = response.json()
                    requested[body["id"]] = at
                    return body["id"], body["workflow_id"], body["total"]

            calls_before = _books_calls()
            cpu_before, machine_lives = cpu_s(stack.work), machine.cpu_times()
            began = time.perf_counter()
            drafts = await asyncio.gather(*(create(i) for i in range(n)))
            # Wait on PostgreSQL, not on workflow queries: a query per invoice would load the server measured.
            await wait_status(url, [i for i, _, _ in drafts], "open")
            opened = time.perf_counter() - began

            async def pay(invoice_id: str, workflow_id: str, total: str) -> None:
                async with gate:
                    response = await http.post(
                        f"/invoices/{invoice_id}/payments",
                        json={"amount": total},
                        headers={"Idempotency-Key": f"bench-pay-{invoice_id}"},
                    )
                    response.raise_for_status()
                await stack.client.get_workflow_handle(workflow_id).result()  # after its sync to the books

            await asyncio.gather(*(pay(*d) for d in drafts))
            elapsed = time.perf_counter() - began
            cpu_invoice = cpu_ms_per(cpu_before, cpu_s(stack.work), n)
            machine_lives = machine.shares(machine_lives, machine.cpu_times())
            books_calls = {
                op: round((c - calls_before.get(op, 0)) / n, 2) for op, c in _books_calls().items()
            }
            in_books = {entity: await books_rows(http, books, entity) for entity in ("Invoice", "Payment")}
    accepted: dict[str, float] = {}
    for message in stack.mail.list():
        key = message.header("X-Invoiceflow-Key") or ""
        if key.endswith(":sent"):
            accepted[key.split(":")[1]] = message.received_at.timestamp()
    to_email_ms = [(accepted[i] - requested[i]) * 1000 for i in requested if i in accepted]
    invoices_per_s = n / elapsed
    lives = [await history_counts(stack.client, d[1]) for d in drafts[: min(n, 10)]]
    life = {key: round(statistics.mean(c[key] for c in lives), 2) for key in lives[0]}
    waits = await activity_times(stack.client, [d[1] for d in drafts[: min(n, 20)]])
    activities = round(life["activities"])
    local_activities = round(life["local_activities"])
    if bare_activities is not None:
        activities, local_activities = bare_activities, bare_local_activities or 0

    bare_queue = f"bare-{uuid.uuid4().hex[:6]}"
    async with Worker(
        stack.client,
        task_queue=bare_queue,
        workflows=[BareWorkflow],
        activities=[bench_noop],
        workflow_runner=worker_module.workflow_runner("bench"),
        activity_executor=ThreadPoolExecutor(16),
        max_concurrent_activities=16,
        max_cached_workflows=stack.settings.max_cached_workflows,
        max_concurrent_workflow_tasks=stack.settings.workflow_task_slots,
    ):
        cpu_before, machine_bare = cpu_s(stack.work), machine.cpu_times()
        began = time.perf_counter()
        handles = [
            await stack.client.start_workflow(
                BareWorkflow.run,
                args=[activities, local_activities],
                id=f"bare-{uuid.uuid4()}",
                task_queue=bare_queue,
            )
            for _ in range(n)
        ]
        await asyncio.gather(*(h.result() for h in handles))
        bare_elapsed = time.perf_counter() - began
        cpu_bare = cpu_ms_per(cpu_before, cpu_s(stack.work), n)
        machine_bare = machine.shares(machine_bare, machine.cpu_times())
        bare_life = await history_counts(stack.client, handles[0].id)
    bare_per_s = n / bare_elapsed
    return {
        "invoices": n,
        "books_quota": "real" if stack.books_quota else "off",
        "invoices_per_s": round(invoices_per_s, 2),
        "bare_wf_per_s": round(bare_per_s, 2),
        "ratio": round(invoices_per_s / bare_per_s, 3),
        # Both halves of the ratio on the same host: a steal share far apart between them moves it.
        "machine_during_lives": machine_lives,
        "machine_during_bare": machine_bare,
        "invoice_emails_accepted": len(accepted),
        "request_to_email_p50_ms": round(statistics.median(to_email_ms), 1) if to_email_ms else None,
        "request_to_email_p99_ms": round(percentile(to_email_ms, 0.99), 1),
        "books_invoices": len(in_books["Invoice"]),
        "books_payments": len(in_books["Payment"]),
        "books_duplicate_numbers": len(in_books["Invoice"])
        - len({i.get("DocNumber") for i in in_books["Invoice"]}),
        "all_open_after_s": round(opened, 2),
        "books_calls_per_life": books_calls,  # by operation, as our client counted them (429s included)
        "per_invoice": life,  # mean over up to 10 invoices' histories
        "per_bare_wf": bare_life,
        "life_waits": waits,  # mean over up to 20 invoices: queued and running, per activity type
        "cpu_ms_per_invoice": cpu_invoice,
        "cpu_ms_per_bare_wf": cpu_bare,
    }
