"""Dunning holds on the database: placing one, the customer's and the invoice's active holds,
releasing them and which held-back reminders go out."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from billing.dunning import (
    ScheduledReminder,
    reminders_after_hold,
)
from persistence.dunning.plans import _legacy_window, _policy
from persistence.invoice_rows import add_event, get_invoice
from persistence.models import (
    DunningHold,
    Invoice,
)
from workflows.payloads import (
    HoldSpec,
    PlaceHoldRequest,
    ReleaseHoldsRequest,
    ReleasePlan,
    ReminderPlanStep,
    reminder_step_id,
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
