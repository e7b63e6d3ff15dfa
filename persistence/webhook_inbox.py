"""The webhook inbox: every verified delivery that matters for billing is a row before it is a 2xx.

A delivery is recorded (deduplicated on the provider's delivery/event id) and routed to its project
through `project_refs` in the receiver's transaction: it stays ``received``, with its project, until the
inbox dispatcher (`api.webhooks.dispatcher`) claims it, hands the trigger to the project workflow and
marks it ``dispatched``. A failed hand-over leaves it ``received`` with the error in its note, for the
dispatcher's next attempt. One that no project knows stays ``unmatched`` until an operator adds the
mapping and replays it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Boolean, Uuid, bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Session

from observability import tracing
from persistence import project_refs
from persistence.models import WebhookEvent
from workflows.payloads import DealSource, ProjectTrigger, TriggerKind

CRM_DEAL_SYSTEMS = {"hubspot": "hubspot_deal", "pipedrive": "pipedrive_deal"}
#: The PostgreSQL channel `invoiceflow dispatcher` processes LISTEN on (`notify_dispatchers`).
NOTIFY_CHANNEL = "invoiceflow_inbox"


@dataclass(frozen=True)
class InboundEvent:
    """A provider's event, normalised: what happened (kind) to which external object (system, ref).

    ``hints`` carry other ways to find the project when the ref itself is unknown: an explicit
    ``project_id`` (+ ``milestone_key``) or a ``deal_id`` named in an envelope's custom fields."""

    provider: str
    dedupe_key: str
    kind: str
    system: str
    ref: str
    summary: dict[str, str] = field(default_factory=dict)
    hints: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    project_id: uuid.UUID
    milestone_key: str | None = None
    deal: DealSource | None = None  # set when the project is to be built from a won deal


def record(session: Session, event: InboundEvent, payload: Any) -> WebhookEvent:
    """Insert the delivery, or count a redelivery of one already recorded."""
    stmt = insert(WebhookEvent).values(
        id=uuid.uuid4(),
        provider=event.provider,
        dedupe_key=event.dedupe_key,
        kind=event.kind,
        system=event.system,
        ref=event.ref,
        status="received",
        summary=event.summary | {f"hint.{k}": v for k, v in event.hints.items()} | tracing.carrier(),
        payload=payload,
        deliveries=1,
        note="",
    )
    # ON CONFLICT DO UPDATE locks the row it touched until commit, and RETURNING gives it back whichever
    # way it went: one round trip where an insert and a SELECT ... FOR UPDATE took two.
    row = session.scalars(
        stmt.on_conflict_do_update(
            constraint="uq_webhook_events_provider_dedupe", set_={"deliveries": WebhookEvent.deliveries + 1}
        ).returning(WebhookEvent),
        execution_options={"populate_existing": True},
    ).one()
    return row


@dataclass(frozen=True)
class Recorded:
    """What became of one delivery in `record_routed`: its row id, status and route."""

    id: uuid.UUID
    status: str  # received (routed, waits for the dispatcher) | dispatched (a duplicate) | unmatched
    project_id: uuid.UUID | None
    note: str


def not_linked(system: str, ref: str) -> str:
    """The note of an event no project knows (a receiver's, or an operator's replay)."""
    return f"no project is linked to {system} {ref!r}"


def unmatched_reason(event: InboundEvent | WebhookEvent) -> str:
    hints = event.hints if isinstance(event, InboundEvent) else hints_of(event)
    return hints.get("unconfirmed") or not_linked(event.system, event.ref)


#: `record_routed`'s statement, text compiled once: built with the expression language on every request,
#: its construction and cache key cost more CPU than PostgreSQL spent running it.
_RECORD_ROUTED = text(
    f"""
    WITH written AS (
        INSERT INTO {WebhookEvent.__tablename__} AS e
            (id, provider, dedupe_key, kind, system, ref, status, project_id, milestone_key,
             summary, payload, deliveries, note)
        VALUES (:id, :provider, :dedupe_key, :kind, :system, :ref, :status, :project_id, :milestone_key,
                :summary, :payload, 1, :note)
        ON CONFLICT ON CONSTRAINT uq_webhook_events_provider_dedupe DO UPDATE SET
            deliveries = e.deliveries + 1,
            status = CASE WHEN e.status <> 'dispatched' AND excluded.status = 'received'
                          THEN 'received' ELSE e.status END,
            project_id = CASE WHEN e.status <> 'dispatched' AND excluded.status = 'received'
                              THEN excluded.project_id ELSE e.project_id END,
            milestone_key = CASE WHEN e.status <> 'dispatched' AND excluded.status = 'received'
                                 THEN excluded.milestone_key ELSE e.milestone_key END,
            note = CASE WHEN e.status <> 'unmatched' THEN e.note
                        WHEN excluded.status = 'received' THEN '' ELSE excluded.note END
        RETURNING e.id, e.status, e.project_id, e.note
    )
    SELECT id, status, project_id, note,
           CASE WHEN status = 'received' AND :notify THEN pg_notify('{NOTIFY_CHANNEL}', '') END AS woken
    FROM written
    """
).bindparams(
    bindparam("id", type_=Uuid),
    bindparam("project_id", type_=Uuid),
    bindparam("summary", type_=JSONB),
    bindparam("payload", type_=JSONB),
    bindparam("notify", type_=Boolean),
)


