"""The webhook inbox: every verified delivery that matters for billing is a row before it is a 2xx.

A delivery is recorded (deduplicated on the provider's delivery/event id), routed to its project through
`project_refs`, and marked ``dispatched`` once its project workflow has the trigger. One that no project
knows stays ``unmatched`` until an operator adds the mapping and replays it; one whose hand-over to
Temporal failed stays ``received`` and the provider's redelivery (or a replay) dispatches it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from persistence import projects
from persistence.models import WebhookEvent
from workflows.contracts import DealSource, ProjectTrigger, TriggerKind

CRM_DEAL_SYSTEMS = {"hubspot": "hubspot_deal", "pipedrive": "pipedrive_deal"}


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
        id=uuid.uuid4(), provider=event.provider, dedupe_key=event.dedupe_key, kind=event.kind, system=event.system,
        ref=event.ref, status="received", summary=event.summary | {f"hint.{k}": v for k, v in event.hints.items()},
        payload=payload, deliveries=1, note="",
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


def hints_of(row: WebhookEvent) -> dict[str, str]:
    return {k.removeprefix("hint."): v for k, v in row.summary.items() if k.startswith("hint.")}


def route(session: Session, row: WebhookEvent, *, confirmed: bool = False) -> Route | None:
    """Which project (and milestone) this event is for, or None when no project knows it yet.

    An event marked ``unconfirmed`` (Asana without an API token to check the task) routes only when an
    operator replays it (``confirmed``)."""
    hints = hints_of(row)
    if hints.get("unconfirmed") and not confirmed:
        return None
    linked = projects.resolve(session, row.system, row.ref) if row.ref else None
    if linked is not None:
        return Route(linked.project_id, linked.milestone_key or hints.get("milestone_key"))
    if hints.get("project_id"):
        try:
            project_id = uuid.UUID(hints["project_id"])
        except ValueError:
            project_id = None
        if project_id is not None and projects.project_exists(session, project_id):
            return Route(project_id, hints.get("milestone_key"))
    if row.kind == TriggerKind.CONTRACT_SIGNED and hints.get("deal_id"):
        for system in CRM_DEAL_SYSTEMS.values():
            linked = projects.resolve(session, system, hints["deal_id"])
            if linked is not None:
                return Route(linked.project_id)
    if row.kind == TriggerKind.DEAL_WON and row.provider in CRM_DEAL_SYSTEMS:
        return Route(projects.project_id_for_deal(row.provider, row.ref), deal=DealSource(row.provider, row.ref))
    return None


def trigger_for(row: WebhookEvent, target: Route) -> ProjectTrigger:
    return ProjectTrigger(
        event_key=f"{row.provider}:{row.dedupe_key}", kind=row.kind, provider=row.provider, ref=row.ref,
        milestone_key=target.milestone_key, actor=f"webhook:{row.provider}", webhook_event_id=str(row.id),
    )


def mark(session: Session, event_id: uuid.UUID, status: str, *, project_id: uuid.UUID | None = None,
         milestone_key: str | None = None, note: str = "") -> None:
    values: dict[str, Any] = {"status": status, "note": note}
    if project_id is not None:
        values |= {"project_id": project_id, "milestone_key": milestone_key}
    stmt = update(WebhookEvent).where(WebhookEvent.id == event_id)
    if status == "dispatched":
        values["dispatched_at"] = datetime.now(UTC)
        # The workflow may already have put it back to unmatched (a won deal the CRM does not know).
        stmt = stmt.where(WebhookEvent.status != "unmatched")
    session.execute(stmt.values(**values))


def unroute_deal(session: Session, system: str, deal_id: str, reason: str) -> None:
    """A won deal that cannot become a project: its events go back to ``unmatched``, with the reason."""
    session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.system == system, WebhookEvent.ref == deal_id, WebhookEvent.kind == TriggerKind.DEAL_WON)
        .values(status="unmatched", note=reason)
    )


def pending(session: Session, statuses: tuple[str, ...] = ("unmatched", "received"), limit: int = 500) -> list[WebhookEvent]:
    return list(
        session.scalars(
            select(WebhookEvent).where(WebhookEvent.status.in_(statuses)).order_by(WebhookEvent.received_at).limit(limit)
        )
    )


def get(session: Session, event_id: uuid.UUID) -> WebhookEvent | None:
    return session.get(WebhookEvent, event_id)
