"""Liveness for orchestrators and `invoiceflow dev`: 200 only when PostgreSQL and Temporal both answer."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import DbDep, TemporalDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(db: DbDep, temporal: TemporalDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(db.run(lambda s: s.execute(text("select 1")).scalar_one()), timeout=3)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy; say which
        checks["database"] = f"error: {type(exc).__name__}: {exc}"[:300]
    try:
        ok = await asyncio.wait_for(temporal.service_client.check_health(), timeout=3)
        checks["temporal"] = "ok" if ok else "error: not serving"
    except Exception as exc:  # noqa: BLE001
        checks["temporal"] = f"error: {type(exc).__name__}: {exc}"[:300]
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        status_code=200 if healthy else 503, content={"status": "ok" if healthy else "unhealthy", **checks}
    )