def record_routed(session: Session, event: InboundEvent, payload: Any, *, notify: bool) -> Recorded:
    """`record`, `route` and `routed` (or `mark` unmatched) of a receiver, in one statement after the
    routing lookups: the route is worked out from the event before the insert, and the insert (or the
    redelivery's update) writes it, wakes the dispatcher processes (``pg_notify``, sent at commit, once
    per transaction however many rows ask; `notify` is false when the dispatcher runs in the API) and
    returns what the receiver answers. A webhook's transaction went from six round trips to four.

    A redelivery never undoes a hand-over (a ``dispatched`` row stays as it is), takes the route it
    finds now if the row had none (``unmatched`` becomes ``received``), and does not unroute a row
    still waiting, whose note (the last hand-over error) it keeps."""
    target = route(session, event)
    row = session.execute(
        _RECORD_ROUTED,
        {
            "id": uuid.uuid4(),
            "provider": event.provider,
            "dedupe_key": event.dedupe_key,
            "kind": event.kind,
            "system": event.system,
            "ref": event.ref,
            "status": "received" if target is not None else "unmatched",
            "project_id": target.project_id if target else None,
            "milestone_key": target.milestone_key if target else None,
            "summary": event.summary | {f"hint.{k}": v for k, v in event.hints.items()} | tracing.carrier(),
            "payload": payload,
            "note": "" if target is not None else unmatched_reason(event),
            "notify": notify,
        },
    ).one()
    return Recorded(row.id, row.status, row.project_id, row.note)


