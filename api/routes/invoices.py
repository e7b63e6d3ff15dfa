"""Invoices: manual creation (one of the six triggers), reading, payments, void and write-off.

Creation commits the draft first, then starts its workflow before answering. The workflow id is derived
from the invoice id and started with ``REJECT_DUPLICATE``/``USE_EXISTING``, so repeating a request (same
``Idempotency-Key``) after any crash converges on one invoice and one workflow.

Reads come from PostgreSQL (a consistent projection that activities keep current); state changes go
through workflow Updates so the workflow validates them against its own state.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from accounting.tax_check import UnmappedTaxRate, check_tax_rates
from api.deps import DbDep, Operator, SettingsDep, TemporalDep
from api.routes.credit_note_views import credit_notes_out, refunds_out
from api.schemas import (
    AccountingOut,
    ApprovalDecisionCreate,
    ApproveCreate,
    DraftEdit,
    EventOut,
    HoldOut,
    InvoiceCreate,
    InvoiceOut,
    InvoicePage,
    LineOut,
    PaymentCreate,
    PaymentOut,
    PaymentResult,
    UncollectibleCreate,
    VoidCreate,
)
from billing.errors import MoneyError
from billing.money import require_minor_units
from billing.status import InvoiceStatus
from billing.totals import LineInput
from persistence import dunning
from persistence import invoices as repo
from persistence.models import AccountingSync, Customer, Document, IdempotencyRecord, Invoice, Payment
from workflows import search_attributes as sa
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import (
    ApproveInput,
    DecisionInput,
    DraftChanges,
    InvoiceWorkflowInput,
    PaymentInput,
    SubmitInput,
    TermsLine,
    UncollectibleInput,
    VoidInput,
)

router = APIRouter(prefix="/invoices", tags=["invoices"])

IDEMPOTENCY_SCOPE = "invoices.create"


def _s(value: Any) -> str:
    return str(value)


def invoice_out(invoice: Invoice, *, detail: bool) -> InvoiceOut:
    out = InvoiceOut(
        id=invoice.id,
        workflow_id=invoice.workflow_id,
        customer_id=invoice.customer_id,
        status=invoice.status,
        number=invoice.number,
        currency=invoice.currency,
        payment_terms=invoice.payment_terms,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        subtotal=_s(invoice.subtotal),
        discount_total=_s(invoice.discount_total),
        tax_total=_s(invoice.tax_total),
        total=_s(invoice.total),
        amount_paid=_s(invoice.amount_paid),
        amount_due=_s(invoice.amount_due),
        credit=_s(invoice.credit_amount),
        amount_credited=_s(invoice.amount_credited),
        notes=invoice.notes,
        pdf_url=f"/invoices/{invoice.id}/pdf" if invoice.pdf_key else None,
        created_at=invoice.created_at,
        dunning_policy=(invoice.dunning_snapshot or {}).get("name")
        if invoice.issued_at
        else dunning.requested_policy(invoice),
    )
    if detail:
        out.lines = [
            LineOut(
                description=line.description,
                quantity=_s(line.quantity),
                unit_price=_s(line.unit_price),
                discount_percent=_s(line.discount_percent),
                discount_amount=_s(line.discount_amount),
                tax_rate=_s(line.tax_rate),
                gross=_s(line.gross),
                discount=_s(line.discount),
                net=_s(line.net),
            )
            for line in invoice.lines
        ]
        out.payments = [
            PaymentOut(
                id=p.id,
                amount=_s(p.amount),
                currency=p.currency,
                method=p.method,
                reference=p.reference,
                received_at=p.received_at,
            )
            for p in invoice.payments
        ]
    return out


def _fingerprint(body: InvoiceCreate) -> str:
    return hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


async def _start_workflow(
    temporal: TemporalDep, settings: SettingsDep, invoice: InvoiceOut, customer_name: str
) -> None:
    try:
        await temporal.start_workflow(
            InvoiceWorkflow.run,
            InvoiceWorkflowInput(
                invoice_id=str(invoice.id), customer_id=str(invoice.customer_id), currency=invoice.currency
            ),
            id=invoice.workflow_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.INVOICE_STATUS, str(InvoiceStatus.DRAFT)),
                    SearchAttributePair(sa.CUSTOMER_ID, str(invoice.customer_id)),
                    SearchAttributePair(sa.CURRENCY, invoice.currency),
                    SearchAttributePair(sa.AMOUNT_DUE, float(invoice.amount_due)),
                ]
            ),
            memo={"customer_name": customer_name, "total": f"{invoice.total} {invoice.currency}"},
            static_summary=f"Invoice for {customer_name}: {invoice.total} {invoice.currency}",
        )
    except WorkflowAlreadyStartedError:
        pass  # a repeat of a request whose workflow already ran to completion: nothing to start
    except RPCError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"invoice {invoice.id} is saved as a draft but its workflow could not start ({exc.message}); "
            "repeat the request with the same Idempotency-Key to retry",
        ) from exc


@router.post("", status_code=status.HTTP_201_CREATED, response_model=InvoiceOut)
async def create_invoice(
    body: InvoiceCreate,
    response: Response,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    _: Operator,
    idempotency_key: str | None = Header(default=None, max_length=200),
) -> InvoiceOut:
    fingerprint = _fingerprint(body)

    def replay(session: Session) -> tuple[InvoiceOut, str] | None:
        record = session.scalars(
            select(IdempotencyRecord).where(
                IdempotencyRecord.scope == IDEMPOTENCY_SCOPE, IdempotencyRecord.key == idempotency_key
            )
        ).one_or_none()
        if record is None:
            return None
        if record.request_hash != fingerprint:
            raise HTTPException(
                422,
                detail="Idempotency-Key was already used with a different request body",
            )
        invoice = repo.get_invoice(session, uuid.UUID(record.response["id"]))
        return invoice_out(invoice, detail=True), invoice.customer.name

    def create(session: Session) -> tuple[InvoiceOut, str]:
        customer = session.get(Customer, body.customer_id)
        if customer is None:
            raise HTTPException(
                422,
                detail=[
                    {
                        "loc": ["body", "customer_id"],
                        "msg": f"customer {body.customer_id} does not exist",
                        "type": "value_error",
                    }
                ],
            )
        currency = body.currency or customer.currency
        if body.dunning_policy is not None and dunning.get_policy(session, body.dunning_policy) is None:
            raise HTTPException(
                422,
                detail=[
                    {
                        "loc": ["body", "dunning_policy"],
                        "msg": f"dunning policy {body.dunning_policy!r} does not exist",
                        "type": "value_error",
                    }
                ],
            )
        try:
            check_tax_rates(session, settings, [line.tax_rate for line in body.lines])
        except UnmappedTaxRate as exc:
            raise HTTPException(
                422,
                detail=[
                    {"loc": ["body", "lines", exc.index, "tax_rate"], "msg": str(exc), "type": "value_error"}
                ],
            ) from None
        new = repo.NewInvoice(
            customer=customer,
            currency=currency,
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
            payment_terms=body.payment_terms or customer.payment_terms,
            due_date=body.due_date,
            notes=body.notes,
            source="api",
            reminder_offsets=body.reminder_offsets,
            dunning_policy=body.dunning_policy,
        )
        invoice = repo.create_invoice(session, new)
        out = invoice_out(invoice, detail=True)
        if idempotency_key is not None:
            session.add(
                IdempotencyRecord(
                    scope=IDEMPOTENCY_SCOPE,
                    key=idempotency_key,
                    request_hash=fingerprint,
                    status_code=201,
                    response={"id": str(invoice.id)},
                )
            )
            session.flush()
        return out, customer.name

    found = await db.run(replay) if idempotency_key is not None else None
    replayed = found is not None
    if found is None:
        try:
            found = await db.run(create)
        except IntegrityError:
            # A concurrent request with the same key won the race: answer as it did.
            found = await db.run(replay) if idempotency_key is not None else None
            if found is None:
                raise
            replayed = True
    if idempotency_key is not None:
        response.headers["Idempotent-Replayed"] = "true" if replayed else "false"
    out, customer_name = found
    await _start_workflow(temporal, settings, out, customer_name)
    return out


@router.get("", response_model=InvoicePage)
async def list_invoices(
    db: DbDep,
    _: Operator,
    status_: InvoiceStatus | None = Query(default=None, alias="status"),
    customer_id: uuid.UUID | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
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


async def _load(db: DbDep, invoice_id: uuid.UUID) -> InvoiceOut:
    def tx(session: Session) -> InvoiceOut:
        invoice = repo.get_invoice(session, invoice_id)
        out = invoice_out(invoice, detail=True)
        out.timeline = [
            EventOut(at=e.at, actor=e.actor, kind=e.kind, data=e.data)
            for e in repo.timeline(session, invoice_id)
        ]
        out.credit_notes = credit_notes_out(session, invoice_id)
        out.refunds = refunds_out(session, invoice_id)
        out.holds = [HoldOut(**hold) for hold in dunning.holds_out(session, invoice)]
        sync = session.scalars(
            select(AccountingSync)
            .where(AccountingSync.kind == "invoice", AccountingSync.invoice_id == invoice_id)
            .order_by(AccountingSync.updated_at.desc())
        ).first()
        if sync is not None:
            out.accounting = AccountingOut(
                provider=sync.provider,
                status=sync.status,
                external_id=sync.external_id,
                error=sync.last_error,
                synced_at=sync.synced_at,
            )
        return out

    try:
        return await db.run(tx)
    except repo.InvoiceNotFound:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"invoice {invoice_id} does not exist"
        ) from None


@router.get("/{invoice_id}", response_model=InvoiceOut)
async def get_invoice(invoice_id: uuid.UUID, db: DbDep, _: Operator) -> InvoiceOut:
    return await _load(db, invoice_id)


@router.post(
    "/{invoice_id}/accounting/retry", response_model=InvoiceOut, status_code=status.HTTP_202_ACCEPTED
)
async def retry_accounting(
    invoice_id: uuid.UUID, db: DbDep, temporal: TemporalDep, _: Operator
) -> InvoiceOut:
    """After fixing what the accounting system refused (an account or tax code), sync again."""
    invoice = await _load(db, invoice_id)
    try:
        await temporal.get_workflow_handle(invoice.workflow_id).signal(InvoiceWorkflow.retry_accounting)
    except RPCError as exc:
        raise update_error(exc) from exc
    return invoice


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


def update_error(exc: Exception) -> HTTPException:
    """A refused Update (validator) or a finished workflow: the request conflicts with the invoice's state."""
    if isinstance(exc, WorkflowUpdateFailedError):
        cause = exc.cause
        message = getattr(cause, "message", None) or str(cause)
        return HTTPException(status.HTTP_409_CONFLICT, detail=message)
    if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
        return HTTPException(
            status.HTTP_409_CONFLICT, detail="the invoice's workflow has finished; it takes no more changes"
        )
    raise exc


