"""Chaos: SIGKILL real processes in the middle of each side effect, then count what came out, exactly.

- **email**: a relay that takes ``delay_s`` to answer the final dot (``standins.smtp_relay``); a real
  worker process is killed while messages wait for their ``250``, again and again. Every invoice email
  must arrive (none missing) and no Message-ID more than ``1 + INVOICEFLOW_EMAIL_MAX_UNKNOWN_RESENDS``
  times; emails in doubt wait for an operator.
- **books**: the Xero stand-in commits each write, then holds its reply (``commit_then_hang``); the
  worker is killed while it waits, during the invoice syncs and then the payment syncs. The books
  must hold every invoice and every payment exactly once.
- **inbox**: signed webhooks in a burst at a real API process that is killed mid-burst and restarted;
  the sender retries what got no answer, as providers do. Every milestone must be billed exactly once.

``python -m bench --sections chaos --chaos-kills 20`` runs the long version; ``tests/chaos`` the short one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, func, select
from temporalio.client import Client

from activities.email import message_id_for
from api.main import create_app
from core.settings import Settings
from persistence.db import session_scope
from persistence.models import AccountingConnection, Invoice, OutboxEntry, ProjectMilestone, WebhookEvent
from standins import webhooks as send_as
from standins.smtp_relay import SlowRelay

SETTLED = ("done", "uncertain", "failed", "skipped")
FAST_EMAIL = {"email_unknown_resend_delay_s": 0.5, "email_operator_poll_s": 1.0}


def process_env(settings: Settings) -> dict[str, str]:
    """The settings as INVOICEFLOW_* variables for a child process (scalars only, None left out)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOICEFLOW_")}
    for name, value in settings.model_dump(mode="json").items():
        if value is not None and not isinstance(value, dict | list):
            env[f"INVOICEFLOW_{name.upper()}"] = str(value)
    return env


def spawn(settings: Settings, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    out = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "invoiceflow.cli", *args],
        env=process_env(settings),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


async def until(probe: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"chaos: {what} not reached in {timeout:.0f} s")
        await asyncio.sleep(step)


@asynccontextmanager
async def api_in_process(settings: Settings, client: Client) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://invoiceflow.chaos",
            headers={"Authorization": f"Bearer {settings.api_token}"},
            timeout=None,
        ) as http,
    ):
        yield http


async def _invoices(http: httpx.AsyncClient, n: int, lines: list[dict[str, str]]) -> list[dict[str, Any]]:
    made = []
    for i in range(n):
        tag = f"{i}-{random.randrange(10**9)}"
        customer = await http.post(
            "/customers",
            json={"name": f"Chaos {tag}", "emails": [f"ap-{tag}@chaos.example.com"], "currency": "USD"},
        )
        invoice = await http.post("/invoices", json={"customer_id": customer.json()["id"], "lines": lines})
        assert invoice.status_code == 201, invoice.text
        made.append(invoice.json())
    return made


# ---------------------------------------------------------------- email


