"""The deployment-wide limiter on real PostgreSQL: limiters that share nothing but the database (as
worker processes do, here on three threads with their own event loops) keep the window and the
concurrency cap between them, and a call whose process died stops counting once its lease ends."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
from sqlalchemy import text

from accounting.ratelimit import XERO_POLICY, RateLimitPolicy
from accounting.shared_limit import SharedLimiter, parse_policy
from persistence.db import get_engine

POLICY = RateLimitPolicy(windows=((6, 1.0),), max_concurrent=2, margin_s=0.05)


def _run_limiter(
    url: str, tenant: str, calls: int, log: list[tuple[float, float]], lock: threading.Lock
) -> None:
    async def main() -> None:
        limiter = SharedLimiter(url, "xero", tenant, POLICY, lease_s=5.0)

        async def one() -> None:
            async with limiter.slot():
                started = time.monotonic()
                await asyncio.sleep(0.02)
                with lock:
                    log.append((started, time.monotonic()))

        await asyncio.gather(*(one() for _ in range(calls)))

    asyncio.run(main())


def test_three_independent_limiters_share_one_window_and_cap(pg_url: str) -> None:
    tenant, log, lock = f"t-{uuid.uuid4().hex[:8]}", [], threading.Lock()
    threads = [threading.Thread(target=_run_limiter, args=(pg_url, tenant, 8, log, lock)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(log) == 24  # nothing lost
    starts = sorted(start for start, _ in log)
    assert all(sum(1 for s in starts if first <= s < first + 1.0) <= 6 for first in starts)
    edges = sorted([(s, 1) for s, _ in log] + [(e, -1) for _, e in log])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    assert peak <= 2
    assert starts[-1] - starts[0] >= 3.0  # 24 calls at 6 a second: the window did bind


async def test_a_dead_processs_call_counts_until_its_lease_ends(pg_url: str) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    one_at_a_time = RateLimitPolicy(windows=((100, 1.0),), max_concurrent=1)
    with get_engine(pg_url).begin() as conn:  # admitted by a worker that was killed mid-call
        conn.execute(
            text(
                "insert into accounting_rate_calls (provider, tenant_id, started_at, lease_until) "
                "values ('xero', :tenant, clock_timestamp(), clock_timestamp() + interval '1.5 seconds')"
            ),
            {"tenant": tenant},
        )
    limiter = SharedLimiter(pg_url, "xero", tenant, one_at_a_time, lease_s=5.0)
    began = time.monotonic()
    async with limiter.slot():
        waited = time.monotonic() - began
    assert 1.0 <= waited < 4.0


async def test_a_retry_after_pauses_every_limiter_of_the_organisation(pg_url: str) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    first = SharedLimiter(pg_url, "xero", tenant, POLICY, lease_s=5.0)
    second = SharedLimiter(pg_url, "xero", tenant, POLICY, lease_s=5.0)  # another process's
    async with first.slot():
        pass
    first.pause(1.5)  # the provider said Retry-After: 1.5 to the first one

    async def admitted_after(limiter: SharedLimiter, delay: float) -> float:
        await asyncio.sleep(delay)
        began = time.monotonic()
        async with limiter.slot():
            return time.monotonic() - began

    _, waited = await asyncio.gather(admitted_after(first, 0), admitted_after(second, 0.3))
    assert 0.9 <= waited < 3.0  # the second waited out the first one's pause


def test_the_rate_limit_setting() -> None:
    assert parse_policy("", XERO_POLICY) == XERO_POLICY
    policy = parse_policy("15/4,5", XERO_POLICY)
    assert (policy.windows, policy.max_concurrent) == (((15, 4.0),), 5)
    assert parse_policy("60/60", XERO_POLICY).max_concurrent == 5
    with pytest.raises(ValueError, match="INVOICEFLOW_ACCOUNTING_RATE_LIMIT"):
        parse_policy("sixty a minute", XERO_POLICY)
