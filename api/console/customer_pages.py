"""A customer in the console: details and edits (the API's ``PATCH /customers/{id}`` validation),
unapplied credit per currency, its invoices, and a dunning hold over all of them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api.console import queries
from api.console.actions import ActionRefused, CustomerActions
from api.console.auth import Current, current, guard, page, redirect
from api.routes import customers
from persistence import dunning as dunning_repo

router = APIRouter(prefix="/app", include_in_schema=False)
EDITABLE = ("name", "timezone", "payment_terms", "owner_email", "address", "tax_id")


@router.get("/customers/{customer_id}")
async def customer_page(
    request: Request, customer_id: uuid.UUID, who: Annotated[Current, Depends(current)]
) -> Response:
    db = request.app.state.db
    try:
        customer = await customers.get_customer(customer_id=customer_id, db=db, _=who.principal.actor)
    except HTTPException:
        return page(request, "not_found.html", status_code=404, what=f"customer {customer_id}")

    def tx(session: Session):  # type: ignore[no-untyped-def]
        holds = dunning_repo.active_customer_holds(session, customer_id, datetime.now(UTC))
        rows, total = queries.list_invoices(
            session, queries.InvoiceFilters(customer_id=str(customer_id)), limit=50
        )
        return holds, rows, total

    holds, rows, total = await db.run(tx)
    return page(
        request,
        "customer.html",
        c=customer,
        holds=holds,
        rows=rows,
        total=total,
        can_act=who.principal.can_act(),
    )


@router.post("/customers/{customer_id}/{action}")
async def customer_action(request: Request, customer_id: uuid.UUID, action: str) -> Response:
    who, form = await guard(request, "finance")
    act = CustomerActions(request, who.principal.actor)
    back = f"/app/customers/{customer_id}"

    def text(name: str, limit: int = 2000) -> str:
        value = form.get(name)
        return str(value).strip()[:limit] if isinstance(value, str) else ""

    try:
        if action == "edit":
            changes: dict[str, object] = {k: text(k) for k in EDITABLE if k in form}
            if changes.get("owner_email") == "":
                changes["owner_email"] = None
            if "emails" in form:
                changes["emails"] = [
                    e.strip() for e in text("emails", 4000).replace(";", ",").split(",") if e.strip()
                ]
            await act.update_customer(customer_id, changes)
            done = "Saved. Issued invoices keep what they were issued with."
        elif action == "hold":
            result = await act.hold_customer(customer_id, text("reason"), text("resume_on", 10))
            done = f"Dunning is on hold for this customer ({len(result.invoices)} open invoice(s))."
        elif action == "release":
            result = await act.release_customer(customer_id, text("reason"))
            done = f"Released: reminders resume on {len(result.invoices)} invoice(s)."
        else:
            return redirect(request, back, ("error", f"unknown action {action!r}"))
    except ActionRefused as refused:
        return redirect(request, back, ("error", f"Not done: {refused.message}"))
    return redirect(request, back, ("ok", done))
