"""Client-side rate limiting per provider organisation, shared by every task in the process.

A billing day syncs hundreds of invoices at once; Xero allows 60 calls a minute and 5 at a time per
tenant, QBO 500 a minute (10 a second, 10 at a time) per realm. Waiting here is cheaper than a 429: a
429 still counts against Xero's quotas and sets every retry back by a minute. One ``TenantLimiter``
per (provider, organisation) is shared by all connectors through ``limiter_for``; all its state is
asyncio-only, so it is safe across any number of tasks on one event loop (one worker process). Several
worker processes share one quota through ``accounting.shared_limit`` (the default), which keeps this
rule across processes.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RateLimitPolicy:
    """``windows``: (max calls, seconds) pairs, all enforced; ``max_concurrent`` calls in flight.

    ``margin_s`` widens every window a little, for providers whose clock or counting point differs
    from ours.
    """

    windows: tuple[tuple[int, float], ...]
    max_concurrent: int
    margin_s: float = 0.0

    def __post_init__(self) -> None:
        if self.max_concurrent < 1 or any(calls < 1 or period <= 0 for calls, period in self.windows):
            raise ValueError(f"invalid rate limit policy {self}")


# Xero: 60/min, 5 concurrent, 5,000/day per tenant (the day quota as a rolling 24 h: conservative).
XERO_POLICY = RateLimitPolicy(windows=((60, 60.0), (5000, 86400.0)), max_concurrent=5, margin_s=1.0)
# QBO: 500/min per realm, 10/s per realm+app, (older policy) 10 concurrent.
QBO_POLICY = RateLimitPolicy(windows=((500, 60.0), (10, 1.0)), max_concurrent=10, margin_s=0.1)
# FreshBooks publishes no limit; keep a polite ceiling.
FRESHBOOKS_POLICY = RateLimitPolicy(windows=((120, 60.0),), max_concurrent=5, margin_s=0.5)


class CallLimiter(Protocol):
    """What a connector needs of a limiter: this per-process one or ``accounting.shared_limit``'s."""

    policy: RateLimitPolicy

    def slot(self) -> AbstractAsyncContextManager[None]: ...

    def pause(self, seconds: float) -> None: ...


class _Call:
    """One admitted call; ``done_at`` is set when its response (or error) is back."""

    __slots__ = ("done_at", "finished")

    def __init__(self) -> None:
        self.done_at: float | None = None
        self.finished = asyncio.Event()

    def finish(self, now: float) -> None:
        if self.done_at is None:
            self.done_at = now
            self.finished.set()


class TenantLimiter:
    """Admits a call when a concurrency slot is free and every window has room; FIFO among waiters.

    The provider counts a call when it *arrives*, which we cannot see; what we can see is that it
    arrived before its response came back. So a window of N calls per W seconds is kept by sending
    call j no sooner than W after the *responses* of every call N or more admissions earlier. That
    holds whatever the network jitter (sending j earlier, after the N-th previous *send*, let the
    stand-in see 26 calls in a 25-call window on a loaded machine).
    """

    def __init__(self, policy: RateLimitPolicy, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._slots = asyncio.Semaphore(policy.max_concurrent)
        self._admission = asyncio.Lock()  # asyncio.Lock wakes waiters in FIFO order
        self._recent: deque[_Call] = deque(maxlen=max(calls for calls, _ in policy.windows))
        # Per window: the latest response time among calls that have left its last-N range.
        self._floors = [float("-inf")] * len(policy.windows)
        self._paused_until = 0.0
        self.in_flight = 0
        self.max_in_flight = 0  # observed high-water mark, for tests and metrics

    def pause(self, seconds: float) -> None:
        """Hold every call for this organisation (the provider said Retry-After: ``seconds``)."""
        self._paused_until = max(self._paused_until, self._clock() + max(seconds, 0.0))

    async def _admit(self) -> _Call:
        async with self._admission:
            while True:
                now = self._clock()
                wait = self._paused_until - now
                floors = list(self._floors)
                pending: _Call | None = None
                for index, (calls, period) in enumerate(self.policy.windows):
                    if len(self._recent) < calls:
                        continue
                    leaving = self._recent[-calls]
                    if leaving.done_at is None:
                        pending = leaving
                        break
                    floors[index] = max(floors[index], leaving.done_at)
                    wait = max(wait, floors[index] + period + self.policy.margin_s - now)
                if pending is not None:
                    await pending.finished.wait()
                elif wait > 0:
                    await asyncio.sleep(wait)
                else:
                    self._floors = floors
                    call = _Call()
                    self._recent.append(call)
                    return call

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """``async with limiter.slot(): await send()`` — held for the whole request and response."""
        async with self._slots:
            call = await self._admit()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1
                call.finish(self._clock())


# Per event loop: asyncio primitives belong to one loop (a worker has one; test runs may have several).
_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], TenantLimiter]] = (
    weakref.WeakKeyDictionary()
)


def limiter_for(provider: str, tenant: str, policy: RateLimitPolicy) -> TenantLimiter:
    """The process-wide limiter of one organisation, so every connector instance shares its quota.
    Call it from the event loop that will use the limiter."""
    limiters = _shared.setdefault(asyncio.get_running_loop(), {})
    key = (provider, tenant)
    limiter = limiters.get(key)
    if limiter is None or limiter.policy != policy:
        limiter = limiters[key] = TenantLimiter(policy)
    return limiter
