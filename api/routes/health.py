"""Liveness: ``GET /healthz`` answers 200 as long as the process serves requests, and checks nothing
else, so an orchestrator never restarts a healthy API because PostgreSQL or Temporal had a bad minute.
Whether it can do its work is ``GET /readyz`` (``api.routes.metrics``): PostgreSQL, Temporal, migrations."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
