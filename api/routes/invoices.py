"""Invoices: manual creation (one of the six triggers), reading, payments, void and write-off.

Reads come from PostgreSQL (a consistent projection that activities keep current); every change is a use
case of ``services.invoices`` / ``services.payments``, which go through the invoice's workflow.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.service import RPCError

from accounting.tax_check import UnmappedTaxRate, check_tax_rates
from api.activity_problems import failing_activities, retry_now
from api.deps import DbDep, Operator, SettingsDep, TemporalDep
from api.einvoice_fields import check_invoice, line_extras
from api.errors import unprocessable
from api.schemas import (
    ActivityProblemOut,
    ApprovalDecisionCreate,
    ApproveCreate,
    DraftEdit,
    InvoiceCreate,
    InvoiceOut,
    InvoicePage,
    PaymentCreate,
    PaymentResult,
    ResendCreate,
    UncollectibleCreate,
    VoidCreate,
)
from api.validation import MAX_PAGE_OFFSET
from api.views.invoices import invoice_out, load_invoice
from billing.status import InvoiceStatus
from billing.totals import LineInput
from persistence.models import Customer, Document, Invoice
from services import invoices, payments
from services.idempotency import fingerprint
from services.invoices import InvoiceDraft
from services.payments import PaymentRequest
from workflows.payloads import (
    DecisionInput,
    DraftChanges,
    TermsLine,
)

router = APIRouter(prefix="/invoices", tags=["invoices"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=InvoiceOut)
async def create_invoice(
    body: InvoiceCreate,
    response: Response,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    operator: Operator,
    idempotency_key: str | None = Header(default=None, max_length=200),
) -> InvoiceOut:
    draft = InvoiceDraft(
        customer_id=body.customer_id,
        currency=body.currency,
        lines=[
            LineInput(
                description=line.description,
                quantity=line.quantity,
                unit_price=line.unit_price,
                discount_percent=line.discount_percent,
                discount_amount=line.discount_amount,
                tax_rate=line.tax_rate,
            )
            for line in body.lines
        ],
        payment_terms=body.payment_terms,
        due_date=body.due_date,
        notes=body.notes,
        reminder_offsets=body.reminder_offsets,
        dunning_policy=body.dunning_policy,
        actor=None if operator == "operator" else operator,
        line_extras=line_extras(body),
        references={
            "purchase_order": body.purchase_order,
            "contract_ref": body.contract_ref,
            "project_ref": body.project_ref,
            "period_start": body.period_start,
            "period_end": body.period_end,
        },
    )

    def refused_before_writing(session: Session) -> None:
        """What can be refused now, before anything is written: a tax rate the books have no code for,
        and what the e-invoice rules need (BT/BR named)."""
        try:
            check_tax_rates(session, settings, [line.tax_rate for line in body.lines])
        except UnmappedTaxRate as exc:
            raise unprocessable(["body", "lines", exc.index, "tax_rate"], str(exc)) from None
        customer = session.get(Customer, body.customer_id)
        if customer is not None:
            check_invoice(customer, body, body.currency or customer.currency)

    await db.run(refused_before_writing)
    created = await invoices.create_invoice(
        db, temporal, settings, draft, idempotency_key=idempotency_key, fingerprint=fingerprint(body)
    )
    if idempotency_key is not None:
        response.headers["Idempotent-Replayed"] = "true" if created.replayed else "false"
    return await load_invoice(db, created.invoice_id)


@router.get("", response_model=InvoicePage)
async def list_invoices(
    db: DbDep,
    _: Operator,
    status_: InvoiceStatus | None = Query(default=None, alias="status"),
    customer_id: uuid.UUID | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_PAGE_OFFSET),
) -> InvoicePage:
    def tx(session: Session) -> InvoicePage:
        stmt = select(Invoice).order_by(Invoice.created_at.desc(), Invoice.id)
        if status_ is not None:
            stmt = stmt.where(Invoice.status == str(status_))
        if customer_id is not None:
            stmt = stmt.where(Invoice.customer_id == customer_id)
        rows = session.scalars(stmt.limit(limit).offset(offset)).unique()
        return InvoicePage(items=[invoice_out(i, detail=False) for i in rows], limit=limit, offset=offset)

    return await db.run(tx)


@router.get("/{invoice_id}", response_model=InvoiceOut)
async def get_invoice(invoice_id: uuid.UUID, db: DbDep, temporal: TemporalDep, _: Operator) -> InvoiceOut:
    invoice = await load_invoice(db, invoice_id)
    invoice.problems = await problems_out(temporal, invoice)
    return invoice


async def problems_out(temporal: TemporalDep, invoice: InvoiceOut) -> list[ActivityProblemOut]:
    """Failing workflow steps (Temporal's pending activities with an error), with the retry action."""
    retry = f"POST /invoices/{invoice.id}/activities/retry"
    found = await failing_activities(temporal, invoice.workflow_id)
    return [ActivityProblemOut(**{**asdict(p), "retry": retry}) for p in found]


@router.post(
    "/{invoice_id}/activities/retry", response_model=InvoiceOut, status_code=status.HTTP_202_ACCEPTED
)
async def retry_activities(
    invoice_id: uuid.UUID, db: DbDep, temporal: TemporalDep, _: Operator
) -> InvoiceOut:
    """After fixing what made a workflow step fail (data, a template, a bug), run it again now
    instead of after its backoff. 409 when no step of this invoice is failing."""
    invoice = await load_invoice(db, invoice_id)
    try:
        reset = await retry_now(temporal, invoice.workflow_id)
    except RPCError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"Temporal refused the retry: {exc.message}"
        ) from exc
    if not reset:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="no step of this invoice is failing")
    return invoice


