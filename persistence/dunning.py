"""Dunning on the database: named policies, the plan an invoice's reminders follow, holds.

The rules themselves are pure (``billing.dunning``); this module picks the policy (invoice, then
customer, then none = the default offsets of ``billing.reminders``), freezes it on the invoice at issue,
turns schedules into the workflow's ``ReminderPlanStep`` payloads and back, records holds, and builds
the preview the API shows. The issue activity and the preview call the same ``reminder_plan`` so the
preview lists exactly what the workflow waits for.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from billing.dunning import (
    DEFAULT_SEND_WINDOW,
    DunningPolicy,
    ScheduledReminder,
    SendWindow,
    dunning_schedule,
    late_fees,
    policy_from_dict,
    reminders_after_hold,
)
from billing.money import quantize
from billing.reminders import reminder_schedule
from billing.status import FINAL_STATUSES
from billing.terms import due_date as compute_due_date
from billing.terms import parse_terms
from persistence.invoice_rows import add_event, get_invoice, line_input, replace_lines
from persistence.models import (
    Customer,
    DunningHold,
    DunningPolicyRow,
    Invoice,
    InvoiceEvent,
    LateFeeCharge,
    OutboxEntry,
)
from workflows.payloads import (
    HoldSpec,
    LateFeeOutcome,
    LateFeeRequest,
    PlaceHoldRequest,
    ReleaseHoldsRequest,
    ReleasePlan,
    ReminderPlanStep,
    reminder_email_key,
    reminder_step_id,
)


def get_policy(session: Session, name: str) -> DunningPolicyRow | None:
    return session.scalars(select(DunningPolicyRow).where(DunningPolicyRow.name == name)).one_or_none()


def requested_policy(invoice: Invoice) -> str | None:
    """The invoice's own policy wins over its customer's; None: the default offsets."""
    return invoice.dunning_policy or invoice.customer.dunning_policy


def freeze_policy(session: Session, invoice: Invoice) -> None:
    """Copy the policy onto the invoice (called in the issuing transaction, once)."""
    if invoice.dunning_snapshot is not None:
        return
    name = requested_policy(invoice)
    if name is None:
        return
    row = get_policy(session, name)
    if row is None:  # the foreign keys make this unreachable; be explicit anyway
        raise LookupError(f"dunning policy {name!r} does not exist")
    invoice.dunning_snapshot = dict(row.definition)


def _legacy_window(send_hour: int) -> SendWindow:
    """Holds re-time reminders into a window; invoices without a policy use one that opens at the
    configured reminder hour (eight hours long, weekdays)."""
    if send_hour == DEFAULT_SEND_WINDOW.start.hour:
        return DEFAULT_SEND_WINDOW
    return SendWindow(time(send_hour), time(send_hour + 8) if send_hour <= 15 else time(23, 59))


def _policy(snapshot: dict[str, Any] | None) -> DunningPolicy | None:
    return None if snapshot is None else policy_from_dict(snapshot)


def plan_steps(schedule: list[ScheduledReminder]) -> list[ReminderPlanStep]:
    return [
        ReminderPlanStep(
            kind="escalation" if r.kind == "escalation" else "reminder",
            offset_days=r.offset_days,
            send_at=r.send_at,
            template=r.template,
            tone=r.tone,
            recipients=list(r.recipients),
            step_index=r.step_index,
            merged=list(r.merged),
            local_date=r.local_date.isoformat(),
        )
        for r in schedule
    ]


def reminder_plan(
    policy: DunningPolicy | None,
    due: date,
    timezone: str,
    issued_at: datetime,
    *,
    offsets: list[int] | tuple[int, ...],
    send_hour: int,
) -> list[ReminderPlanStep]:
    """The reminders an invoice gets: the policy's schedule (send window, collisions, escalation), or,
    without a policy, today's offsets at the send hour (old keys and behaviour unchanged)."""
    if policy is not None:
        return plan_steps(dunning_schedule(policy, due, timezone, issued_at))
    plan = reminder_schedule(due, offsets, timezone, send_hour=send_hour, not_before=issued_at)
    return [ReminderPlanStep(kind=s.kind, offset_days=s.offset_days, send_at=s.send_at) for s in plan]


def default_offsets(invoice: Invoice, fallback: tuple[int, ...]) -> list[int]:
    return next(
        (o for o in (invoice.reminder_offsets, invoice.customer.reminder_offsets) if o is not None),
        list(fallback),
    )


def invoice_plan(
    invoice: Invoice, *, fallback_offsets: tuple[int, ...], send_hour: int
) -> list[ReminderPlanStep]:
    """The plan of an issued invoice, from its frozen policy (or the default offsets)."""
    assert invoice.due_date is not None and invoice.issued_at is not None
    return reminder_plan(
        _policy(invoice.dunning_snapshot),
        invoice.due_date,
        invoice.customer.timezone,
        invoice.issued_at,
        offsets=default_offsets(invoice, fallback_offsets),
        send_hour=send_hour,
    )


# ---------------------------------------------------------------- holds


def hold_spec(row: DunningHold) -> HoldSpec:
    return HoldSpec(
        hold_id=str(row.id),
        kind=row.kind,
        reason=row.reason,
        resume_at=row.resume_at,
        payment_key=row.payment_key,
        actor=row.actor,
        customer_wide=row.customer_id is not None,
    )


def _active(at: datetime):  # type: ignore[no-untyped-def]
    return (
        DunningHold.released_at.is_(None),
        or_(DunningHold.resume_at.is_(None), DunningHold.resume_at > at),
    )