@router.post("/{invoice_id}/payments", status_code=status.HTTP_201_CREATED, response_model=PaymentResult)
async def record_payment(
    invoice_id: uuid.UUID,
    body: PaymentCreate,
    response: Response,
    db: DbDep,
    temporal: TemporalDep,
    _: Operator,
    idempotency_key: str | None = Header(default=None, max_length=200),
) -> PaymentResult:
    """Record a bank transfer or other payment. Send an ``Idempotency-Key`` (e.g. the bank reference) so
    a repeated request records the payment once; without one every request is a new payment."""
    key = f"api:{idempotency_key}" if idempotency_key else f"api:{uuid.uuid4()}"
    invoice = await _load(db, invoice_id)
    try:
        require_minor_units(body.amount, invoice.currency, field="amount")
    except MoneyError as exc:
        raise HTTPException(
            422, detail=[{"loc": ["body", "amount"], "msg": str(exc), "type": "value_error"}]
        ) from None
    if body.amount <= 0:
        raise HTTPException(
            422,
            detail=[
                {"loc": ["body", "amount"], "msg": "amount: must be greater than 0", "type": "value_error"}
            ],
        )
    if body.currency is not None and body.currency != invoice.currency:
        raise HTTPException(
            422,
            detail=[
                {
                    "loc": ["body", "currency"],
                    "msg": f"the invoice is in {invoice.currency}, not {body.currency}",
                    "type": "value_error",
                }
            ],
        )
    if body.received_at is not None and body.received_at.tzinfo is None:
        raise HTTPException(
            422,
            detail=[
                {
                    "loc": ["body", "received_at"],
                    "msg": "received_at needs a timezone, e.g. 2026-11-25T10:00:00Z",
                    "type": "value_error",
                }
            ],
        )

    def existing(session: Session) -> Payment | None:
        return session.scalars(select(Payment).where(Payment.idempotency_key == key)).one_or_none()

    prior = await db.run(existing)
    if prior is not None:
        if prior.invoice_id != invoice_id:
            raise HTTPException(
                status.HTTP_409_CONFLICT, detail="this Idempotency-Key recorded a payment on another invoice"
            )
        current = await _load(db, invoice_id)
        response.status_code = status.HTTP_200_OK
        return PaymentResult(
            payment_id=prior.id,
            duplicate=True,
            status=current.status,
            amount_paid=current.amount_paid,
            amount_due=current.amount_due,
            credit=current.credit,
        )
    handle = temporal.get_workflow_handle(invoice.workflow_id)
    try:
        outcome = await handle.execute_update(
            InvoiceWorkflow.record_payment,
            PaymentInput(
                amount=str(body.amount),
                idempotency_key=key,
                method=body.method,
                reference=body.reference,
                currency=body.currency,
                received_at=body.received_at,
                actor="api",
            ),
        )
    except (WorkflowUpdateFailedError, RPCError) as exc:
        raise update_error(exc) from exc
    if outcome.duplicate:
        response.status_code = status.HTTP_200_OK
    return PaymentResult(
        payment_id=uuid.UUID(outcome.payment_id),
        duplicate=outcome.duplicate,
        status=outcome.status,
        amount_paid=outcome.amount_paid,
        amount_due=outcome.amount_due,
        credit=outcome.credit,
    )


