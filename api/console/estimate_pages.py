"""Estimates in the console: the list (newest first) and one estimate with its lines and state, and
the client's acceptance entered on their behalf (the API's ``POST /estimates/{id}/convert``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.console.actions import ActionRefused, EstimateActions
from api.console.auth import Current, current, guard, page, redirect
from api.routes import estimates
from persistence.models import Estimate

router = APIRouter(prefix="/app", include_in_schema=False)
User = Annotated[Current, Depends(current)]


@router.get("/estimates")
async def estimate_list(request: Request, who: User) -> Response:
    def tx(session: Session) -> list[Estimate]:
        return list(session.scalars(select(Estimate).order_by(Estimate.created_at.desc()).limit(200)))

    rows = await request.app.state.db.run(tx)
    return page(request, "estimates.html", rows=rows)


@router.get("/estimates/{estimate_id}")
async def estimate_page(request: Request, estimate_id: uuid.UUID, who: User) -> Response:
    try:
        e = await estimates.get_estimate(
            estimate_id=estimate_id, db=request.app.state.db, _=who.principal.actor
        )
    except HTTPException:
        return page(request, "not_found.html", status_code=404, what=f"estimate {estimate_id}")
    return page(request, "estimate.html", e=e, can_act=who.principal.can_act())


@router.post("/estimates/{estimate_id}/convert")
async def convert(request: Request, estimate_id: uuid.UUID) -> Response:
    who, form = await guard(request, "finance")
    back = f"/app/estimates/{estimate_id}"
    try:
        await EstimateActions(request, who.principal.actor).convert_estimate(
            estimate_id, str(form.get("note") or "")[:2000]
        )
    except ActionRefused as refused:
        return redirect(request, back, ("error", f"Not done: {refused.message}"))
    return redirect(request, back, ("ok", "Accepted on the client's behalf: the invoice is on its way."))
