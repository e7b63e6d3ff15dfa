"""The console's form posts. Each one: ``guard`` (session, CSRF token, role), the form's fields turned
into the API's request body, one call in ``api.console.actions``, then back to the page with what
happened, or with the refusal's own words (the workflow's reason when its validator said no)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from api.console import queries
from api.console.actions import ActionRefused, Actions, build
from api.console.auth import guard, page, redirect
from api.schemas import CreditNoteCreate, CustomerCreate, InvoiceCreate, PaymentCreate, RefundCreate
from billing.errors import MoneyError
from billing.totals import compute_totals, parse_lines

router = APIRouter(prefix="/app", include_in_schema=False)


def _text(form: FormData, name: str, limit: int = 2000) -> str:
    value = form.get(name)
    return str(value).strip()[:limit] if isinstance(value, str) else ""


def _key(form: FormData) -> str:
    # Rendered into each form once: a double click or a re-sent post repeats the same request.
    return _text(form, "idempotency_key", 200) or str(uuid.uuid4())


def _back(form: FormData, default: str) -> str:
    """Where a form asked to return (the inbox, the accounting page): only a console path."""
    value = _text(form, "back", 300)
    return value if value.startswith("/app/") and "//" not in value and "\\" not in value else default


async def _invoice_action(request: Request, invoice_id: uuid.UUID, action: str) -> Response:
    who, form = await guard(request, "finance")
    act = Actions(request, who.principal.actor)
    back = _back(form, f"/app/invoices/{invoice_id}")
    try:
        if action == "payment":
            body = build(
                PaymentCreate,
                amount=_text(form, "amount", 40),
                method=_text(form, "method", 40) or "bank_transfer",
                reference=_text(form, "reference", 200),
            )
            result = await act.record_payment(invoice_id, body, _key(form))
            done = (
                f"Payment recorded{' (already recorded before)' if result.duplicate else ''}: "
                f"now {result.status.replace('_', ' ')}, {result.amount_due} due."
            )
        elif action == "approve":
            await act.approve(invoice_id, _text(form, "comment"))
            done = "Approved: the invoice is issued and sent."
        elif action == "decide":
            decision = _text(form, "decision", 10)
            await act.decide(invoice_id, _text(form, "approver", 254), decision, _text(form, "comment"))
            done = f"Decision recorded: {decision}."
        elif action == "void":
            await act.void(invoice_id, _text(form, "reason"))
            done = "The invoice is void."
        elif action == "resend":
            await act.resend(invoice_id, _text(form, "reason"), _key(form))
            done = "The invoice email is sent to the customer again."
        elif action == "write-off":
            await act.write_off(invoice_id, _text(form, "reason"))
            done = "The invoice is written off (uncollectible)."
        elif action == "retry-sync":
            await act.retry_sync(invoice_id)
            done = "The accounting sync runs again."
        elif action == "credit-note":
            full = _text(form, "full", 5) == "yes"
            lines = None
            if not full:
                lines = [
                    {
                        "description": _text(form, "description", 1000) or "Credit",
                        "unit_price": _text(form, "amount", 40),
                        "tax_rate": _text(form, "tax_rate", 10) or "0",
                    }
                ]
            body = build(
                CreditNoteCreate,
                reason=_text(form, "reason"),
                full=full,
                lines=lines,
                idempotency_key=_key(form),
            )
            result = await act.credit_note(invoice_id, body)
            done = f"Credit note {result.credit_note.number} issued: {result.amount_due} due."
        elif action == "refund":
            body = build(
                RefundCreate,
                payment_id=_text(form, "payment_id", 40),
                amount=_text(form, "amount", 40),
                reason=_text(form, "reason"),
                idempotency_key=_key(form),
            )
            result = await act.refund(invoice_id, body)
            done = f"Refund recorded: {result.amount_due} due."
        elif action == "hold":
            await act.hold(invoice_id, _text(form, "reason"), _text(form, "resume_on", 10))
            done = "Dunning is on hold for this invoice."
        elif action == "release":
            await act.release(invoice_id, _text(form, "reason"))
            done = "The hold is released; reminders carry on."
        else:
            return redirect(request, back, ("error", f"unknown action {action!r}"))
    except ActionRefused as refused:
        return redirect(request, back, ("error", f"Not done: {refused.message}"))
    return redirect(request, back, ("ok", done))


@router.post("/invoices/{invoice_id}/{action}")
async def invoice_action(request: Request, invoice_id: uuid.UUID, action: str) -> Response:
    return await _invoice_action(request, invoice_id, action)


def _lines(form: FormData) -> list[dict[str, str]]:
    lines = []
    for i in range(0, 50):
        description = _text(form, f"description{i}", 1000)
        price = _text(form, f"unit_price{i}", 40)
        if not description and not price:
            continue
        lines.append(
            {
                "description": description,
                "unit_price": price,
                "quantity": _text(form, f"quantity{i}", 40) or "1",
                "tax_rate": _text(form, f"tax_rate{i}", 10) or "0",
            }
        )
    return lines


@router.post("/invoices/preview")
async def preview_invoice(request: Request) -> Response:
    """The totals (by the billing rules) and the approval chain the invoice would get (the dry run of
    ``POST /approval-rules/dry-run``), with the form as it was filled in; nothing is saved."""
    who, form = await guard(request, "finance")
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    customers = await request.app.state.db.run(lambda s: queries.customers(s))
    preview: dict[str, object] = {}
    try:
        customer = next((c for c in customers if str(c.id) == _text(form, "customer_id", 40)), None)
        if customer is None:
            raise ActionRefused("customer: pick one")
        lines = _lines(form)
        try:
            totals = compute_totals(parse_lines(lines), customer.currency)
        except MoneyError as exc:
            raise ActionRefused(str(exc)) from None
        chain = await Actions(request, who.principal.actor).dry_run(
            customer.id, totals.total, customer.currency
        )
        preview = {"totals": totals, "chain": chain}
    except ActionRefused as refused:
        preview = {"error": refused.message}
    count = max(3, len(_lines(form)))
    return page(
        request,
        "invoice_new.html",
        customers=customers,
        selected=values.get("customer_id", ""),
        lines=count,
        values=values,
        preview=preview,
    )


@router.post("/invoices")
async def create_invoice(request: Request) -> Response:
    who, form = await guard(request, "finance")
    act = Actions(request, who.principal.actor)
    try:
        body = build(
            InvoiceCreate,
            customer_id=_text(form, "customer_id", 40),
            lines=_lines(form),
            notes=_text(form, "notes", 5000),
            due_date=_text(form, "due_date", 10) or None,
        )
        created = await act.create_invoice(body, _key(form))
    except ActionRefused as refused:
        return redirect(request, "/app/invoices/new", ("error", f"Not created: {refused.message}"))
    return redirect(
        request,
        f"/app/invoices/{created.id}",
        ("ok", f"Invoice created ({created.total} {created.currency}); it goes out now."),
    )


@router.post("/customers")
async def create_customer(request: Request) -> Response:
    who, form = await guard(request, "finance")
    act = Actions(request, who.principal.actor)
    emails = [e.strip() for e in _text(form, "emails", 4000).replace(";", ",").split(",") if e.strip()]
    try:
        body = build(
            CustomerCreate,
            name=_text(form, "name", 300),
            emails=emails,
            currency=_text(form, "currency", 3).upper() or "USD",
            timezone=_text(form, "timezone", 60) or "UTC",
            payment_terms=_text(form, "payment_terms", 32) or "net_30",
            owner_email=_text(form, "owner_email", 254) or None,
        )
        created = await act.create_customer(body)
    except ActionRefused as refused:
        return redirect(request, "/app/customers", ("error", f"Not created: {refused.message}"))
    return redirect(request, "/app/customers", ("ok", f"Customer {created.name} created."))


@router.post("/webhooks/{event_id}/replay")
async def replay(request: Request, event_id: uuid.UUID) -> Response:
    who, _ = await guard(request, "finance")
    try:
        event = await Actions(request, who.principal.actor).replay_webhook(event_id)
    except ActionRefused as refused:
        return redirect(request, "/app/webhooks", ("error", f"Not replayed: {refused.message}"))
    kind = "ok" if event.status == "dispatched" else "error"
    note = f" ({event.note})" if event.note else ""
    return redirect(request, "/app/webhooks", (kind, f"Replayed: the event is {event.status}{note}."))