async def run_update(temporal: TemporalDep, workflow_id: str, update: Any, arg: Any = None) -> Any:
    """Send a workflow Update; a refusal (validator) or a finished workflow becomes a 409."""
    handle = temporal.get_workflow_handle(workflow_id)
    try:
        return await (handle.execute_update(update) if arg is None else handle.execute_update(update, arg))
    except (WorkflowUpdateFailedError, RPCError) as exc:
        raise update_error(exc) from exc


@router.post("/{invoice_id}/void", response_model=InvoiceOut)
async def void_invoice(
    invoice_id: uuid.UUID, body: VoidCreate, db: DbDep, temporal: TemporalDep, _: Operator
) -> InvoiceOut:
    invoice = await _load(db, invoice_id)
    await run_update(
        temporal, invoice.workflow_id, InvoiceWorkflow.void, VoidInput(reason=body.reason, actor="api")
    )
    return await _load(db, invoice_id)


@router.post("/{invoice_id}/uncollectible", response_model=InvoiceOut)
async def mark_uncollectible(
    invoice_id: uuid.UUID, body: UncollectibleCreate, db: DbDep, temporal: TemporalDep, _: Operator
) -> InvoiceOut:
    invoice = await _load(db, invoice_id)
    await run_update(
        temporal,
        invoice.workflow_id,
        InvoiceWorkflow.mark_uncollectible,
        UncollectibleInput(reason=body.reason, actor="api"),
    )
    return await _load(db, invoice_id)


