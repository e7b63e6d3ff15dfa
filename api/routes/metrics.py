"""``GET /metrics`` (Prometheus) and ``GET /readyz`` (PostgreSQL, Temporal, migrations at head).

``/metrics`` is not behind the operator token: Prometheus has its own. Set INVOICEFLOW_METRICS_TOKEN to
ask for ``Authorization: Bearer <it>`` (Prometheus' ``authorization`` scrape option), or keep the path
off the internet at the proxy."""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from observability import metrics
from observability.collectors import InboxCollector
from observability.readiness import database_checks, temporal_check

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def prometheus(request: Request) -> Response:
    settings = request.app.state.settings
    if settings.metrics_token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {settings.metrics_token}".encode()):
            return Response("metrics need Authorization: Bearer <INVOICEFLOW_METRICS_TOKEN>\n", 401)
    collector = InboxCollector(settings.require_database_url())
    body = await run_in_threadpool(metrics.exposition, collector)
    return Response(body, media_type=metrics.CONTENT_TYPE_LATEST)


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready to take traffic: PostgreSQL answers with its schema at head and Temporal serves."""
    url = request.app.state.settings.require_database_url()
    db_checks, temporal = await asyncio.gather(
        run_in_threadpool(database_checks, url), temporal_check(request.app.state.temporal)
    )
    checks = [*db_checks, temporal]
    ready = all(c.ok for c in checks)
    return JSONResponse(
        status_code=200 if ready else 503,
        content={
            "status": "ready" if ready else "not ready",
            "checks": {c.name: ("ok" if c.ok else f"error: {c.detail}") for c in checks},
        },
    )
