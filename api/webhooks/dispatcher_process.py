"""`invoiceflow dispatcher`: the webhook inbox's dispatcher in a process of its own.

In the API, the receivers and the dispatcher share one event loop and one GIL: every batch of
signal-with-starts (payloads built, RPCs awaited, claims and marks on the thread pool) runs between the
requests a provider waits on. With ``INVOICEFLOW_DISPATCHER_IN_API=false`` the API only records and
routes; this process does the hand-over (`InboxDispatcher`, the same code and the same guarantees).

Waking it: a receiver that routed an event sends ``NOTIFY invoiceflow_inbox`` in its transaction, which
PostgreSQL delivers at commit, so the rows are visible when this process claims them. The sweep every few
seconds catches what a missed notification (a dropped LISTEN connection) left behind.

Any number of these processes may run, and any may be killed: rows are claimed with ``FOR UPDATE SKIP
LOCKED`` and a lease, so no two hand the same row over at once, a killed one's claims are taken again when
the lease runs out, and SIGTERM finishes the pass under way and makes a last one.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

import psycopg

from api.webhooks.dispatcher import SWEEP_S, InboxDispatcher
from core.settings import Settings
from core.temporal import connect
from observability import tracing
from persistence.webhook_inbox import NOTIFY_CHANNEL
from services.db import Db

log = logging.getLogger("invoiceflow.dispatcher")

RELISTEN_S = 1.0
#: After a NOTIFY, wait this long for more: at 100 webhooks a second, one pass for a few events instead of
#: a claim, a books-lane claim and a mark for each (measured: 4.1 dispatcher CPU ms a webhook without it).
GATHER_S = 0.02


def libpq_url(url: str) -> str:
    """psycopg takes the URL SQLAlchemy does, less the driver name."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


async def listen(url: str, wake: Callable[[], None], *, relisten_s: float = RELISTEN_S) -> None:
    """Call `wake` on every notification on the inbox channel, for ever; reconnect when the connection
    drops (and wake then: something may have been committed while nobody listened)."""
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
                await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                wake()
                async for _ in conn.notifies():
                    wake()
        except (psycopg.Error, OSError) as exc:
            log.warning("inbox dispatcher: LISTEN connection lost (%s); again in %g s", exc, relisten_s)
        await asyncio.sleep(relisten_s)


async def run(settings: Settings, stop: asyncio.Event | None = None, *, sweep_s: float = SWEEP_S) -> None:
    """Dispatch until `stop` is set (SIGTERM or SIGINT when not given), then one last pass."""
    tracing.setup("invoiceflow-dispatcher", settings.otlp_endpoint)
    url = settings.require_database_url()
    # lazy: the process starts while Temporal is down; the dispatcher backs off until it answers.
    temporal = await connect(settings, lazy=True, interceptors=tracing.temporal_interceptors())
    dispatcher = InboxDispatcher(Db(url), lambda: temporal, settings, sweep_s=sweep_s, gather_s=GATHER_S)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    dispatcher.start()
    listener = asyncio.create_task(listen(url, dispatcher.wake), name="webhook-inbox-listen")
    log.info("inbox dispatcher running")
    try:
        await stop.wait()
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await dispatcher.stop()
        log.info("inbox dispatcher stopped")
