"""Webhook ingestion benchmark: a fixed rate of signed webhooks from a second process at the API (a third
process, its inbox dispatcher a fourth), the worker in this one; latency per request in each of several
runs (the spread of their p99 is the figure: one run's tail is noise on a shared machine) and a check that
every accepted event produced exactly its invoice.

Each event completes one milestone of one of many projects (10 milestones per project), so the events
fan out over many ProjectBillingWorkflows as real traffic would. 5 % are redeliveries of an earlier event.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from bench import machine
from bench.machine import child_env
from bench.stack import free_port, wait_http
from persistence import projects as projects_repo
from persistence.db import session_scope
from persistence.models import Customer, Invoice, ProjectMilestone, WebhookEvent

MILESTONES_PER_PROJECT = 10
SECRET = "bench-webhook-secret"


def _seed(url: str, events: int) -> list[dict[str, str]]:
    """Projects in PostgreSQL (their workflows start with their first webhook) and the event plan."""
    plan: list[dict[str, str]] = []
    with session_scope(url) as session:
        customer = Customer(
            name="Webhook Bench",
            emails=["ap@webhook-bench.example.com"],
            currency="EUR",
            timezone="UTC",
            payment_terms="net_30",
            tags=[],
            reminder_offsets=[],
        )
        session.add(customer)
        session.flush()
        for p in range((events + MILESTONES_PER_PROJECT - 1) // MILESTONES_PER_PROJECT):
            keys = [f"m{i}" for i in range(MILESTONES_PER_PROJECT)]
            project = projects_repo.create_project(
                session,
                projects_repo.NewProject(
                    customer=customer,
                    name=f"Bench project {p}",
                    currency="EUR",
                    payment_terms="net_30",
                    milestones=[
                        projects_repo.NewMilestone(key=k, name=k, amount=Decimal("100.00")) for k in keys
                    ],
                ),
            )
            plan += [
                {"project_id": str(project.id), "milestone_key": k, "event_id": f"bench-{uuid.uuid4()}"}
                for k in keys
            ]
    plan = plan[:events]
    redeliveries = [dict(plan[i]) for i in range(0, len(plan), 20)]
    for n, item in enumerate(redeliveries):  # each redelivery follows its original by a few requests
        plan.insert(min(len(plan), (n + 1) * 21 + 3), item)
    return plan


def _api_process(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "invoiceflow.cli", "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", process, "the API process")
    except BaseException:
        process.kill()
        raise
    return process


def _dispatcher_process(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`invoiceflow dispatcher`, as docker-compose and `invoiceflow dev` run it next to the API."""
    return subprocess.Popen(
        [sys.executable, "-m", "invoiceflow.cli", "dispatcher"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _waiting(url: str) -> int:
    with session_scope(url) as session:
        return (
            session.scalar(
                select(func.count()).select_from(WebhookEvent).where(WebhookEvent.status == "received")
            )
            or 0
        )


async def _handed_over(url: str, timeout_s: float = 600) -> float:
    """Wait until the dispatcher has handed every accepted event over; seconds it took."""
    began = time.monotonic()
    while _waiting(url) and time.monotonic() - began < timeout_s:
        await asyncio.sleep(0.2)
    return time.monotonic() - began


async def _send(port: int, plan: list[dict[str, str]], rate: float) -> list[dict[str, Any]]:
    """One run of the sender, a process of its own; per request its latency (ms) and status."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(plan, f)
    try:
        sender = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.webhook_sender",
            "--url",
            f"http://127.0.0.1:{port}",
            "--secret",
            SECRET,
            "--plan",
            f.name,
            "--rate",
            str(rate),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await sender.communicate()
    finally:
        os.unlink(f.name)
    results: list[dict[str, Any]] = json.loads(out)
    return results


def _run_figures(results: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = sorted(r["ms"] for r in results)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return {
        "requests": len(results),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(p99, 1),
        "errors": sum(1 for r in results if r["status"] != 200),
    }


async def webhook_bench(
    client: Any,
    settings: Any,
    *,
    rate: float,
    seconds: float,
    runs: int = 3,
    cpu_s: Callable[[], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """`runs` runs of `seconds` each at `rate`, against one API and one dispatcher process (each run
    starts once the previous run's events are handed over); then one drain for all of them."""
    import worker as worker_module

    url = settings.require_database_url()
    events = max(1, int(rate * seconds))
    plans = [_seed(url, events) for _ in range(runs)]
    unique = {item["event_id"]: item for plan in plans for item in plan}
    port = free_port()
    env = child_env(
        DATABASE_URL=url,
        TEMPORAL_ADDRESS=settings.temporal_address,
        TASK_QUEUE=settings.task_queue,
        GENERIC_WEBHOOK_SECRET=SECRET,
        # As deployed (docker-compose, `invoiceflow dev`): the hand-over in a process of its own.
        DISPATCHER_IN_API="false",
    )
    dispatcher = _dispatcher_process(env)
    api = _api_process(env, port)
    figures: list[dict[str, Any]] = []
    accepted: set[str] = set()
    try:
        # Ingestion first, with no worker polling: the receivers' work (verify, record and route) is what a
        # provider waits on; the dispatcher process hands the events to Temporal meanwhile. On a 2-core
        # machine a worker rendering the invoices of 100 events a second would take the CPU the API needs
        # (each invoice costs ~0.4 CPU-seconds; in production API and workers run on hosts of their own).
        # Temporal keeps what it was handed.
        for plan in plans:
            cpu_before, machine_before = cpu_s() if cpu_s else {}, machine.cpu_times()
            results = await _send(port, plan, rate)
            cpu_after, machine_after = cpu_s() if cpu_s else {}, machine.cpu_times()
            handed_over_s = await _handed_over(url)
            accepted |= {r["event_id"] for r in results if r["status"] == 200}
            figures.append(
                _run_figures(results)
                | {
                    # The host's share matters here: a stall of a fifth of a second delays every request
                    # in flight, and a run with steal in double figures has the tail to show for it.
                    "machine": machine.shares(machine_before, machine_after),
                    "handed_over_after_s": round(handed_over_s, 1),
                    "ingest_cpu_ms_per_request": {
                        role: round((cpu_after[role] - cpu_before.get(role, 0.0)) * 1000 / len(results), 2)
                        for role in cpu_after
                        if cpu_after[role] > cpu_before.get(role, 0.0)
                    },
                }
            )
        # Then the worker drains what was handed over; every accepted event must bill its milestone once.
        drain_began = time.monotonic()
        async with worker_module.build_worker(client, settings):
            deadline = time.monotonic() + 3600
            billed = 0
            while time.monotonic() < deadline:
                with session_scope(url) as session:
                    billed = (
                        session.scalar(select(func.count()).where(ProjectMilestone.status == "billed")) or 0
                    )
                if billed >= len(accepted):
                    break
                await asyncio.sleep(0.5)
            drained_s = time.monotonic() - drain_began
            with session_scope(url) as session:
                per_milestone = session.execute(
                    select(Invoice.project_id, func.count())
                    .where(Invoice.project_id.is_not(None))
                    .group_by(Invoice.project_id)
                ).all()
            invoices = sum(n for _, n in per_milestone)
    finally:
        for process in (api, dispatcher):
            process.terminate()
            process.wait(timeout=15)
    expected = {(unique[e]["project_id"], unique[e]["milestone_key"]) for e in accepted}
    p99s = [f["p99_ms"] for f in figures]
    p50s = [f["p50_ms"] for f in figures]
    return {
        "measured": True,
        "rate_per_s": rate,
        "seconds": seconds,
        "runs": len(figures),
        "requests": sum(f["requests"] for f in figures),
        "p50_ms_min": min(p50s),
        "p50_ms_max": max(p50s),
        "p99_ms_min": min(p99s),
        "p99_ms_max": max(p99s),
        "errors": sum(f["errors"] for f in figures),
        "per_run": figures,
        "drained_s": round(drained_s, 1),
        "lost": max(0, len(expected) - billed),
        "duplicated": max(0, invoices - len(expected)),
    }
