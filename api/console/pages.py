"""The console's pages (GET): home, invoices (list, CSV, one invoice), new invoice form, customers,
approvals inbox, webhooks, accounting. Reads reuse the API's own loaders where one exists."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api.console import queries
from api.console.auth import Current, current, page
from api.routes import accounting as accounting_routes
from api.routes import dunning, reports
from api.views.invoices import load_invoice
from core.settings import Settings
from persistence.models import Customer
from services.errors import NotFound, Unavailable
from services.workflow_calls import invoice_state
from workflows.payloads import InvoiceState

router = APIRouter(prefix="/app", include_in_schema=False)
User = Annotated[Current, Depends(current)]
OPEN = ("open", "overdue", "partially_paid")
STATUSES = (
    "draft",
    "pending_approval",
    "einvoice_invalid",
    "open",
    "overdue",
    "partially_paid",
    "paid",
    "void",
    "uncollectible",
    "credited",
)


def _db(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.db


def _settings(request: Request) -> Settings:
    return request.app.state.settings


@router.get("")
async def home(request: Request, who: User) -> Response:
    settings, now = _settings(request), datetime.now(UTC)
    today = now.date()

    def tx(session: Session):  # type: ignore[no-untyped-def]
        report = reports.load_aging(session, today)
        actions = reports.load_next_actions(session, settings, now, 24)
        return reports.page_context(report, actions), queries.attention(session)

    context, attention = await _db(request).run(tx)
    return page(request, "home.html", aging=context, attention=attention)


@router.get("/invoices")
async def invoice_list(request: Request, who: User) -> Response:
    f = queries.InvoiceFilters.parse(dict(request.query_params))

    def tx(session: Session):  # type: ignore[no-untyped-def]
        rows, total = queries.list_invoices(session, f)
        return rows, total, queries.customers(session), queries.projects(session)

    rows, total, customers, projects = await _db(request).run(tx)
    pages = max(1, -(-total // queries.PAGE_SIZE))
    return page(
        request,
        "invoices.html",
        rows=rows,
        total=total,
        f=f,
        pages=pages,
        statuses=STATUSES,
        customers=customers,
        projects=projects,
        link=lambda **kw: "?" + urlencode(f.query(**kw)),
        csv_link="/app/invoices.csv?" + urlencode(f.query(page=1)),
    )


@router.get("/invoices.csv")
async def invoice_csv(request: Request, who: User) -> Response:
    f = queries.InvoiceFilters.parse(dict(request.query_params))
    rows, _ = await _db(request).run(lambda s: queries.list_invoices(s, f, limit=10_000))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "number",
            "customer",
            "status",
            "currency",
            "issue_date",
            "due_date",
            "total",
            "amount_paid",
            "amount_credited",
            "amount_due",
            "id",
        ]
    )
    for i in rows:
        name = i.customer.name
        if name[:1] in ("=", "+", "-", "@"):  # no formula injection when the file opens in a spreadsheet
            name = "'" + name
        writer.writerow(
            [
                i.number or "",
                name,
                i.status,
                i.currency,
                i.issue_date or "",
                i.due_date or "",
                i.total,
                i.amount_paid,
                i.amount_credited,
                i.amount_due,
                i.id,
            ]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="invoices.csv"'},
    )


@router.get("/invoices/new")
async def new_invoice(request: Request, who: User, customer_id: str = "") -> Response:
    customers = await _db(request).run(lambda s: queries.customers(s))
    return page(
        request, "invoice_new.html", customers=customers, selected=customer_id, lines=3, values={}, preview={}
    )


@router.get("/invoices/{invoice_id}")
async def invoice_page(request: Request, invoice_id: uuid.UUID, who: User) -> Response:
    db = _db(request)
    try:
        invoice = await load_invoice(db, invoice_id)
    except NotFound:
        return page(request, "not_found.html", status_code=404, what=f"invoice {invoice_id}")
    actor = who.principal.actor
    try:
        plan = await dunning.preview_reminders(
            invoice_id=invoice_id, db=db, settings=_settings(request), _=actor
        )
    except HTTPException:
        plan = None
    state: InvoiceState | None | Literal["unknown"] = None
    if invoice.status == "pending_approval":
        state = await _approval_state(request, invoice.workflow_id)
    customer = await db.run(lambda s: s.get(Customer, invoice.customer_id))
    return page(
        request,
        "invoice.html",
        invoice=invoice,
        plan=plan,
        state=state,
        customer=customer,
        can_act=who.principal.can_act(),
        is_open=invoice.status in OPEN,
        active_holds=[h for h in invoice.holds if h.active],
    )


@router.get("/customers")
async def customer_list(request: Request, who: User, q: str = "") -> Response:
    rows = await _db(request).run(lambda s: queries.customers(s, q[:200]))
    return page(request, "customers.html", rows=rows, q=q, can_act=who.principal.can_act())


async def _approval_state(request: Request, workflow_id: str) -> InvoiceState | None | Literal["unknown"]:
    """The approval chain's state from the workflow, or "unknown" when Temporal does not answer: the page
    says so and offers no action (it may be an approver's turn, not an operator's)."""
    try:
        return await invoice_state(request.app.state.temporal, workflow_id)
    except Unavailable:
        return "unknown"


@router.get("/approvals")
async def approvals(request: Request, who: User) -> Response:
    rows = await _db(request).run(queries.pending_approval)
    # Together, each with the link pages' short deadline: one invoice whose worker is down must not
    # hold the whole inbox for a timeout per row.
    states = await asyncio.gather(*(_approval_state(request, i.workflow_id) for i in rows))
    return page(
        request, "approvals.html", items=list(zip(rows, states, strict=True)), can_act=who.principal.can_act()
    )


@router.get("/webhooks")
async def webhooks(request: Request, who: User) -> Response:
    def tx(session: Session):  # type: ignore[no-untyped-def]
        return queries.unmatched_events(session), queries.recent_deliveries(session)

    unmatched, recent = await _db(request).run(tx)
    return page(request, "webhooks.html", unmatched=unmatched, recent=recent, can_act=who.principal.can_act())


@router.get("/accounting")
async def accounting(request: Request, who: User, reconcile: str = "") -> Response:
    def tx(session: Session):  # type: ignore[no-untyped-def]
        return queries.failed_syncs(session), queries.recent_syncs(session), queries.connections(session)

    failed, recent, connections = await _db(request).run(tx)
    differences, refused = None, ""
    if reconcile == "run":  # read-only (it compares), so a GET; it reads one invoice per provider call
        try:
            differences = await accounting_routes.reconcile_invoices(
                settings=_settings(request), _=who.principal.actor
            )
        except HTTPException as exc:
            refused = str(exc.detail)
    return page(
        request,
        "accounting.html",
        failed=failed,
        recent=recent,
        connections=connections,
        differences=differences,
        refused=refused,
        provider=_settings(request).accounting_provider,
        can_act=who.principal.can_act(),
    )