def active_customer_holds(session: Session, customer_id: uuid.UUID, at: datetime) -> list[DunningHold]:
    return list(
        session.scalars(
            select(DunningHold)
            .where(DunningHold.customer_id == customer_id, *_active(at))
            .order_by(DunningHold.started_at)
        )
    )


def active_invoice_holds(session: Session, invoice: Invoice, at: datetime) -> list[DunningHold]:
    """Holds on this invoice and on its customer that are in force at ``at``."""
    return list(
        session.scalars(
            select(DunningHold)
            .where(
                or_(DunningHold.invoice_id == invoice.id, DunningHold.customer_id == invoice.customer_id),
                *_active(at),
            )
            .order_by(DunningHold.started_at)
        )
    )


def add_hold_event(
    session: Session,
    invoice_id: uuid.UUID,
    kind: str,
    hold: HoldSpec | DunningHold,
    *,
    actor: str,
    at: datetime | None = None,
    extra: dict[str, str] | None = None,
) -> None:

    hold_id = hold.hold_id if isinstance(hold, HoldSpec) else str(hold.id)
    data = {"hold_id": hold_id, "hold_kind": hold.kind, "reason": hold.reason, **(extra or {})}
    resume_at = hold.resume_at
    if resume_at is not None and kind == "dunning.hold_placed":
        data["resume_at"] = resume_at.isoformat()
    add_event(
        session,
        invoice_id,
        kind,
        actor=actor,
        data=data,
        dedupe_key=f"hold:{hold_id}:{invoice_id}:{kind}",
        at=at,
    )


def place_hold(session: Session, request: PlaceHoldRequest) -> None:
    """Record a hold on an invoice (idempotent by hold id). A customer-wide hold's row exists already
    (the API wrote it); the invoice gets the timeline entry."""
    hold = request.hold
    invoice_id = uuid.UUID(request.invoice_id)
    if not hold.customer_wide:
        session.execute(
            insert(DunningHold)
            .values(
                id=uuid.UUID(hold.hold_id),
                invoice_id=invoice_id,
                kind=hold.kind,
                reason=hold.reason,
                payment_key=hold.payment_key,
                actor=hold.actor,
                started_at=request.at,
                resume_at=hold.resume_at,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
    add_hold_event(session, invoice_id, "dunning.hold_placed", hold, actor=hold.actor, at=request.at)


def _scheduled(steps: list[ReminderPlanStep], zone: ZoneInfo) -> list[ScheduledReminder]:
    """Plan steps as ``billing.dunning`` sees them; ``step_index`` carries the position in ``steps``."""
    return [
        ScheduledReminder(
            step_index=i,
            kind="escalation" if s.kind == "escalation" else "step",
            offset_days=s.offset_days,
            template=s.template or s.kind,
            tone=s.tone,
            recipients=tuple(s.recipients) or ("client",),
            local_date=s.send_at.astimezone(zone).date(),
            send_at=s.send_at,
        )
        for i, s in enumerate(steps)
    ]


def release_holds(session: Session, request: ReleaseHoldsRequest, *, send_hour: int) -> ReleasePlan:
    """The invoice's hold is over: mark the invoice's own holds released and decide, by
    ``reminders_after_hold``, which held-back reminder is still sent (the latest, at the next window
    slot) and which are skipped for good. Idempotent: the same request gives the same plan and rows."""

    invoice = get_invoice(session, uuid.UUID(request.invoice_id), lock=True)
    zone = ZoneInfo(invoice.customer.timezone)
    for hold_id in request.hold_ids:
        row = session.get(DunningHold, uuid.UUID(hold_id))
        if row is None:
            continue
        if row.invoice_id == invoice.id and row.released_at is None:
            row.released_at, row.released_by = request.held_until, request.actor
        add_hold_event(
            session,
            invoice.id,
            "dunning.hold_released",
            row,
            actor=request.actor,
            at=request.held_until,
            extra={"why": request.reason},
        )
    policy = _policy(invoice.dunning_snapshot)
    window = policy.send_window if policy is not None else _legacy_window(send_hour)
    remaining = list(request.remaining)
    decision = reminders_after_hold(
        _scheduled(remaining, zone),
        request.held_from,
        request.held_until,
        request.held_until,
        window=window,
        timezone=invoice.customer.timezone,
    )
    tag = f"{request.held_from.isoformat()}"
    send: list[ReminderPlanStep] = []
    for entry in decision.send:
        step = remaining[entry.step_index]
        if entry.send_at != step.send_at:
            step = replace(
                step, send_at=entry.send_at, local_date=entry.local_date.isoformat() if step.template else ""
            )
            add_event(
                session,
                invoice.id,
                "dunning.reminder_rescheduled",
                actor=request.actor,
                data={"step": reminder_step_id(step), "send_at": entry.send_at.isoformat()},
                dedupe_key=f"invoice:{invoice.id}:dunning:rescheduled:{reminder_step_id(step)}:{tag}",
                at=request.held_until,
            )
        send.append(step)
    skipped = [remaining[entry.step_index] for entry in decision.skipped]
    for step in skipped:
        add_event(
            session,
            invoice.id,
            "dunning.reminder_skipped",
            actor=request.actor,
            data={"step": reminder_step_id(step), "planned_at": step.send_at.isoformat(), "reason": "held"},
            dedupe_key=f"invoice:{invoice.id}:dunning:skipped:{reminder_step_id(step)}",
            at=request.held_until,
        )
    return ReleasePlan(send=sorted(send, key=lambda s: s.send_at), skipped=skipped)


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


def resume_instant(day: date, timezone: str) -> datetime:
    """A hold's ``resume_on`` date ends it at the start of that day on the client's clock."""
    return datetime.combine(day, time(0), ZoneInfo(timezone)).astimezone(UTC)


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
