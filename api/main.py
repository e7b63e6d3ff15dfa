"""The operator API (FastAPI). `create_app()` is the factory used by uvicorn, the dev stack and tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from temporalio.client import Client

from api.deps import Db
from api.routes import (
    accounting,
    approval_pages,
    approval_rules,
    billable_items,
    credit_notes,
    customers,
    dunning,
    estimates,
    health,
    hosted,
    invoices,
    outbox,
    projects,
    refunds,
    reports,
    subscriptions,
)
from api.webhooks import receivers, stripe
from api.webhooks.dispatcher import InboxDispatcher
from billing.errors import MoneyError
from core.settings import Settings, get_settings


def create_app(settings: Settings | None = None, temporal: Client | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if temporal is None:
            # lazy: the API starts (and /healthz says why it is unhealthy) even while Temporal is down.
            app.state.temporal = await Client.connect(
                settings.temporal_address, namespace=settings.temporal_namespace, lazy=True
            )
        # Hands accepted webhook events to Temporal; its first pass sweeps what a previous run left.
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
    )
    app.state.settings = settings
    app.state.db = Db(settings.require_database_url())
    if temporal is not None:
        app.state.temporal = temporal
    app.state.dispatcher = InboxDispatcher(app.state.db, lambda: app.state.temporal, settings)

    @app.exception_handler(MoneyError)
    async def _money_error(_: Request, exc: MoneyError) -> JSONResponse:
        # Domain validation (totals, currencies) that pydantic could not see field by field.
        return JSONResponse(
            status_code=422, content={"detail": [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]}
        )

    app.include_router(health.router)
    app.include_router(accounting.router)
    app.include_router(customers.router)
    app.include_router(invoices.router)
    app.include_router(credit_notes.router)
    app.include_router(refunds.router)
    app.include_router(dunning.router)
    app.include_router(subscriptions.router)
    app.include_router(billable_items.router)
    app.include_router(approval_rules.router)
    app.include_router(approval_pages.router)
    app.include_router(estimates.router)
    app.include_router(projects.router)
    app.include_router(reports.router)
    app.include_router(hosted.router)
    app.include_router(receivers.router)
    app.include_router(stripe.router)
    app.include_router(outbox.router)
    return app
