"""Late fees on the database: when they are assessed and charging each one once."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.dunning import (
    late_fees,
)
from billing.money import quantize
from billing.status import FINAL_STATUSES
from persistence.dunning.plans import _policy, resume_instant
from persistence.invoice_rows import add_event, get_invoice, line_input, replace_lines
from persistence.models import (
    Invoice,
    LateFeeCharge,
)
from workflows.payloads import (
    LateFeeOutcome,
    LateFeeRequest,
)

# ---------------------------------------------------------------- late fees

#: Late fee applications planned per invoice at most (a compounding fee is charged on, within a year).
MAX_PLANNED_FEES = 13


def late_fee_instants(invoice: Invoice) -> list[datetime]:
    """When the frozen policy's late fee is assessed: the start of each assessment day on the client's
    clock (``after_days`` after the due date, then every ``period_days`` if it compounds), at most
    ``MAX_PLANNED_FEES`` of them within a year of the due date."""
    policy = _policy(invoice.dunning_snapshot)
    if policy is None or policy.late_fee is None or invoice.due_date is None:
        return []
    fee = policy.late_fee
    days = [
        invoice.due_date + timedelta(days=fee.after_days + n * fee.period_days)
        for n in range(min(fee.limit, MAX_PLANNED_FEES))
    ]
    horizon = invoice.due_date + timedelta(days=365)
    return [resume_instant(day, invoice.customer.timezone) for day in days if day <= horizon]


def late_fee_rows(session: Session, invoice_id: uuid.UUID) -> list[LateFeeCharge]:
    return list(
        session.scalars(
            select(LateFeeCharge)
            .where(LateFeeCharge.invoice_id == invoice_id)
            .order_by(LateFeeCharge.sequence)
        )
    )


def apply_late_fee(session: Session, request: LateFeeRequest) -> LateFeeOutcome:
    """Charge the ``sequence``-th late fee once: a ``late_fee_charges`` row (unique per invoice and
    sequence) and a "Late fee" line, so the total and the amount due grow. A retry finds the row."""
    from billing.status import settle_status
    from billing.totals import LineInput

    invoice = get_invoice(session, uuid.UUID(request.invoice_id), lock=True)
    rows = late_fee_rows(session, invoice.id)

    def outcome(applied: bool, amount: Decimal = Decimal(0), detail: str = "") -> LateFeeOutcome:
        return LateFeeOutcome(
            applied=applied,
            sequence=request.sequence,
            amount=str(amount),
            total=str(invoice.total),
            amount_due=str(invoice.amount_due),
            status=invoice.status,
            detail=detail,
        )

    done = next((r for r in rows if r.sequence == request.sequence), None)
    if done is not None:
        return outcome(True, done.amount, "already charged")
    policy = _policy(invoice.dunning_snapshot)
    if policy is None or policy.late_fee is None or invoice.due_date is None:
        return outcome(False, detail="no late fee in the invoice's policy")
    if invoice.status in FINAL_STATUSES:
        return outcome(False, detail=f"invoice is {invoice.status}")
    charged = sum((r.amount for r in rows), Decimal(0))
    principal = max(invoice.total - charged - invoice.amount_paid - invoice.amount_credited, Decimal(0))
    principal = quantize(principal, invoice.currency)  # exactly the currency's minor units
    assessed_on = invoice.due_date + timedelta(
        days=policy.late_fee.after_days + (request.sequence - 1) * policy.late_fee.period_days
    )
    due_now = late_fees(
        policy.late_fee,
        principal,
        invoice.currency,
        invoice.due_date,
        assessed_on,
        len(rows),
        applied_total=quantize(charged, invoice.currency),
    )
    charge = next((c for c in due_now if c.sequence == request.sequence), None)
    if charge is None:
        return outcome(False, detail="nothing to charge (no principal outstanding, or not due)")
    session.add(
        LateFeeCharge(
            invoice_id=invoice.id,
            sequence=charge.sequence,
            assessed_on=charge.assessed_on,
            base=charge.base,
            amount=charge.amount,
            currency=charge.currency,
        )
    )
    lines = [line_input(line) for line in invoice.lines]
    label = (
        f"Late fee ({policy.late_fee.value.normalize():f}%)"
        if policy.late_fee.kind == "percent"
        else "Late fee"
    )
    lines.append(
        LineInput(
            description=f"{label}, {charge.assessed_on.isoformat()}",
            quantity=Decimal(1),
            unit_price=charge.amount,
        )
    )
    totals = replace_lines(session, invoice, lines)
    status = settle_status(
        total=invoice.total,
        amount_paid=invoice.amount_paid,
        past_due=request.past_due,
        amount_credited=invoice.amount_credited,
    )
    invoice.status = str(status)
    session.flush()
    add_event(
        session,
        invoice.id,
        "late_fee.applied",
        actor="workflow",
        data={
            "sequence": str(charge.sequence),
            "amount": str(charge.amount),
            "assessed_on": charge.assessed_on.isoformat(),
            "base": "" if charge.base is None else str(charge.base),
            "total": str(totals.total),
            "amount_due": str(invoice.amount_due),
        },
        dedupe_key=f"invoice:{invoice.id}:late_fee:{charge.sequence}",
    )
    return outcome(True, charge.amount)
