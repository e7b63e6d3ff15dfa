"""Accounting sync for operators: ``GET /accounting/reconcile`` compares every synced invoice with the
provider's copy (``accounting.reconcile``) and lists the differences; an empty list means the books
agree. Read-only: what to do about a difference is an accountant's decision. It reads one invoice per
API call at the provider, paced by the organisation's rate limiter (Xero: 60 a minute), so a large
ledger takes minutes; ``invoiceflow reconcile`` does the same from a shell or a cron job.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel

from accounting.errors import AccountingError
from accounting.reconcile import reconcile
from api.deps import Operator, SettingsDep

router = APIRouter(prefix="/accounting", tags=["accounting"])


class DifferenceOut(BaseModel):
    invoice_id: str
    number: str
    external_id: str
    problems: list[str]


class ReconcileOut(BaseModel):
    provider: str  # "none" when no accounting provider is configured
    differences: list[DifferenceOut]


@router.get("/reconcile", response_model=ReconcileOut)
async def reconcile_invoices(settings: SettingsDep, _: Operator) -> ReconcileOut:
    try:
        differences = await reconcile(settings)
    except AccountingError as exc:  # not connected, refused credentials: someone must act
        raise HTTPException(status.HTTP_409_CONFLICT, detail=exc.message) from exc
    return ReconcileOut(
        provider=settings.accounting_provider,
        differences=[
            DifferenceOut(
                invoice_id=d.invoice_id, number=d.number, external_id=d.external_id, problems=list(d.problems)
            )
            for d in differences
        ],
    )