async def email_chaos(
    client: Client, settings: Settings, work: Path, *, per_kill: int = 2, kills: int = 4, delay_s: float = 1.5
) -> dict[str, Any]:
    """Rounds of a real worker and a SIGKILL in the slow relay's window: even rounds bring ``per_kill``
    new invoices and kill once all their emails reached the relay, odd rounds kill once the resends of
    the ones before arrive (so an email is hit twice); then a worker that lives until every email is
    sent or waits for an operator. Count the copies per Message-ID."""
    from worker import build_worker

    began = time.monotonic()
    with SlowRelay(work / "relay", delay_s=delay_s) as relay:
        s = settings.model_copy(update=FAST_EMAIL | {"smtp_host": "127.0.0.1", "smtp_port": relay.smtp_port})
        keys: list[str] = []

        def statuses(wanted: list[str]) -> dict[str, str]:
            with session_scope(s.require_database_url()) as session:
                query = select(OutboxEntry.key, OutboxEntry.status).where(OutboxEntry.key.in_(wanted))
                return dict(session.execute(query).all())

        def settled() -> bool:
            found = statuses(keys)
            return len(found) == len(keys) and all(v in SETTLED for v in found.values())

        async with api_in_process(s, client) as http:
            for round_ in range(kills):
                fresh = round_ % 2 == 0  # new invoices; else the round kills the resends of the last ones
                batch = (
                    [
                        f"invoice:{i['id']}:sent"
                        for i in await _invoices(
                            http, per_kill, [{"description": "Ops", "unit_price": "42.00"}]
                        )
                    ]
                    if fresh
                    else []
                )
                keys += batch
                seen = relay.count
                process = spawn(s, "worker", log=work / "email-worker.log")
                try:
                    if fresh:
                        await until(
                            lambda batch=batch: len(statuses(batch)) == len(batch),
                            90,
                            "the round's emails sent",
                        )
                    else:
                        with contextlib.suppress(TimeoutError):
                            await until(lambda seen=seen: relay.count > seen, 60, "a resend at the relay")
                    await asyncio.sleep(random.uniform(0, delay_s))  # somewhere in the window of the 250s
                finally:
                    kill(process)
        async with build_worker(client, s):
            await until(settled, 180, "every email sent or waiting for an operator", step=0.3)
        final = statuses(keys)
        copies = Counter(m.message_id for m in relay.store.list())
    expected = [message_id_for(k, s.mail_from) for k in keys]
    return {
        "emails": len(keys),
        "kills": kills,
        "relay_delay_s": delay_s,
        "copies_max": max(copies[m] for m in expected),
        "duplicates": sum(max(copies[m] - 1, 0) for m in expected),
        "missing": sum(1 for m in expected if copies[m] == 0),
        "waiting_for_operator": sum(1 for v in final.values() if v == "uncertain"),
        "max_allowed": 1 + s.email_max_unknown_resends,
        "seconds": round(time.monotonic() - began, 1),
    }


# ---------------------------------------------------------------- books


