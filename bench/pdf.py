"""PDF timings for ``python -m bench``: one render at a time, then many at once through the worker's
render pool and, for comparison, through threads. Its own module so that ``python -m bench`` can run it
in a child process (a spawned child imports functions by module name, never from ``__main__``)."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from activities.pdf import RenderPool
from documents.rendering import DocumentLine, DocumentTotal, InvoiceDocument, Party, render_invoice_pdf

#: Renders (and threads submitting them) in the concurrency figures: more than any pool size used.
CONCURRENT_RENDERS = 24
CONCURRENT_THREADS = 8


def invoice(lines: int) -> InvoiceDocument:
    return InvoiceDocument(
        title="Invoice",
        number="INV-2026-000001",
        issue_date="2026-11-25",
        due_date="2026-12-25",
        currency="EUR",
        seller=Party("Acme IT"),
        customer=Party("Globex"),
        lines=tuple(
            DocumentLine(f"Line {i}", "1", "100.00 EUR", "", "19%", "100.00 EUR") for i in range(lines)
        ),
        totals=(DocumentTotal("Total", "119.00 EUR", True),),
    )


def _median_ms(lines: int, runs: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of one render (after a warm-up render). CPU time is the steadier
    figure on a shared machine: it does not count time spent waiting for a core."""
    document = invoice(lines)
    render_invoice_pdf(document)
    wall, cpu = [], []
    for _ in range(runs):
        began, began_cpu = time.perf_counter(), time.process_time()
        render_invoice_pdf(document)
        wall.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
    return round(statistics.median(wall), 1), round(statistics.median(cpu), 1)


def _renders_per_s(pool: RenderPool) -> float:
    """1-page invoices per second when CONCURRENT_THREADS activity threads render at once."""
    document = invoice(3)
    with ThreadPoolExecutor(CONCURRENT_THREADS) as threads:
        list(threads.map(pool.render, [document] * CONCURRENT_THREADS))  # warm-up: start processes, compile
        began = time.perf_counter()
        list(threads.map(pool.render, [document] * CONCURRENT_RENDERS))
        return round(CONCURRENT_RENDERS / (time.perf_counter() - began), 1)


def pdf_timings(render_processes: int, runs: int = 7) -> dict[str, Any]:
    one_page_ms, one_page_cpu_ms = _median_ms(3, runs)
    ten_page_ms, _ = _median_ms(250, max(3, runs // 2))
    in_threads = _renders_per_s(RenderPool(0))
    pool = RenderPool(render_processes)
    try:
        in_pool = _renders_per_s(pool)
    finally:
        pool.shutdown()
    return {
        "one_page_ms": one_page_ms,
        "one_page_cpu_ms": one_page_cpu_ms,
        "ten_page_ms": ten_page_ms,
        "render_processes": render_processes,
        "threads_renders_per_s": in_threads,
        "pool_renders_per_s": in_pool,
    }
