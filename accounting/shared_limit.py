"""Provider rate limits that hold for the whole deployment, however many worker processes sync.

Xero allows 60 calls a minute and 5 at a time per organisation; the per-process ``TenantLimiter`` keeps
that in one process, so three workers could send three times as much. Here the calls of every process
are admitted through PostgreSQL, which every worker already shares:

- ``accounting_rate_limits`` has one row per organisation; admitting a call locks it (``FOR UPDATE``),
  so admissions are serialised across processes, and it holds a pause the provider asked for.
- ``accounting_rate_calls`` logs each admitted call: sent at, answered at (``finished_at``) and a lease
  (the HTTP timeout plus a margin) after which the call of a process that died counts as answered.

The rule is the in-process limiter's (see ``accounting.ratelimit.TenantLimiter``): a window of N calls
per W seconds admits a call no sooner than W after the *answer* of the call N admissions earlier, and
no call while ``max_concurrent`` are unanswered. Every time is the database's ``clock_timestamp()``, so
clocks of different hosts never disagree. Why not Temporal's task-queue rate limit: it paces activity
*starts*, not HTTP calls (one sync makes one to four), and it has no concurrency cap across workers.

Within a process, callers queue on an asyncio lock and a semaphore first, so each process has at most
one admission query polling at a time and never more calls in flight than the policy allows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, text

from accounting.ratelimit import FRESHBOOKS_POLICY, QBO_POLICY, XERO_POLICY, RateLimitPolicy
from core.settings import Settings
from persistence.db import get_engine

POLL_S = 0.05  # how soon a process asks again when a slot or an answer is awaited
MAX_WAIT_S = 1.0  # never sleep longer than this between two looks (another process may finish early)
PRUNE_EVERY = 64  # admissions between two clean-ups of calls no window looks at any more


@dataclass(frozen=True)
class _Decision:
    call_id: int | None  # admitted: the logged call's id
    wait_s: float  # not admitted: how long to wait before asking again


class SharedLimiter:
    """The deployment-wide limiter of one (provider, organisation); same interface as ``TenantLimiter``
    (``async with limiter.slot(): ...`` and ``pause(seconds)``). Bind one per event loop."""

    def __init__(
        self,
        database_url: str,
        provider: str,
        tenant: str,
        policy: RateLimitPolicy,
        *,
        lease_s: float,
    ) -> None:
        self.policy = policy
        self.provider = provider
        self.tenant = tenant[:200]
        self._url = database_url
        self._lease = timedelta(seconds=lease_s)
        self._slots = asyncio.Semaphore(policy.max_concurrent)
        self._admission = asyncio.Lock()
        self._pause_s = 0.0
        self._admitted = 0
        self._keep = max(calls for calls, _ in policy.windows)
        self.in_flight = 0
        self.max_in_flight = 0  # this process's high-water mark, for tests and metrics

    def pause(self, seconds: float) -> None:
        """The provider said Retry-After: every process holds its calls (written at the next admission)."""
        self._pause_s = max(self._pause_s, seconds)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            call_id = await self._admit()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1
                await asyncio.shield(asyncio.to_thread(self._finish, call_id))

    async def _admit(self) -> int:
        async with self._admission:
            while True:
                decision = await asyncio.to_thread(self._try_admit)
                if decision.call_id is not None:
                    return decision.call_id
                await asyncio.sleep(min(max(decision.wait_s, POLL_S), MAX_WAIT_S))

    # --- database side (runs on a thread) ------------------------------------------------------------

    def _org(self) -> dict[str, str]:
        return {"provider": self.provider, "tenant": self.tenant}

    def _try_admit(self) -> _Decision:
        with get_engine(self._url).begin() as conn:
            conn.execute(
                text(
                    "insert into accounting_rate_limits (provider, tenant_id) values (:provider, :tenant) "
                    "on conflict do nothing"
                ),
                self._org(),
            )
            paused_until = conn.execute(
                text(
                    "select paused_until from accounting_rate_limits "
                    "where provider = :provider and tenant_id = :tenant for update"
                ),
                self._org(),
            ).scalar_one()
            now = conn.execute(text("select clock_timestamp()")).scalar_one()  # after the lock is ours
            pause, self._pause_s = self._pause_s, 0.0
            if pause > 0:
                until = now + timedelta(seconds=pause)
                if paused_until is None or until > paused_until:
                    paused_until = until
                    conn.execute(
                        text(
                            "update accounting_rate_limits set paused_until = :until "
                            "where provider = :provider and tenant_id = :tenant"
                        ),
                        {**self._org(), "until": until},
                    )
            wait = (paused_until - now).total_seconds() if paused_until is not None else 0.0
            if self._unanswered(conn, now) >= self.policy.max_concurrent:
                return _Decision(None, POLL_S)
            for calls, period in self.policy.windows:
                row = conn.execute(
                    text(
                        "select finished_at, lease_until from accounting_rate_calls "
                        "where provider = :provider and tenant_id = :tenant "
                        "order by id desc offset :skip limit 1"
                    ),
                    {**self._org(), "skip": calls - 1},
                ).one_or_none()
                if row is None:
                    continue
                finished_at, lease_until = row
                if finished_at is None and lease_until > now:
                    return _Decision(None, POLL_S)  # its answer starts the window: wait for it
                answered = finished_at if finished_at is not None else lease_until
                wait = max(wait, (answered - now).total_seconds() + period + self.policy.margin_s)
            if wait > 0:
                return _Decision(None, wait)
            call_id = conn.execute(
                text(
                    "insert into accounting_rate_calls (provider, tenant_id, started_at, lease_until) "
                    "values (:provider, :tenant, :now, :lease) returning id"
                ),
                {**self._org(), "now": now, "lease": now + self._lease},
            ).scalar_one()
            self._admitted += 1
            if self._admitted % PRUNE_EVERY == 0:
                self._prune(conn)
            return _Decision(int(call_id), 0.0)

    def _unanswered(self, conn: Connection, now: object) -> int:
        return int(
            conn.execute(
                text(
                    "select count(*) from accounting_rate_calls where provider = :provider "
                    "and tenant_id = :tenant and finished_at is null and lease_until > :now"
                ),
                {**self._org(), "now": now},
            ).scalar_one()
        )

    def _prune(self, conn: Connection) -> None:
        """Drop calls older than the last ``max(window calls)``: no window ever looks further back."""
        conn.execute(
            text(
                "delete from accounting_rate_calls where provider = :provider and tenant_id = :tenant "
                "and id < (select id from accounting_rate_calls where provider = :provider "
                "and tenant_id = :tenant order by id desc offset :keep limit 1)"
            ),
            {**self._org(), "keep": self._keep},
        )

    def _finish(self, call_id: int) -> None:
        with get_engine(self._url).begin() as conn:
            conn.execute(
                text("update accounting_rate_calls set finished_at = clock_timestamp() where id = :id"),
                {"id": call_id},
            )


def parse_policy(value: str, default: RateLimitPolicy) -> RateLimitPolicy:
    """``"60/60"`` or ``"60/60,5"`` (calls / seconds, at most N at once) → a policy replacing the
    provider's published windows; empty → ``default``. Raises ``ValueError`` naming the setting."""
    value = value.strip()
    if not value:
        return default
    try:
        window, _, concurrent = value.partition(",")
        calls, _, seconds = window.partition("/")
        return RateLimitPolicy(
            windows=((int(calls), float(seconds)),),
            max_concurrent=int(concurrent) if concurrent.strip() else default.max_concurrent,
            margin_s=min(default.margin_s, float(seconds) / 20),
        )
    except ValueError as exc:
        raise ValueError(
            f"INVOICEFLOW_ACCOUNTING_RATE_LIMIT: {value!r} is not CALLS/SECONDS[,CONCURRENT] (e.g. 60/60,5)"
        ) from exc


LEASE_MARGIN_S = 5.0  # a call counts as answered this long after its HTTP timeout, if its process died
DEFAULT_POLICIES = {"xero": XERO_POLICY, "qbo": QBO_POLICY, "freshbooks": FRESHBOOKS_POLICY}


def configured_limiter(
    settings: Settings, provider: str, tenant_id: str
) -> tuple[RateLimitPolicy, SharedLimiter | None]:
    """The organisation's policy (``accounting_rate_limit`` or the provider's published one) and, with
    ``accounting_rate_limit_scope=deployment``, the shared limiter; None leaves the connector on the
    per-process one (``accounting.ratelimit.limiter_for``)."""
    policy = parse_policy(settings.accounting_rate_limit, DEFAULT_POLICIES[provider])
    if settings.accounting_rate_limit_scope != "deployment":
        return policy, None
    limiter = SharedLimiter(
        settings.require_database_url(),
        provider,
        tenant_id,
        policy,
        lease_s=settings.accounting_timeout_s + LEASE_MARGIN_S,
    )
    return policy, limiter
