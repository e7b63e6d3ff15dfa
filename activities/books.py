"""Activities of BooksInboundWorkflow: poll the books, or read what their webhook events name, and
record it (``services.books_inbound``). Async like the outbound sync: they wait on the provider's
HTTP API and share the organisation's rate limiter on one event loop.

Safe to retry at any point: payments are keyed by the provider's id, differences are unique per change,
and the cursor is written only after its changes were recorded. A 429 waits the provider's
Retry-After; an outage, an expired token (refreshed first) or one of our own pushes still under way
retries; a connection that does not exist any more fails without retrying.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from accounting.connection import Connection, open_connection
from accounting.errors import AccessDenied, AuthExpired, RateLimited, Transient, ValidationFailed
from accounting.tokens import ConnectionProblem, tokens_used
from core.settings import Settings
from services import books_inbound
from workflows.books import (
    APPLY_BOOKS_EVENTS,
    POLL_BOOKS,
    BooksEventsRequest,
    BooksOutcome,
    BooksPollRequest,
)


class BooksActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._connections: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Connection] = (
            weakref.WeakKeyDictionary()
        )

    async def aclose(self) -> None:
        connections = list(self._connections.values())
        self._connections.clear()
        for connection in connections:
            await connection.aclose()

    def _connection(self, provider: str, tenant_id: str) -> Connection:
        if provider != self._settings.accounting_provider:
            raise ApplicationError(
                f"the books of {provider} are not the configured provider "
                f"({self._settings.accounting_provider})",
                type="BooksNotConfigured",
                non_retryable=True,
            )
        loop = asyncio.get_running_loop()
        connection = self._connections.get(loop)
        if connection is None or connection.tenant_id != tenant_id:
            connection = open_connection(self._settings, tenant_id)
            self._connections[loop] = connection
        return connection

    async def _run(
        self, provider: str, tenant_id: str, use: Callable[[books_inbound.Books], Awaitable[BooksOutcome]]
    ) -> BooksOutcome:
        connection = self._connection(provider, tenant_id)
        books = books_inbound.Books(
            provider=provider,
            tenant_id=tenant_id,
            feed=connection.connector,  # type: ignore[arg-type]
            database_url=self._settings.require_database_url(),
            temporal=activity.client(),
        )
        with tokens_used() as used:
            try:
                return await use(books)
            except RateLimited as exc:
                delay = timedelta(seconds=max(1, math.ceil(exc.retry_after_seconds)))
                raise ApplicationError(exc.message, type="BooksRateLimited", next_retry_delay=delay) from exc
            except AuthExpired as exc:
                try:
                    await connection.store.refresh_after_rejection(used[-1] if used else None)
                except ConnectionProblem as problem:
                    raise ApplicationError(problem.message, type="BooksNotConnected") from problem
                raise ApplicationError(f"{exc.message}; token refreshed", type="BooksAuthExpired") from exc
            except books_inbound.PushInFlight as exc:
                raise ApplicationError(
                    str(exc), type="BooksPushInFlight", next_retry_delay=timedelta(seconds=2)
                ) from exc
            except (Transient, ValidationFailed, AccessDenied) as exc:
                # Reading never writes: any refusal may heal (a reconnect, the provider back), so retry.
                raise ApplicationError(exc.message, type=f"Books{type(exc).__name__}") from exc

    @activity.defn(name=POLL_BOOKS)
    async def poll_books(self, request: BooksPollRequest) -> BooksOutcome:
        outcome = await self._run(request.provider, request.tenant_id, books_inbound.poll)
        outcome.poll_seconds = self._settings.accounting_poll_minutes * 60
        return outcome

    @activity.defn(name=APPLY_BOOKS_EVENTS)
    async def apply_books_events(self, request: BooksEventsRequest) -> BooksOutcome:
        return await self._run(
            request.provider,
            request.tenant_id,
            lambda books: books_inbound.apply_events(books, request.events),
        )
