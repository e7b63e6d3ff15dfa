"""What an operator sees coming: the reminder preview of an invoice and its holds as the API shows
them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from billing.dunning import (
    policy_from_dict,
)
from billing.status import FINAL_STATUSES
from billing.terms import due_date as compute_due_date
from billing.terms import parse_terms
from persistence.dunning.fees import late_fee_instants, late_fee_rows
from persistence.dunning.holds import active_invoice_holds
from persistence.dunning.plans import (
    _policy,
    default_offsets,
    get_policy,
    invoice_plan,
    reminder_plan,
    requested_policy,
)
from persistence.models import (
    Customer,
    DunningHold,
    Invoice,
    InvoiceEvent,
    OutboxEntry,
)
from workflows.payloads import (
    ReminderPlanStep,
    reminder_email_key,
    reminder_step_id,
)

# ---------------------------------------------------------------- preview


@dataclass(frozen=True)
class PreviewEntry:
    step: ReminderPlanStep
    status: str  # sent | pending | skipped | held
    local_time: datetime


@dataclass(frozen=True)
class Preview:
    source: str  # frozen | policy | default
    policy: str | None
    timezone: str
    due_date: date
    entries: list[PreviewEntry]
    held: bool
    late_fees: list[dict[str, Any]]  # sequence, assess_at, status (applied | pending | none), amount


def _outbox_status(session: Session, keys: list[str]) -> str | None:
    rows = list(session.scalars(select(OutboxEntry.status).where(OutboxEntry.key.in_(keys))))
    if any(s == "done" for s in rows):
        return "sent"
    if rows and all(s in ("skipped", "failed") for s in rows):
        return "skipped"
    if rows:
        return "sent"  # being sent right now
    return None


def preview(
    session: Session, invoice: Invoice, *, now: datetime, fallback_offsets: tuple[int, ...], send_hour: int
) -> Preview:
    """The exact reminders of an issued invoice (with what holds changed, and what went out), or, for a
    draft, what it would get if it were issued ``now``."""
    customer: Customer = invoice.customer
    zone = ZoneInfo(customer.timezone)
    if invoice.issued_at is not None and invoice.due_date is not None:
        policy = _policy(invoice.dunning_snapshot)
        source = "frozen" if policy is not None else "default"
        due = invoice.due_date
        steps = invoice_plan(invoice, fallback_offsets=fallback_offsets, send_hour=send_hour)
    else:
        name = requested_policy(invoice)
        row = get_policy(session, name) if name else None
        policy = policy_from_dict(row.definition) if row is not None else None
        source = "policy" if policy is not None else "default"
        issue_date = now.astimezone(zone).date()
        due = invoice.requested_due_date or compute_due_date(parse_terms(invoice.payment_terms), issue_date)
        steps = reminder_plan(
            policy,
            due,
            customer.timezone,
            now,
            offsets=default_offsets(invoice, fallback_offsets),
            send_hour=send_hour,
        )
    moved: dict[str, datetime] = {}
    skipped: set[str] = set()
    if invoice.issued_at is not None:
        events = session.scalars(
            select(InvoiceEvent)
            .where(
                InvoiceEvent.invoice_id == invoice.id,
                InvoiceEvent.kind.in_(("dunning.reminder_rescheduled", "dunning.reminder_skipped")),
            )
            .order_by(InvoiceEvent.id)
        )
        for event in events:
            if event.kind == "dunning.reminder_skipped":
                skipped.add(event.data["step"])
            else:
                moved[event.data["step"]] = datetime.fromisoformat(event.data["send_at"])
    held = (
        invoice.issued_at is not None
        and invoice.status not in FINAL_STATUSES
        and bool(active_invoice_holds(session, invoice, now))
    )
    entries: list[PreviewEntry] = []
    for step in steps:
        ident = reminder_step_id(step)
        if ident in moved:
            step = replace(step, send_at=moved[ident])
        status = "pending"
        if invoice.issued_at is not None:
            keys = [reminder_email_key(str(invoice.id), step, a) for a in ("client", "internal")]
            status = _outbox_status(session, keys) or ("skipped" if ident in skipped else "pending")
            if status == "pending" and (invoice.status in FINAL_STATUSES):
                status = "skipped"
            elif status == "pending" and held:
                status = "held"
        entries.append(PreviewEntry(step=step, status=status, local_time=step.send_at.astimezone(zone)))
    entries.sort(key=lambda e: e.step.send_at)
    name = (
        (invoice.dunning_snapshot or {}).get("name")
        if source == "frozen"
        else (requested_policy(invoice) if source == "policy" else None)
    )
    fees: list[dict[str, Any]] = []
    if invoice.issued_at is not None:
        charged = {row.sequence: row for row in late_fee_rows(session, invoice.id)}
        for sequence, at in enumerate(late_fee_instants(invoice), start=1):
            charge = charged.get(sequence)
            pending = at > now and invoice.status not in FINAL_STATUSES
            fees.append(
                {
                    "sequence": sequence,
                    "assess_at": at,
                    "status": "applied" if charge else ("pending" if pending else "none"),
                    "amount": str(charge.amount) if charge else None,
                }
            )
    return Preview(
        source=source,
        policy=name,
        timezone=customer.timezone,
        due_date=due,
        entries=entries,
        held=held,
        late_fees=fees,
    )


def hold_out(row: DunningHold, now: datetime) -> dict[str, Any]:
    """A hold as the API shows it (``HoldOut``)."""
    active = row.released_at is None and (row.resume_at is None or row.resume_at > now)
    return {
        "id": row.id,
        "kind": row.kind,
        "reason": row.reason,
        "scope": "customer" if row.customer_id else "invoice",
        "started_at": row.started_at,
        "resume_at": row.resume_at,
        "released_at": row.released_at,
        "released_by": row.released_by,
        "active": active,
    }


def holds_out(session: Session, invoice: Invoice, now: datetime | None = None) -> list[dict[str, Any]]:
    """The invoice's own holds and its customer's holds since it was issued (or still active)."""
    now = now or datetime.now(UTC)
    rows = session.scalars(
        select(DunningHold)
        .where(or_(DunningHold.invoice_id == invoice.id, DunningHold.customer_id == invoice.customer_id))
        .order_by(DunningHold.started_at, DunningHold.id)
    )
    since = invoice.issued_at
    return [
        hold_out(row, now)
        for row in rows
        if row.invoice_id == invoice.id
        or since is None
        or row.released_at is None
        or row.released_at >= since
    ]
