"""Time entries of a project and their time & materials invoices, on the database.

An entry is a `BillableItem` (kind ``time``) with the project, the person, the role and the source tool's
id: unique per project, so an entry sent twice (the API retried, a tool redelivering, the same work sent
by the API and a webhook) is stored once. An invoice takes entries by setting their ``invoice_id`` in the
transaction that creates it, under the project's row lock, so each entry is billed exactly once; voiding
the invoice clears it (`persistence.invoices.close`) and the entry waits for the next one.

`bill_time` is called by `persistence.projects.bill_trigger` for the T&M triggers: a period end (bill
everything dated before it) or a logged entry (bill everything once the threshold is reached). The
invoice id derives from the trigger, so a retried activity finds the invoice it made.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from billing.errors import MoneyError
from billing.money import parse_decimal, require_minor_units
from billing.time_materials import (
    Entry,
    TmRule,
    entry_amount,
    parse_rule,
    period_start,
    rate_for,
    select_entries,
    threshold_reached,
)
from billing.totals import LineInput
from persistence.models import BillableItem, Invoice, Project, WebhookEvent
from workflows.payloads import BillOutcome, InvoiceWorkflowInput, ProjectTrigger, TmSchedule, TriggerKind

MAX_HOURS = Decimal(24 * 31)
# A time tracker's project id in a project's external_refs routes its webhooks there.
TIME_TRACKING_REF_SYSTEMS = frozenset({"toggl_project", "clockify_project", "jira_issue_id"})


@dataclass(frozen=True)
class NewTimeEntry:
    person: str
    incurred_on: date
    hours: Decimal
    description: str
    rate: Decimal | None = None
    role: str | None = None
    billable: bool = True
    external_id: str | None = None
    source: str = "api"


def rule_of(project: Project) -> TmRule | None:
    return parse_rule(project.tm_rule, project.currency) if project.tm_rule else None


def schedule(session: Session, project_id: uuid.UUID) -> TmSchedule:
    project = session.get(Project, project_id)
    if project is None or not project.tm_rule:
        return TmSchedule()
    return TmSchedule(
        bill_every=project.tm_rule.get("bill_every"),
        timezone=project.customer.timezone,
        started=not (project.start_on == "deposit_paid" and project.started_at is None),
    )


def add_entry(session: Session, project: Project, new: NewTimeEntry) -> tuple[BillableItem, bool]:
    """Store an entry (or find the one with the same external id): (entry, created)."""
    if not Decimal(0) < new.hours <= MAX_HOURS:
        raise MoneyError(f"hours: must be more than 0 and at most {MAX_HOURS}")
    rule = rule_of(project)
    if rule is None and new.rate is None:
        raise MoneyError("rate: required, the project has no time_and_materials rate")
    if new.rate is not None and new.rate < 0:
        raise MoneyError("rate: must not be negative")
    if new.rate is not None:
        require_minor_units(new.rate, project.currency, field="rate")
    rate = rate_for(rule, new.role, new.rate) if rule is not None else new.rate
    assert rate is not None
    values: dict[str, Any] = dict(
        id=uuid.uuid4(),
        customer_id=project.customer_id,
        project_id=project.id,
        project_ref=str(project.id),
        kind="time",
        description=new.description.strip(),
        quantity=new.hours,
        unit_price=rate,
        amount=entry_amount(new.hours, rate, project.currency),
        currency=project.currency,
        tax_rate=project.tax_rate,
        incurred_on=new.incurred_on,
        receipt_ref="",
        billable=new.billable,
        status="approved",
        decided_by="auto",
        person=new.person.strip(),
        role=new.role,
        external_id=new.external_id,
        source=new.source,
    )
    stmt = insert(BillableItem).values(**values)
    if new.external_id is not None:
        stmt = stmt.on_conflict_do_nothing(
            index_elements=["project_id", "external_id"], index_where=BillableItem.external_id.is_not(None)
        )
    created = session.execute(stmt.returning(BillableItem.id)).scalar_one_or_none()
    if created is None:
        existing = session.scalars(
            select(BillableItem).where(
                BillableItem.project_id == project.id, BillableItem.external_id == new.external_id
            )
        ).one()
        return existing, False
    item = session.get(BillableItem, created)
    assert item is not None
    return item, True


def entry_from_event(row: WebhookEvent) -> NewTimeEntry:
    """The entry a time-tracking webhook carried (normalised into the inbox row's summary)."""
    s = row.summary
    return NewTimeEntry(
        person=s.get("person") or "unknown",
        incurred_on=date.fromisoformat(s["date"]),
        hours=parse_decimal(s["hours"], field="hours"),
        description=s.get("description") or "Time",
        rate=parse_decimal(s["rate"], field="rate") if s.get("rate") else None,
        role=s.get("role") or None,
        billable=s.get("billable", "true") != "false",
        external_id=f"{row.provider}:{s.get('external_id') or row.dedupe_key}",
        source=row.provider,
    )


def _find(session: Session, project: Project, external_id: str) -> BillableItem | None:
    return session.scalars(
        select(BillableItem)
        .where(BillableItem.project_id == project.id, BillableItem.external_id == external_id)
        .with_for_update()
    ).one_or_none()


def revise(item: BillableItem, new: NewTimeEntry, project: Project) -> str:
    """A tool changed an entry (a Jira worklog edited): the unbilled entry follows; a billed one stays as
    billed (the invoice is a fact) and the change is reported for an operator."""
    if item.invoice_id is not None:
        return f"time entry {item.external_id} is billed; its change was not applied; "
    if not Decimal(0) < new.hours <= MAX_HOURS:
        raise MoneyError(f"hours: must be more than 0 and at most {MAX_HOURS}")
    item.quantity, item.incurred_on = new.hours, new.incurred_on
    item.description, item.person = new.description.strip(), new.person.strip()
    item.amount = entry_amount(new.hours, item.unit_price, project.currency)
    return f"time entry {item.external_id} updated; "


def withdraw(session: Session, project: Project, external_id: str) -> str:
    """A tool deleted an entry: an unbilled one is removed; a billed one stays (reported)."""
    item = _find(session, project, external_id)
    if item is None:
        return f"time entry {external_id} was never logged; "
    if item.invoice_id is not None:
        return f"time entry {external_id} is billed; its deletion was not applied; "
    session.delete(item)
    session.flush()
    return f"time entry {external_id} withdrawn; "


def item_scope(session: Session, project_id: uuid.UUID | None) -> list[Any]:
    """Which billable items an invoice collects at issue: a project's go on its invoices only, and its
    time only when it has no T&M rule (that rule bills time itself); the rest on invoices of no project."""
    if project_id is None:
        return [BillableItem.project_id.is_(None)]
    project = session.get(Project, project_id)
    scope = [BillableItem.project_id == project_id]
    if project is not None and project.tm_rule:
        scope.append(BillableItem.kind != "time")
    return scope


def unbilled(session: Session, project: Project, *, before: date | None = None) -> list[BillableItem]:
    stmt = (
        select(BillableItem)
        .where(
            BillableItem.project_id == project.id,
            BillableItem.kind == "time",
            BillableItem.status == "approved",
            BillableItem.billable.is_(True),
            BillableItem.invoice_id.is_(None),
        )
        .order_by(BillableItem.incurred_on, BillableItem.created_at)
        .with_for_update(of=BillableItem)
    )
    if before is not None:
        stmt = stmt.where(BillableItem.incurred_on < before)
    return list(session.scalars(stmt))


def lines_for(items: list[BillableItem], project: Project) -> list[LineInput]:
    """One line per person and rate (hours summed), in the order people first appear."""
    groups: OrderedDict[tuple[str, Decimal], list[BillableItem]] = OrderedDict()
    for item in sorted(items, key=lambda i: (i.person or "", i.incurred_on)):
        groups.setdefault((item.person or "unassigned", item.unit_price), []).append(item)
    lines = []
    for (person, rate), group in groups.items():
        first, last = group[0].incurred_on, group[-1].incurred_on
        span = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
        lines.append(
            LineInput(
                description=f"{project.name}: {person}, {len(group)} entries ({span})",
                quantity=sum((i.quantity for i in group), Decimal(0)),
                unit_price=rate,
                tax_rate=project.tax_rate,
            )
        )
    return lines


@dataclass(frozen=True)
class InvoiceMaker:
    """How `persistence.projects` makes a project's invoice (its id derived from ``what``)."""

    find: Callable[[str], Invoice | None]
    new: Callable[[str, list[LineInput], str], Invoice]
    as_input: Callable[[Invoice], InvoiceWorkflowInput]


def billed_amount(session: Session, project_id: uuid.UUID) -> Decimal:
    """What T&M invoices bill now (an entry released by a void no longer counts), for the cap."""
    total = session.scalar(
        select(func.coalesce(func.sum(BillableItem.amount), 0)).where(
            BillableItem.project_id == project_id,
            BillableItem.kind == "time",
            BillableItem.invoice_id.is_not(None),
        )
    )
    return Decimal(total or 0)


def bill_time(
    session: Session,
    project: Project,
    trigger: ProjectTrigger,
    out: BillOutcome,
    maker: InvoiceMaker,
    *,
    store_only: bool = False,
) -> None:
    """A T&M trigger: a period end (bill what is dated before it) or a logged entry (bill once the
    threshold is reached); a webhook's entry is stored first (and only stored, ``store_only``, before a
    ``deposit_paid`` project starts)."""
    if trigger.kind == TriggerKind.TIME_LOGGED and trigger.webhook_event_id:
        row = session.get(WebhookEvent, uuid.UUID(trigger.webhook_event_id))
        action = row.summary.get("action", "created") if row is not None else "created"
        if row is not None and action == "deleted":
            out.detail += withdraw(session, project, f"{row.provider}:{row.summary.get('external_id')}")
            return
        if row is not None:
            try:
                new = entry_from_event(row)
                item, created = add_entry(session, project, new)
                if not created and action == "updated":
                    out.detail += revise(item, new, project)
            except (MoneyError, KeyError, ValueError) as exc:
                out.detail += f"time entry refused: {exc}; "
                return
            if not created and action != "updated":
                out.detail += "time entry already logged; "
    if store_only:
        out.detail += "time waits for the deposit to be paid; "
        return
    rule = rule_of(project)
    if rule is None:
        return
    what = f"tm:{trigger.event_key}"
    existing = maker.find(what)
    if existing is not None:  # a retry of the trigger that billed it
        out.invoices.append(maker.as_input(existing))
        return
    before: date | None = None
    if trigger.kind == TriggerKind.TM_PERIOD:
        if rule.bill_every is None:
            return
        before = date.fromisoformat(trigger.ref)
    elif rule.bill_every is not None:
        return  # a calendar project bills at its period ends only
    items = unbilled(session, project, before=before)
    entries = [Entry(str(i.id), i.incurred_on, i.quantity, i.amount) for i in items]
    if trigger.kind != TriggerKind.TM_PERIOD and not threshold_reached(rule, entries):
        out.detail += "under the threshold; "
        return
    picked = select_entries(rule, entries, billed_amount(session, project.id))
    if picked.waiting_over_cap:
        out.detail += f"{len(picked.waiting_over_cap)} entries wait over the cap; "
    taken = [i for i in items if str(i.id) in set(picked.taken)]
    if not taken:
        out.detail += "no unbilled time; "
        return
    if before is not None:
        start = period_start(rule.bill_every or "week", before)
        notes = f"Time and materials, {start.isoformat()} to {before.isoformat()} (exclusive)."
    else:
        notes = "Time and materials."
    invoice = maker.new(what, lines_for(taken, project), notes)
    for item in taken:
        item.invoice_id = invoice.id
    session.flush()
    out.invoices.append(maker.as_input(invoice))


def summary(session: Session, project: Project) -> dict[str, Any] | None:
    """The T&M numbers GET /projects/{id} shows."""
    if not project.tm_rule:
        return None
    items = list(
        session.scalars(
            select(BillableItem).where(BillableItem.project_id == project.id, BillableItem.kind == "time")
        )
    )
    open_items = [i for i in items if i.invoice_id is None and i.billable and i.status == "approved"]
    return {
        "rule": project.tm_rule,
        "billed": str(billed_amount(session, project.id)),
        "entries": len(items),
        "unbilled_hours": str(sum((i.quantity for i in open_items), Decimal(0))),
        "unbilled_amount": str(sum((i.amount for i in open_items), Decimal(0))),
    }