@router.post("/{invoice_id}/approve", response_model=InvoiceOut)
async def approve_invoice(
    invoice_id: uuid.UUID, body: ApproveCreate, db: DbDep, temporal: TemporalDep, operator: Operator
) -> InvoiceOut:
    """Operator approval of an invoice waiting in ``pending_approval`` (e.g. a subscription cycle that
    is not auto-sent): it is issued and sent at once."""
    invoice = await _load(db, invoice_id)
    await run_update(
        temporal,
        invoice.workflow_id,
        InvoiceWorkflow.approve,
        ApproveInput(actor=operator, comment=body.comment),
    )
    return await _load(db, invoice_id)


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
    invoice = await _load(db, invoice_id)
    await run_update(
        temporal,
        invoice.workflow_id,
        InvoiceWorkflow.decide,
        DecisionInput(
            approver=str(body.approver),
            decision=body.decision,
            comment=body.comment,
            via="api",
            ip=request.client.host if request.client else "",
            user_agent=request.headers.get("user-agent", "")[:300],
        ),
    )
    return await _load(db, invoice_id)


@router.patch("/{invoice_id}", response_model=InvoiceOut)
async def edit_draft(
    invoice_id: uuid.UUID, body: DraftEdit, db: DbDep, temporal: TemporalDep, _: Operator
) -> InvoiceOut:
    """Edit a rejected draft (lines, notes, due date). Every approval link issued before is superseded."""
    invoice = await _load(db, invoice_id)
    lines = None
    if body.lines is not None:
        lines = [
            TermsLine(**{k: str(v) for k, v in line.model_dump(mode="json").items()}) for line in body.lines
        ]
    changes = DraftChanges(
        lines=lines,
        notes=body.notes,
        due_date=body.due_date.isoformat() if body.due_date else None,
        actor="api",
    )
    await run_update(temporal, invoice.workflow_id, InvoiceWorkflow.edit_draft, changes)
    return await _load(db, invoice_id)


@router.post("/{invoice_id}/submit", response_model=InvoiceOut)
async def submit(invoice_id: uuid.UUID, db: DbDep, temporal: TemporalDep, operator: Operator) -> InvoiceOut:
    """Send a rejected (and usually edited) draft through approval again."""
    invoice = await _load(db, invoice_id)
    await run_update(temporal, invoice.workflow_id, InvoiceWorkflow.submit, SubmitInput(actor=operator))
    return await _load(db, invoice_id)
