"""PDF timings for ``python -m bench``: one render at a time, then many at once through the worker's
render pool and, for comparison, through threads. Its own module so that ``python -m bench`` can run it
in a child process (a spawned child imports functions by module name, never from ``__main__``).

Wall time on a shared machine mostly measures the other processes; the medians of CPU time per render
are the steadier figure, and instructions per render (``python -m bench.pdf --instructions``, under
valgrind's cachegrind, a few minutes) the one that repeats to a fraction of a percent under any load:

    python -m bench.pdf                   # 1-page and 10-page medians, JSON
    python -m bench.pdf --instructions    # the same plus instructions per render
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from activities.pdf import RenderPool
from documents.rendering import DocumentLine, DocumentTotal, InvoiceDocument, Party, render_invoice_pdf

#: Renders (and threads submitting them) in the concurrency figures: more than any pool size used.
CONCURRENT_RENDERS = 24
CONCURRENT_THREADS = 8
#: Line items of the "1-page" and the "10-page" invoice (``invoice`` below, the built-in template). The
#: long one has been 250 lines since the first figures, which the built-in layout now sets on 8 pages;
#: kept, so that the figures stay comparable.
ONE_PAGE_LINES = 3
TEN_PAGE_LINES = 250


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


def pdf_timings(render_processes: int, runs: int = 7, *, concurrency: bool = True) -> dict[str, Any]:
    """Medians of ``runs`` renders (1-page) and of ``runs // 2``, at least 3 (10-page), after a warm-up
    render each; then, with ``concurrency``, renders per second through threads and the pool."""
    one_page_ms, one_page_cpu_ms = _median_ms(ONE_PAGE_LINES, runs)
    ten_page_ms, ten_page_cpu_ms = _median_ms(TEN_PAGE_LINES, max(3, runs // 2))
    single = {
        "one_page_ms": one_page_ms,
        "one_page_cpu_ms": one_page_cpu_ms,
        "ten_page_ms": ten_page_ms,
        "ten_page_cpu_ms": ten_page_cpu_ms,
        "runs": runs,
    }
    if not concurrency:
        return single
    in_threads = _renders_per_s(RenderPool(0))
    pool = RenderPool(render_processes)
    try:
        in_pool = _renders_per_s(pool)
    finally:
        pool.shutdown()
    return {
        **single,
        "render_processes": render_processes,
        "threads_renders_per_s": in_threads,
        "pool_renders_per_s": in_pool,
    }


# --- instructions per render (cachegrind) -------------------------------------------------------------


def _render_many(lines: int, renders: int) -> None:
    """What runs under cachegrind: a warm-up render, then ``renders`` more. Without the render time
    limit: under valgrind on a busy machine a 10-page render can take minutes."""
    from documents import rendering

    rendering.MAX_RENDER_SECONDS = float("inf")
    document = invoice(lines)
    for _ in range(renders + 1):
        render_invoice_pdf(document)


def _instructions(*args: str) -> int:
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "bench.pdf",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=os.environ)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if not found:
        raise RuntimeError(f"no instruction count in cachegrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def instructions_per_render(lines: int, renders: int) -> int:
    """Instructions one warm render of ``lines`` line items takes: a process that renders ``renders``
    times after its warm-up, less one that only starts and warms up, divided by ``renders``."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    base = _instructions("--render", str(lines), "0")
    total = _instructions("--render", str(lines), str(renders))
    return round((total - base) / renders)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pdf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="renders per median (10-page: half)")
    parser.add_argument("--instructions", action="store_true", help="also count instructions (valgrind)")
    parser.add_argument("--render", nargs=2, type=int, metavar=("LINES", "RENDERS"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.render:
        _render_many(*options.render)
        return
    results: dict[str, Any] = pdf_timings(0, options.runs, concurrency=False)
    if options.instructions:
        results["one_page_instructions"] = instructions_per_render(ONE_PAGE_LINES, 5)
        results["ten_page_instructions"] = instructions_per_render(TEN_PAGE_LINES, 1)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