async def books_chaos(
    client: Client, settings: Settings, work: Path, *, invoices: int = 4, kills: int = 4, hang_s: float = 3.0
) -> dict[str, Any]:
    """Kill a real worker while the Xero stand-in holds the reply to a write it committed."""
    from accounting.tokens import TokenGrant, save_connection, token_cipher
    from standins.accounting.dev import DEV_REFRESH_TOKEN, DEV_TOKEN, PROVIDERS
    from standins.server import serve
    from worker import build_worker

    began = time.monotonic()
    dev = PROVIDERS["xero"]
    app, state = dev.app()
    url = settings.require_database_url()
    with serve(app) as served:
        env = dev.env(served.base_url) | {"INVOICEFLOW_ACCOUNTING_PROVIDER": "xero"}
        s = settings.model_copy(update={k.removeprefix("INVOICEFLOW_").lower(): v for k, v in env.items()})
        grant = TokenGrant(DEV_TOKEN, DEV_REFRESH_TOKEN, datetime.now(UTC) + timedelta(days=1))
        save_connection(url, token_cipher(s), "xero", dev.tenant, grant)
        try:
            async with api_in_process(s, client) as http:
                lines = [
                    {"description": "Hosting", "unit_price": "100.00", "tax_rate": "15"},
                    {"description": "Support", "quantity": "2", "unit_price": "50.00", "tax_rate": "19"},
                ]
                made = await _invoices(http, invoices, lines)
                done = 0

                async def kill_on_hang(process: subprocess.Popen[bytes]) -> bool:
                    # Every write of this worker's life commits, then hangs: the kill leaves each in doubt.
                    state.faults.commit_then_hang(hang_s, count=10**6)
                    try:
                        await until(lambda: state.faults.hang_writes < 10**6, 60, "a write held by the books")
                        await asyncio.sleep(random.uniform(0, hang_s / 2))
                        return True
                    except TimeoutError:
                        return False
                    finally:
                        state.faults.hang_writes = 0
                        kill(process)

                for _ in range(kills // 2):  # during the invoice syncs
                    done += await kill_on_hang(spawn(s, "worker", log=work / "books-worker.log"))

                async def pay(invoice: dict[str, Any]) -> None:
                    body = {"amount": invoice["total"], "reference": f"CHAOS-{invoice['id'][:8]}"}
                    headers = {"Idempotency-Key": f"chaos-{invoice['id']}"}
                    answer = await http.post(
                        f"/invoices/{invoice['id']}/payments", json=body, headers=headers
                    )
                    assert answer.status_code in (200, 201), answer.text

                paying = asyncio.gather(*(pay(i) for i in made))
                for _ in range(kills - kills // 2):  # during the payments and their syncs
                    done += await kill_on_hang(spawn(s, "worker", log=work / "books-worker.log"))
                async with build_worker(client, s):
                    await paying
                    numbers = {(await http.get(f"/invoices/{i['id']}")).json()["number"] for i in made}

                    def complete() -> bool:
                        with state.core.lock:
                            held = {i.get("InvoiceNumber") for i in state.invoices.values()}
                            return numbers <= held and len(state.payments) >= len(made)

                    await until(complete, 240, "every invoice and payment in the books", step=0.5)
                    await asyncio.sleep(3)  # anything still on its way lands now and is counted
        finally:
            with session_scope(url) as session:
                session.execute(
                    delete(AccountingConnection).where(AccountingConnection.tenant_id == dev.tenant)
                )
        with state.core.lock:
            per_number = Counter(i.get("InvoiceNumber") for i in state.invoices.values())
            by_id = {i["InvoiceID"]: i.get("InvoiceNumber") for i in state.invoices.values()}
            per_payment = Counter(by_id.get(p["Invoice"]["InvoiceID"]) for p in state.payments.values())
    ours = sorted(numbers)
    return {
        "invoices": len(ours),
        "kills": done,
        "hang_s": hang_s,
        "invoices_in_books": sum(per_number[n] for n in ours),
        "invoice_copies_max": max(per_number[n] for n in ours),
        "payments_in_books": sum(per_payment[n] for n in ours),
        "payment_copies_max": max(per_payment[n] for n in ours),
        "missing": sum(1 for n in ours if per_number[n] == 0 or per_payment[n] == 0),
        "seconds": round(time.monotonic() - began, 1),
    }


# ---------------------------------------------------------------- inbox


async def inbox_chaos(
    client: Client, settings: Settings, work: Path, *, events: int = 60, kills: int = 3
) -> dict[str, Any]:
    """Kill the API process mid-burst; the sender retries what got no answer; count the billing."""
    from bench.stack import free_port
    from bench.webhooks import SECRET, _api_process, _seed
    from worker import build_worker

    began = time.monotonic()
    url = settings.require_database_url()
    plan = _seed(url, events)
    unique = {item["event_id"]: item for item in plan}
    projects = {uuid.UUID(i["project_id"]) for i in unique.values()}
    port = free_port()
    s = settings.model_copy(update={"generic_webhook_secret": SECRET})
    env = process_env(s)
    api = _api_process(env, port)
    done, sent, refused = 0, 0, 0
    kill_every = max(1, len(plan) // (kills + 1))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

            async def deliver(item: dict[str, str]) -> None:
                nonlocal sent, refused
                while True:  # a provider retries until it hears a 2xx
                    delivery = send_as.generic_event(
                        item["event_id"],
                        "milestone.completed",
                        SECRET,
                        project_id=item["project_id"],
                        milestone_key=item["milestone_key"],
                    )
                    sent += 1
                    try:
                        if (await send_as.send(http, delivery)).status_code in (200, 202):
                            return
                    except httpx.HTTPError:
                        pass
                    refused += 1
                    await asyncio.sleep(0.2)

            for start in range(0, len(plan), kill_every):
                batch = plan[start : start + kill_every]
                tasks = [asyncio.create_task(deliver(item)) for item in batch]
                await asyncio.sleep(random.uniform(0.05, 0.3))  # mid-burst
                if done < kills:
                    kill(api)
                    done += 1
                    api = _api_process(env, port)
                await asyncio.gather(*tasks)
        async with build_worker(client, s):

            def billed() -> int:
                with session_scope(url) as session:
                    return (
                        session.scalar(
                            select(func.count()).where(
                                ProjectMilestone.status == "billed", ProjectMilestone.project_id.in_(projects)
                            )
                        )
                        or 0
                    )

            await until(lambda: billed() >= len(unique), 240, "every milestone billed", step=0.5)
            await asyncio.sleep(2)
    finally:
        api.terminate()
        api.wait(timeout=10)
    with session_scope(url) as session:
        invoices = session.scalar(select(func.count()).where(Invoice.project_id.in_(projects))) or 0
        rows = (
            session.scalar(
                select(func.count()).where(
                    WebhookEvent.provider == "generic", WebhookEvent.dedupe_key.in_(list(unique))
                )
            )
            or 0
        )
    return {
        "events": len(unique),
        "deliveries": sent,
        "unanswered_then_retried": refused,
        "kills": done,
        "inbox_rows": rows,
        "invoices": invoices,
        "lost": max(0, len(unique) - billed()),
        "duplicated": max(0, invoices - len(unique)),
        "seconds": round(time.monotonic() - began, 1),
    }
