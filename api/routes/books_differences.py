"""What the books changed that invoiceflow did not apply: ``GET /accounting/differences`` and one call
to decide each (``POST /accounting/differences/{id}/accept`` or ``/reject``). Semantics of accepting
each kind are in ``services.books_inbound``: a void is applied to our invoice, everything else is
acknowledged, because applying it automatically would be unsafe."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel

from api.deps import Operator, SettingsDep, TemporalDep
from services import books_inbound

router = APIRouter(prefix="/accounting", tags=["accounting"])


class DecisionIn(BaseModel):
    note: str = ""


@router.get("/differences")
async def list_differences(
    settings: SettingsDep, _: Operator, state: Literal["open", "accepted", "rejected", "all"] = "open"
) -> dict[str, Any]:
    rows = await books_inbound.list_differences(
        settings.require_database_url(), None if state == "all" else state
    )
    return {"differences": rows}


async def _decide(
    settings: SettingsDep,
    temporal: TemporalDep,
    operator: str,
    difference_id: uuid.UUID,
    accept: bool,
    note: str,
) -> dict[str, Any]:
    try:
        return await books_inbound.decide_difference(
            settings.require_database_url(), temporal, difference_id, accept=accept, actor=operator, note=note
        )
    except books_inbound.DifferenceNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except books_inbound.DifferenceDecided as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


@router.post("/differences/{difference_id}/accept")
async def accept_difference(
    difference_id: uuid.UUID,
    settings: SettingsDep,
    temporal: TemporalDep,
    operator: Operator,
    body: DecisionIn | None = None,
) -> dict[str, Any]:
    return await _decide(settings, temporal, operator, difference_id, True, body.note if body else "")


@router.post("/differences/{difference_id}/reject")
async def reject_difference(
    difference_id: uuid.UUID,
    settings: SettingsDep,
    temporal: TemporalDep,
    operator: Operator,
    body: DecisionIn | None = None,
) -> dict[str, Any]:
    return await _decide(settings, temporal, operator, difference_id, False, body.note if body else "")
