"""Provider rate limits hold for the whole deployment: three real worker processes (``python -m worker``)
sync invoices into one Xero stand-in organisation, and the stand-in, which logs when each call arrived
and how many were in flight, never sees more than the limit in any window nor more than 5 at once, and
every invoice is there exactly once.

Scaled down to stay fast: 15 calls per 4 s instead of 60 per 60 s (``INVOICEFLOW_ACCOUNTING_RATE_LIMIT``),
the same rule; the stand-in enforces the same quota and would answer 429 to any excess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from accounting.tokens import TokenGrant, save_connection, token_cipher
from core.settings import Settings
from persistence.db import session_scope
from persistence.models import AccountingSync
from standins.accounting.common import Quota, RecordedCall
from standins.accounting.xero import PREFIX, TOKEN_PATH, XeroState, create_xero_app
from standins.server import serve
from tests.support import api_client, customer_body, eventually, every_run

ROOT = Path(__file__).resolve().parents[2]
CALLS, WINDOW_S, CONCURRENT = 15, 4.0, 5
INVOICES = 20  # 3 calls each (contact search, contact, invoice): 60 calls, four windows' worth
WORKERS = 3


def _spawn(settings: Settings) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        {
            f"INVOICEFLOW_{name.upper()}": str(value)
            for name, value in settings.model_dump().items()
            if value is not None and isinstance(value, (str, int, float)) and not isinstance(value, bool)
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _most_in_any_window(calls: list[RecordedCall], window_s: float) -> int:
    """The most calls whose arrivals fall within any ``window_s`` span (a sliding window, both ends)."""
    times = sorted(c.arrived_at for c in calls)
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


def _most_at_once(calls: list[RecordedCall]) -> int:
    """The most calls whose [arrival, answer] intervals overlap, from the timestamps alone."""
    edges = sorted([(c.arrived_at, 1) for c in calls] + [(c.answered_at, -1) for c in calls])
    best = now = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_three_worker_processes_share_xeros_limits(temporal_env, make_settings) -> None:  # type: ignore[no-untyped-def]
    state = XeroState(
        tenant_id=f"tenant-{uuid.uuid4().hex[:8]}",
        tokens={"xero-token"},
        quota=Quota(per_window=CALLS, window_s=WINDOW_S, concurrent=CONCURRENT, per_day=5000),
    )
    app, _ = create_xero_app(state)
    client = temporal_env.client
    with serve(app) as served:
        settings = make_settings(
            client,
            accounting_provider="xero",
            xero_base_url=served.base_url + PREFIX,
            xero_token_url=served.base_url + TOKEN_PATH,
            xero_tenant_id=state.tenant_id,
            xero_client_id="xero-client",
            xero_client_secret="xero-secret",
            accounting_tax_codes="0=NONE",
            accounting_timeout_s=10.0,
            accounting_rate_limit=f"{CALLS}/{WINDOW_S:g},{CONCURRENT}",
            render_processes=1,
        )
        assert settings.accounting_rate_limit_scope == "deployment"  # the default
        state.oauth.add_refresh_token("rt-1")
        save_connection(
            settings.require_database_url(),
            token_cipher(settings),
            "xero",
            state.tenant_id,
            TokenGrant("xero-token", "rt-1", datetime.now(UTC) + timedelta(hours=1)),
        )
        workers = [_spawn(settings) for _ in range(WORKERS)]
        try:
            async with api_client(settings, client) as api:
                ids = []
                for _ in range(INVOICES):
                    customer = (await api.post("/customers", json=customer_body(currency="USD"))).json()
                    created = await api.post(
                        "/invoices",
                        json={
                            "customer_id": customer["id"],
                            "lines": [{"description": "Support", "quantity": "1", "unit_price": "100.00"}],
                        },
                    )
                    assert created.status_code == 201, created.text
                    ids.append(uuid.UUID(created.json()["id"]))

                def synced() -> int:
                    with session_scope(settings.require_database_url()) as session:
                        return int(
                            session.scalar(
                                select(func.count()).where(
                                    AccountingSync.invoice_id.in_(ids),
                                    AccountingSync.kind == "invoice",
                                    AccountingSync.status == "synced",
                                )
                            )
                        )

                async def all_synced() -> bool:
                    assert all(w.poll() is None for w in workers), "a worker process died"
                    return synced() == INVOICES

                await eventually(all_synced, timeout=150, what="every invoice synced")
                identities: set[str] = set()
                for invoice_id in ids:
                    workflow_id = (await api.get(f"/invoices/{invoice_id}")).json()["workflow_id"]
                    for run in await every_run(client, workflow_id):  # a parked invoice continued as new
                        for event in run.events:
                            if event.HasField("activity_task_started_event_attributes"):
                                identities.add(event.activity_task_started_event_attributes.identity)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()

    with state.core.lock:
        api_calls = [c for c in state.calls if c.path.startswith(PREFIX)]
        rejected = state.core.traffic.rejected
    assert len(identities) >= 2, identities  # the work was spread over the processes (Temporal decides)
    assert rejected == 0 and all(c.status != 429 for c in api_calls)
    assert len(api_calls) >= 3 * INVOICES
    assert _most_in_any_window(api_calls, WINDOW_S) <= CALLS
    assert _most_at_once(api_calls) <= CONCURRENT
    assert max(c.in_flight for c in api_calls) <= CONCURRENT
    # The limit did bind: 60+ calls at 15 per 4 s take at least three windows.
    span = max(c.arrived_at for c in api_calls) - min(c.arrived_at for c in api_calls)
    assert span >= (len(api_calls) // CALLS - 1) * WINDOW_S
    numbers = sorted(i["InvoiceNumber"] for i in state.invoices.values())
    assert len(numbers) == INVOICES and len(set(numbers)) == INVOICES  # nothing lost, nothing twice