def summaries(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """The summaries of these events (where a webhook request's trace context waits for the dispatcher)."""
    rows = session.execute(select(WebhookEvent.id, WebhookEvent.summary).where(WebhookEvent.id.in_(ids)))
    return {row.id: row.summary or {} for row in rows}


def hints_of(row: WebhookEvent) -> dict[str, str]:
    return {k.removeprefix("hint."): v for k, v in row.summary.items() if k.startswith("hint.")}


def route(session: Session, row: WebhookEvent | InboundEvent, *, confirmed: bool = False) -> Route | None:
    """Which project (and milestone) this event is for, or None when no project knows it yet: for a
    recorded row, or for an event before it is recorded (the hints are the same either way).

    An event marked ``unconfirmed`` (Asana without an API token to check the task) routes only when an
    operator replays it (``confirmed``)."""
    hints = row.hints if isinstance(row, InboundEvent) else hints_of(row)
    if hints.get("unconfirmed") and not confirmed:
        return None
    linked = project_refs.resolve(session, row.system, row.ref) if row.ref else None
    if linked is not None:
        return Route(linked.project_id, linked.milestone_key or hints.get("milestone_key"))
    if hints.get("project_id"):
        try:
            project_id = uuid.UUID(hints["project_id"])
        except ValueError:
            project_id = None
        if project_id is not None and project_refs.project_exists(session, project_id):
            return Route(project_id, hints.get("milestone_key"))
    if row.kind == TriggerKind.CONTRACT_SIGNED and hints.get("deal_id"):
        for system in CRM_DEAL_SYSTEMS.values():
            linked = project_refs.resolve(session, system, hints["deal_id"])
            if linked is not None:
                return Route(linked.project_id)
    if row.kind == TriggerKind.DEAL_WON and row.provider in CRM_DEAL_SYSTEMS:
        return Route(
            project_refs.project_id_for_deal(row.provider, row.ref), deal=DealSource(row.provider, row.ref)
        )
    return None


def routed(session: Session, row: WebhookEvent, target: Route) -> None:
    """Keep the event's route on its row, ``received``: the dispatcher hands it over from there. A row
    already waiting keeps its note (the last hand-over error)."""
    values: dict[str, Any] = {
        "status": "received",
        "project_id": target.project_id,
        "milestone_key": target.milestone_key,
    }
    if row.status != "received":
        values["note"] = ""
    session.execute(update(WebhookEvent).where(WebhookEvent.id == row.id).values(**values))


def route_of(row: WebhookEvent) -> Route:
    """The route `routed` kept on the row. A won deal routed to the project its deal id derives to
    carries the deal, so a workflow that is not running builds the project first (it checks whether
    the project exists already, so a deal whose project was built meanwhile is only billed)."""
    assert row.project_id is not None
    deal = None
    if (
        row.kind == TriggerKind.DEAL_WON
        and row.provider in CRM_DEAL_SYSTEMS
        and row.project_id == project_refs.project_id_for_deal(row.provider, row.ref)
    ):
        deal = DealSource(row.provider, row.ref)
    return Route(row.project_id, row.milestone_key, deal=deal)


def trigger_for(row: WebhookEvent, target: Route) -> ProjectTrigger:
    return ProjectTrigger(
        event_key=f"{row.provider}:{row.dedupe_key}",
        kind=row.kind,
        provider=row.provider,
        ref=row.ref,
        milestone_key=target.milestone_key,
        actor=f"webhook:{row.provider}",
        webhook_event_id=str(row.id),
    )


def mark(session: Session, event_id: uuid.UUID, status: str, *, note: str = "") -> None:
    session.execute(update(WebhookEvent).where(WebhookEvent.id == event_id).values(status=status, note=note))


def claim(
    session: Session,
    *,
    lease_s: float,
    limit: int,
    ids: Sequence[uuid.UUID] | None = None,
    ignore_leases: bool = False,
) -> list[tuple[uuid.UUID, Route, ProjectTrigger]]:
    """Lease up to `limit` routed events still ``received``, oldest first, with what to hand over.

    One statement: rows another dispatcher is claiming right now are skipped (``SKIP LOCKED``), and rows
    another one has leased (``dispatching_until`` ahead) are left to it, so API replicas never hand over
    the same row at once. `ignore_leases` is for an operator's replay, which does not wait for a lease or
    a retry delay (a second hand-over is harmless, the workflow skips event keys it has seen)."""
    now = func.now()
    candidates = select(WebhookEvent.id).where(
        WebhookEvent.status == "received", WebhookEvent.project_id.is_not(None)
    )
    if not ignore_leases:
        candidates = candidates.where(
            or_(WebhookEvent.dispatching_until.is_(None), WebhookEvent.dispatching_until <= now)
        )
    if ids is not None:
        candidates = candidates.where(WebhookEvent.id.in_(ids))
    candidates = candidates.order_by(WebhookEvent.received_at).limit(limit).with_for_update(skip_locked=True)
    rows = session.scalars(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_(candidates.scalar_subquery()))
        .values(dispatching_until=now + timedelta(seconds=lease_s))
        .returning(WebhookEvent),
        execution_options={"populate_existing": True},
    ).all()
    claimed = []
    for row in sorted(rows, key=lambda r: r.received_at):
        target = route_of(row)
        claimed.append((row.id, target, trigger_for(row, target)))
    return claimed


def notify_dispatchers(session: Session) -> None:
    """Wake the dispatcher processes when this transaction commits (PostgreSQL sends a NOTIFY only then,
    and one per transaction however often it is asked), never before the rows are visible to them."""
    session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


def mark_dispatched(session: Session, ids: Sequence[uuid.UUID], *, note: str = "") -> None:
    """The project workflows have these events: one UPDATE for the batch. A row the workflow has put back
    to ``unmatched`` meanwhile (a won deal the CRM does not know) stays so."""
    session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_(ids), WebhookEvent.status == "received")
        .values(status="dispatched", dispatched_at=func.now(), dispatching_until=None, note=note)
    )


def hand_over_failed(session: Session, ids: Sequence[uuid.UUID], error: str, *, retry_in_s: float) -> None:
    """The hand-over failed: the rows stay ``received``, note the error, and wait `retry_in_s` (their
    lease becomes the retry time) so one event Temporal refuses does not hold up the others."""
    session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_(ids), WebhookEvent.status == "received")
        .values(note=error[:2000], dispatching_until=func.now() + timedelta(seconds=retry_in_s))
    )


def unroute_deal(session: Session, system: str, deal_id: str, reason: str) -> None:
    """A won deal that cannot become a project: its events go back to ``unmatched``, with the reason."""
    session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.system == system,
            WebhookEvent.ref == deal_id,
            WebhookEvent.kind == TriggerKind.DEAL_WON,
        )
        .values(status="unmatched", note=reason)
    )


def pending(
    session: Session, statuses: tuple[str, ...] = ("unmatched", "received"), limit: int = 500
) -> list[WebhookEvent]:
    return list(
        session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.status.in_(statuses))
            .order_by(WebhookEvent.received_at)
            .limit(limit)
        )
    )


def get(session: Session, event_id: uuid.UUID) -> WebhookEvent | None:
    return session.get(WebhookEvent, event_id)
