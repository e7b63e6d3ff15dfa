"""Scale section: the same life with 1 and then 2 worker processes (and 2 API processes) on one Temporal
and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from contextlib import ExitStack
from typing import Any

from bench import machine
from bench.histories import activity_times
from bench.stack import (
    Stack,
    accounting_standin,
    api_process,
    cpu_ms_per,
    cpu_s,
    new_customer,
    wait_status,
    worker_process,
)
from bench.throughput import books_rows


async def scale_section(
    stack: Stack, n: int, worker_counts: tuple[int, ...] = (1, 2), apis: int = 2
) -> dict[str, Any]:
    """The throughput section's life (API → issue, PDF, email, QBO sync, payment, sync, receipt) with 1,
    then 2 worker processes (``python worker.py``, as deployed) and ``apis`` API processes taking the
    requests in turn, on the same Temporal and PostgreSQL. Each run has its own task queue, customer and
    QuickBooks stand-in, so its books hold exactly its own invoices and payments. CPU per life is by role
    and by worker process; the machine's load is reported beside it (other work shares these cores)."""
    lines = [{"description": f"Service {i}", "unit_price": "100.00", "tax_rate": "8.875"} for i in range(3)]
    cores = os.cpu_count() or 1
    runs: list[dict[str, Any]] = []
    for count in worker_counts:
        runs.append(await _scale_run(stack, n, count, apis, lines, cores))
    first, last = runs[0], runs[-1]
    return {
        "apis": apis,
        "cores": cores,
        "runs": runs,
        "speedup": round(last["lives_per_s"] / first["lives_per_s"], 2),
        "cpu_per_life_ratio": round(last["cpu_ms_per_life"]["total"] / first["cpu_ms_per_life"]["total"], 2),
    }


async def _scale_run(
    stack: Stack, n: int, count: int, apis: int, lines: list[dict[str, str]], cores: int
) -> dict[str, Any]:
    """One run of the scale section: ``count`` worker processes, ``apis`` API processes."""
    import httpx

    from standins.accounting.dev import PROVIDERS

    url = stack.settings.require_database_url()
    queue = f"{stack.settings.task_queue}-scale{count}"
    base = Stack(
        stack.client, stack.settings.model_copy(update={"task_queue": queue}), stack.mail, stack.work
    )
    customer_id = new_customer(url)
    with ExitStack() as running:
        settings, books = running.enter_context(accounting_standin(base))
        books_env = PROVIDERS["qbo"].env(books.split("/v3/company/")[0]) | {
            "INVOICEFLOW_ACCOUNTING_PROVIDER": "qbo"
        }
        if settings.accounting_rate_limit:  # --books-quota off: the workers' limiter as wide as the stand-in
            books_env["INVOICEFLOW_ACCOUNTING_RATE_LIMIT"] = settings.accounting_rate_limit
        api_urls = [running.enter_context(api_process(settings)) for _ in range(apis)]
        workers = [running.enter_context(worker_process(settings, books_env)) for _ in range(count)]
        https = [
            httpx.AsyncClient(
                base_url=api_url, headers={"Authorization": f"Bearer {settings.api_token}"}, timeout=120
            )
            for api_url in api_urls
        ]
        gate = asyncio.Semaphore(32)

        async def create(i: int) -> tuple[str, str, str]:
            async with gate:
                response = await https[i % apis].post(
                    "/invoices",
                    json={"customer_id": str(customer_id), "lines": lines},
                    headers={"Idempotency-Key": f"bench-scale-{uuid.uuid4()}"},
                )
                response.raise_for_status()
                body = response.json()
                return body["id"], body["workflow_id"], body["total"]

        async def pay(i: int, invoice_id: str, workflow_id: str, total: str) -> None:
            async with gate:
                response = await https[(i + 1) % apis].post(
                    f"/invoices/{invoice_id}/payments",
                    json={"amount": total},
                    headers={"Idempotency-Key": f"bench-scale-pay-{invoice_id}"},
                )
                response.raise_for_status()
            await stack.client.get_workflow_handle(workflow_id).result()

        def worker_cpu() -> list[float]:
            return [sum(w.cpu_times()[:2]) for w in workers]

        async def lives(count_: int) -> list[tuple[str, str, str]]:
            drafts = await asyncio.gather(*(create(i) for i in range(count_)))
            await wait_status(url, [d[0] for d in drafts], "open")
            await asyncio.gather(*(pay(i, *d) for i, d in enumerate(drafts)))
            return drafts

        try:
            # Unmeasured: a few lives first, so that each worker's render processes have started.
            await lives(2 * count)
            load_before = os.getloadavg()[0]
            machine_before = machine.cpu_times()
            cpu_before, workers_before = cpu_s(stack.work, harness="bench"), worker_cpu()
            began = time.perf_counter()
            measured = await lives(n)
            elapsed = time.perf_counter() - began
            cpu = cpu_ms_per(cpu_before, cpu_s(stack.work, harness="bench"), n)
            per_worker = [
                round((a - b) * 1000 / n, 1) for a, b in zip(worker_cpu(), workers_before, strict=True)
            ]
            machine_after = machine.cpu_times()
            in_books = {e: await books_rows(https[0], books, e) for e in ("Invoice", "Payment")}
            waits = await activity_times(stack.client, [d[1] for d in measured[:20]])
        finally:
            for http in https:
                await http.aclose()

    shares = machine.shares(machine_before, machine_after)
    return {
        "worker_processes": count,
        "lives": n,
        "lives_per_s": round(n / elapsed, 2),
        "cpu_ms_per_life": cpu,
        "cpu_ms_per_life_by_worker_process": per_worker,
        "books_expected": n + 2 * count,  # the run's books hold its warm-up lives too
        "books_invoices": len(in_books["Invoice"]),
        "books_payments": len(in_books["Payment"]),
        "books_duplicate_numbers": len(in_books["Invoice"])
        - len({i.get("DocNumber") for i in in_books["Invoice"]}),
        "elapsed_s": round(elapsed, 1),
        "life_waits": waits,  # as the throughput section's: where a life waits when cores are idle
        # The machine, not only this stack: on shared cores the rate follows what is left.
        "machine_busy_pct": shares["busy_pct"],
        "machine_steal_pct": shares["steal_pct"],
        "stack_cpu_pct": round(100 * cpu["total"] * n / 1000 / (elapsed * cores), 1),
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
