"""Parked section: many invoices waiting on their due date in one worker (its RSS) and the reminder wave
when their timers fire together."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

from bench.stack import Stack, cpu_ms_per, cpu_s, draft, new_customer, tree_memory, worker_process
from persistence.db import session_scope
from persistence.models import Customer
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import InvoiceWorkflowInput

#: Parked section: invoices started and not yet open, at most (see ``parked_section``).
PARKING_IN_FLIGHT = 200


def wave_zone(now: datetime, ahead: timedelta) -> str:
    """A fixed-offset zone in which ``now`` reads about 05:00, so a send window ``ahead`` of it (up to
    18 hours) starts and ends on the same local day: windows cannot span midnight."""
    offset = (5 - now.hour) % 24
    offset = offset - 24 if offset > 14 else offset
    if ahead > timedelta(hours=18):
        raise SystemExit("the reminder wave would start more than 18 hours from now; park fewer invoices")
    # POSIX sign convention: Etc/GMT-3 is UTC+3.
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


async def parked_section(stack: Stack, n: int, wave_margin_s: float = 60.0) -> dict[str, Any]:
    """n open invoices waiting on their timers, then one reminder wave across them.

    Worker RSS (and its render processes') is sampled as the invoices park, and after the wave. A few
    invoices (2 %, at least 10) park first to measure the rate; the rest belong to a customer whose
    dunning policy sends one reminder on the due date (due on receipt), at the start of a send window
    set after they should all be parked. The wave's time runs from that window start until the last
    reminder is recorded sent in the outbox."""
    from sqlalchemy import String, any_, bindparam, func, select, text
    from sqlalchemy.dialects.postgresql import ARRAY

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
    warm_customer = new_customer(url)
    warm_ids = [i for i, _ in (draft(url, warm_customer, lines=1) for _ in range(warm))]
    wave_customer: uuid.UUID | None = None
    wave_ids: list[str] = []
    if n > warm:
        wave_customer = new_customer(url, payment_terms="due_on_receipt", dunning_policy=policy_name)
        wave_ids = [
            i
            for i, _ in (
                draft(url, wave_customer, lines=1, payment_terms="due_on_receipt") for _ in range(n - warm)
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
    with worker_process(stack.settings) as worker:
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
            zone = wave_zone(now, ahead)
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
                    worker_rss, render_rss, _ = tree_memory(worker)
                    samples.append(
                        {
                            "parked": warm + reached,
                            "worker_rss_mb": round(worker_rss / 2**20, 1),
                            "render_processes_rss_mb": round(render_rss / 2**20, 1),
                        }
                    )

            await park(wave_ids, wave_customer, sample)
        parked_s = time.perf_counter() - began
        worker_rss, render_rss, render_uss = tree_memory(worker)
        with session_scope(url) as session:
            db_bytes = session.execute(text("select pg_database_size(current_database())")).scalar_one()
        wave: dict[str, Any] = {}
        if window_start is not None:
            overlapped = datetime.now(UTC) > window_start
            # What a woken invoice replays when its cache entry is gone: its current run's history. The
            # first wave invoice has waited longest (the last may not have continued as new yet).
            park_events = len(
                (await stack.client.get_workflow_handle(f"invoice-{wave_ids[0]}").fetch_history()).events
            )
            print(
                f"parked: wave at {window_start.isoformat()}, worker pid {worker.pid}",
                file=sys.stderr,
                flush=True,
            )
            await asyncio.sleep(max(0.0, (window_start - datetime.now(UTC)).total_seconds()))
            cpu_before = cpu_s(stack.work, harness="bench")
            with session_scope(
                url
            ) as session:  # an invoice issued after the window opened has no wave reminder
                due = session.scalars(
                    select(Invoice.id).where(
                        Invoice.customer_id == wave_customer, Invoice.issued_at < window_start
                    )
                ).all()
            keys = [f"invoice:{i}:dunning:0:client" for i in due]
            # One array parameter, not an IN list of every key: at 20,000 keys, building that statement
            # each second took 5.6 CPU ms a reminder in this process, on the cores the wave runs on.
            sent = select(
                func.count(), func.max(OutboxEntry.completed_at), func.min(OutboxEntry.completed_at)
            ).where(
                OutboxEntry.key == any_(bindparam("keys", type_=ARRAY(String))),
                OutboxEntry.status == "done",
            )
            deadline = time.monotonic() + 6 * 3600
            while time.monotonic() < deadline:
                with session_scope(url) as session:
                    done = session.execute(sent, {"keys": keys}).one()
                if done[0] >= len(keys):
                    break
                await asyncio.sleep(1)
            else:
                raise TimeoutError(
                    f"{len(keys) - done[0]} of {len(keys)} wave reminders were not sent within 6 hours"
                )
            cpu_wave = cpu_ms_per(cpu_before, cpu_s(stack.work, harness="bench"), len(keys))
            wave_rss, _, _ = tree_memory(worker)
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