@router.post(
    "/{invoice_id}/accounting/retry", response_model=InvoiceOut, status_code=status.HTTP_202_ACCEPTED
)
async def retry_accounting(
    invoice_id: uuid.UUID, db: DbDep, temporal: TemporalDep, _: Operator
) -> InvoiceOut:
    """After fixing what the accounting system refused (an account or tax code), sync again."""
    await invoices.retry_accounting(db, temporal, invoice_id)
    return await load_invoice(db, invoice_id)


@router.get(
    "/{invoice_id}/pdf", response_class=Response, responses={200: {"content": {"application/pdf": {}}}}
)
async def get_invoice_pdf(invoice_id: uuid.UUID, db: DbDep, _: Operator) -> Response:
    def tx(session: Session) -> tuple[bytes, str] | None:
        invoice = session.get(Invoice, invoice_id)
        if invoice is None or invoice.pdf_key is None:
            return None
        document = session.get(Document, invoice.pdf_key)
        return (document.content, invoice.number or "invoice") if document else None

    found = await db.run(tx)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail="no PDF yet: the invoice is not issued or not rendered"
        )
    content, number = found
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{number}.pdf"'},
    )


@router.post("/{invoice_id}/payments", status_code=status.HTTP_201_CREATED, response_model=PaymentResult)
async def record_payment(
    invoice_id: uuid.UUID,
    body: PaymentCreate,
    response: Response,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    operator: Operator,
    idempotency_key: str | None = Header(default=None, max_length=200),
) -> PaymentResult:
    """Record a bank transfer or other payment. Send an ``Idempotency-Key`` (e.g. the bank reference) so
    a repeated request records the payment once; without one every request is a new payment."""
    key = f"api:{idempotency_key}" if idempotency_key else f"api:{uuid.uuid4()}"
    recorded = await payments.record_payment(
        db,
        temporal,
        invoice_id,
        PaymentRequest(
            amount=body.amount,
            idempotency_key=key,
            method=body.method,
            reference=body.reference,
            currency=body.currency,
            received_at=body.received_at,
            actor=operator,
        ),
        max_amount=settings.max_amount,
    )
    if recorded.duplicate:
        response.status_code = status.HTTP_200_OK
    return PaymentResult(**asdict(recorded))


