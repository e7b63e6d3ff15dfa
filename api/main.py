"""The operator API (FastAPI). `create_app()` is the factory used by uvicorn, the dev stack and tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from api import console, errors, openapi_doc
from api.request_guard import RequestGuard
from api.routes import (
    accounting,
    approval_pages,
    approval_rules,
    billable_items,
    books_differences,
    change_order_pages,
    credit_notes,
    customers,
    dunning,
    einvoice,
    estimates,
    health,
    hosted,
    invoices,
    metrics,
    outbox,
    project_changes,
    projects,
    refunds,
    reports,
    subscriptions,
)
from api.webhooks import books as books_webhooks
from api.webhooks import receivers, stripe, time_tracking
from api.webhooks.dispatcher import InboxDispatcher
from core.settings import Settings, get_settings
from core.temporal import connect
from observability import tracing
from observability.http import ObservabilityMiddleware
from services.db import Db


def _build_route_tables(app: FastAPI) -> None:
    """FastAPI builds an included router's route table (dependants, parameter models) the first time a
    request is matched past it: about 0.1-0.2 CPU s for all of ours, which the first webhooks after a
    start would queue behind. Matching a path no route has walks every router once, at start-up."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    for route in app.router.routes:
        route.matches(dict(scope))


def create_app(settings: Settings | None = None, temporal: Client | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if temporal is None:
            # lazy: the API starts (and /readyz says why it is not ready) even while Temporal is down.
            app.state.temporal = await connect(
                settings, lazy=True, interceptors=tracing.temporal_interceptors()
            )
        _build_route_tables(app)
        # Hands accepted webhook events to Temporal; its first pass sweeps what a previous run left. With
        # INVOICEFLOW_DISPATCHER_IN_API=false `invoiceflow dispatcher` processes do, off this event loop.
        if settings.dispatcher_in_api:
            app.state.dispatcher.start()
        try:
            yield
        finally:
            await app.state.dispatcher.stop()

    app = FastAPI(
        title="invoiceflow",
        version="0.1.0",
        summary="Invoice workflows for IT service companies, on Temporal.",
        lifespan=lifespan,
        # Refused with 413 before a byte is read (Content-Length) or as soon as a stream passes it.
        max_body_size=settings.max_body_bytes,
    )
    app.state.settings = settings
    app.add_middleware(ObservabilityMiddleware)
    tracing.setup("invoiceflow-api", settings.otlp_endpoint)
    tracing.instrument_app(app)
    app.state.db = Db(settings.require_database_url())
    if temporal is not None:
        app.state.temporal = temporal
    app.state.dispatcher = InboxDispatcher(app.state.db, lambda: app.state.temporal, settings)

    errors.install(app)
    openapi_doc.install(app)

    app.include_router(health.router)
    app.include_router(metrics.router)
    # The webhook receivers next: a request is matched against the routers in this order, and walking
    # the ~90 routes before them cost each delivery 0.3 CPU ms (ten times what matching them first does).
    app.include_router(receivers.router)
    app.include_router(time_tracking.router)
    app.include_router(stripe.router)
    app.include_router(books_webhooks.router)
    app.include_router(accounting.router)
    app.include_router(customers.router)
    app.include_router(invoices.router)
    app.include_router(einvoice.router)
    app.include_router(credit_notes.router)
    app.include_router(refunds.router)
    app.include_router(dunning.router)
    app.include_router(subscriptions.router)
    app.include_router(billable_items.router)
    app.include_router(approval_rules.router)
    app.include_router(change_order_pages.router)
    app.include_router(approval_pages.router)
    app.include_router(estimates.router)
    app.include_router(projects.router)
    app.include_router(project_changes.router)
    app.include_router(reports.router)
    app.include_router(hosted.router)
    app.include_router(books_differences.router)
    console.install(app)
    app.add_middleware(RequestGuard, token=settings.api_token)
    app.include_router(outbox.router)
    return app