@router.post("/{invoice_id}/void", response_model=InvoiceOut)
async def void_invoice(
    invoice_id: uuid.UUID, body: VoidCreate, db: DbDep, temporal: TemporalDep, operator: Operator
) -> InvoiceOut:
    await invoices.void(db, temporal, invoice_id, reason=body.reason, actor=operator)
    return await load_invoice(db, invoice_id)


@router.post("/{invoice_id}/resend", response_model=InvoiceOut)
async def resend_invoice(
    invoice_id: uuid.UUID,
    db: DbDep,
    temporal: TemporalDep,
    operator: Operator,
    body: ResendCreate | None = None,
    idempotency_key: str | None = Header(default=None, max_length=200),
) -> InvoiceOut:
    """Send the invoice email (PDF, e-invoice) to the client again, e.g. when they say it never arrived.
    Only an open, overdue or partially paid invoice; 409 with the workflow's reason otherwise. Send an
    ``Idempotency-Key`` so a repeated request sends one email; without one every request is a resend."""
    await invoices.resend(
        db,
        temporal,
        invoice_id,
        idempotency_key=idempotency_key or str(uuid.uuid4()),
        actor=operator,
        reason=body.reason if body else "",
    )
    return await load_invoice(db, invoice_id)


@router.post("/{invoice_id}/uncollectible", response_model=InvoiceOut)
async def mark_uncollectible(
    invoice_id: uuid.UUID, body: UncollectibleCreate, db: DbDep, temporal: TemporalDep, operator: Operator
) -> InvoiceOut:
    await invoices.write_off(db, temporal, invoice_id, reason=body.reason, actor=operator)
    return await load_invoice(db, invoice_id)


@router.post("/{invoice_id}/approve", response_model=InvoiceOut)
async def approve_invoice(
    invoice_id: uuid.UUID, body: ApproveCreate, db: DbDep, temporal: TemporalDep, operator: Operator
) -> InvoiceOut:
    """Operator approval of an invoice waiting in ``pending_approval`` (e.g. a subscription cycle that
    is not auto-sent): it is issued and sent at once."""
    await invoices.approve(db, temporal, invoice_id, actor=operator, comment=body.comment)
    return await load_invoice(db, invoice_id)


@router.post("/{invoice_id}/decisions", response_model=InvoiceOut)
async def decide(
    invoice_id: uuid.UUID,
    body: ApprovalDecisionCreate,
    request: Request,
    db: DbDep,
    temporal: TemporalDep,
    _: Operator,
) -> InvoiceOut:
    """An approver's decision entered by an operator (the signed-link page is the usual way). The
    workflow refuses a wrong approver, a step already decided, or a rejection without a reason."""
    decision = DecisionInput(
        approver=str(body.approver),
        decision=body.decision,
        comment=body.comment,
        via="api",
        ip=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", "")[:300],
    )
    await invoices.decide(db, temporal, invoice_id, decision)
    return await load_invoice(db, invoice_id)


@router.patch("/{invoice_id}", response_model=InvoiceOut)
async def edit_draft(
    invoice_id: uuid.UUID, body: DraftEdit, db: DbDep, temporal: TemporalDep, operator: Operator
) -> InvoiceOut:
    """Edit a rejected draft (lines, notes, due date). Every approval link issued before is superseded."""
    lines = None
    if body.lines is not None:
        lines = [
            TermsLine(**{k: str(v) for k, v in line.model_dump(mode="json").items()}) for line in body.lines
        ]
    changes = DraftChanges(
        lines=lines,
        notes=body.notes,
        due_date=body.due_date.isoformat() if body.due_date else None,
        actor=operator,
    )
    await invoices.edit_draft(db, temporal, invoice_id, changes)
    return await load_invoice(db, invoice_id)


@router.post("/{invoice_id}/submit", response_model=InvoiceOut)
async def submit(invoice_id: uuid.UUID, db: DbDep, temporal: TemporalDep, operator: Operator) -> InvoiceOut:
    """Send a rejected (and usually edited) draft through approval again."""
    await invoices.submit(db, temporal, invoice_id, actor=operator)
    return await load_invoice(db, invoice_id)
