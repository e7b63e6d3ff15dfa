"""Projects on the database: billing plans, the refs that route events to them, and billing a trigger.

`bill_trigger` is the one place that turns a business event into invoices. It runs in one transaction
under a row lock on the project, and every invoice id is derived from (project, deposit | milestone), so
a retried activity, a redelivered webhook or a replayed workflow finds its earlier work instead of
billing twice, whatever order the events arrive in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.money import format_money, quantize
from billing.projects import (
    DepositSpec,
    MilestoneSpec,
    ResolvedPlan,
    deposit_to_bill,
    recoupment,
    resolve_plan,
)
from billing.totals import LineInput, parse_lines
from persistence import change_orders, project_start, time_entries
from persistence import invoices as repo
from persistence.models import Customer, CustomerExternalId, Invoice, Project, ProjectMilestone, ProjectRef
from persistence.project_refs import PROJECT_NAMESPACE, resolve
from persistence.subscriptions import terms_json
from workflows.payloads import (
    BillOutcome,
    InvoiceWorkflowInput,
    ProjectTrigger,
    TriggerKind,
    project_workflow_id,
)

# Where a ref may point: the deal and the signature envelope identify a project, PM-tool objects a milestone.
PROJECT_REF_SYSTEMS = (
    frozenset({"hubspot_deal", "pipedrive_deal", "docusign", "dropbox_sign", "pandadoc", "generic"})
    | time_entries.TIME_TRACKING_REF_SYSTEMS
)
# Several objects of one system may route to a project (comma-separated): Jira issues' worklogs.
MULTI_REF_SYSTEMS = frozenset({"jira_issue_id"})
MILESTONE_REF_SYSTEMS = frozenset({"jira", "linear", "github", "asana", "generic"})
BILL_ON = ("milestone", "deal_won", "signature")


class ProjectNotFound(LookupError):
    pass


class RefConflict(ValueError):
    """The external id already routes to another project: one event must have one target."""


@dataclass(frozen=True)
class NewMilestone:
    key: str
    name: str
    amount: Decimal | None = None
    percent: Decimal | None = None
    refs: dict[str, str] = field(default_factory=dict)
    bill_on: str = "milestone"
    lines: list[LineInput] | None = None
    after: str | None = None  # with bill_on "after_paid": the milestone key (or "deposit") paid first


@dataclass(frozen=True)
class NewProject:
    customer: Customer
    name: str
    currency: str
    milestones: list[NewMilestone]
    payment_terms: str
    category: str | None = None
    deposit: DepositSpec | None = None
    deposit_on: str = "signature"
    contract_amount: Decimal | None = None
    tax_rate: Decimal = Decimal(0)
    refs: dict[str, str] = field(default_factory=dict)
    source: str = "api"
    project_id: uuid.UUID | None = None
    tm_rule: dict[str, object] | None = None  # time & materials (billing.time_materials), validated
    start_on: str = "signature"  # or deposit_paid: nothing but the deposit bills before it is paid
    owner_email: str | None = None


def _invoice_id(project_id: uuid.UUID, what: str) -> uuid.UUID:
    return uuid.uuid5(PROJECT_NAMESPACE, f"{project_id}:{what}")


def check_plan(new: NewProject) -> ResolvedPlan:
    """Every amount of the plan, or a MoneyError naming the field (before anything is stored)."""
    return resolve_plan(
        new.currency,
        [MilestoneSpec(m.key, m.name, m.amount, m.percent) for m in new.milestones],
        new.deposit,
        new.contract_amount,
    )


def create_project(session: Session, new: NewProject) -> Project:
    plan = check_plan(new)
    project_id = new.project_id or uuid.uuid4()
    project = Project(
        id=project_id,
        customer_id=new.customer.id,
        name=new.name.strip(),
        currency=new.currency,
        category=new.category,
        contract_amount=plan.contract,
        deposit_percent=new.deposit.percent if new.deposit else None,
        deposit_amount=plan.deposit,
        deposit_on=new.deposit_on,
        deposit_billed=Decimal(0),
        deposit_recouped=Decimal(0),
        tax_rate=new.tax_rate,
        payment_terms=new.payment_terms,
        source=new.source,
        status="active",
        workflow_id=project_workflow_id(str(project_id)),
        tm_rule=new.tm_rule,
        start_on=new.start_on,
        owner_email=new.owner_email,
    )
    project.milestones = [
        ProjectMilestone(
            key=m.key,
            name=m.name.strip(),
            position=i,
            amount=plan.milestones[m.key],
            percent=m.percent,
            lines=terms_json(m.lines) if m.lines else None,
            bill_on=m.bill_on,
            after_key=m.after,
            status="pending",
            recouped=Decimal(0),
        )
        for i, m in enumerate(new.milestones)
    ]
    refs: list[tuple[str, str, str | None]] = [
        (system, one.strip(), None)
        for system, ref in new.refs.items()
        for one in (ref.split(",") if system in MULTI_REF_SYSTEMS else [ref])
        if one.strip()
    ]
    refs += [(system, ref, m.key) for m in new.milestones for system, ref in m.refs.items()]
    for system, ref, milestone_key in refs:
        existing = resolve(session, system, ref)
        if existing is not None:
            raise RefConflict(f"{system} {ref!r} already belongs to project {existing.project_id}")
        project.refs.append(ProjectRef(system=system, ref=ref.strip(), milestone_key=milestone_key))
    session.add(project)
    session.flush()
    return project


def get_project(session: Session, project_id: uuid.UUID, *, lock: bool = False) -> Project:
    stmt = select(Project).where(Project.id == project_id)
    if lock:
        stmt = stmt.with_for_update(of=Project)
    project = session.scalars(stmt).unique().one_or_none()
    if project is None:
        raise ProjectNotFound(f"project {project_id} does not exist")
    return project


def customer_for_deal(
    session: Session,
    *,
    provider: str,
    company_id: str | None,
    name: str,
    email: str | None,
    currency: str,
    terms: str,
) -> Customer:
    """The CRM company's customer: by its external id, else by the contact's email, else a new one."""
    system = f"{provider}_company"
    if company_id:
        linked = session.scalars(
            select(CustomerExternalId).where(
                CustomerExternalId.system == system, CustomerExternalId.external_id == company_id
            )
        ).first()
        if linked is not None:
            return linked.customer
    customer = None
    if email:
        customer = session.scalars(
            select(Customer).where(Customer.emails.any(email)).order_by(Customer.created_at)  # type: ignore[arg-type]
        ).first()
    if customer is None:
        customer = Customer(
            name=name,
            emails=[email] if email else [],
            currency=currency,
            timezone="UTC",
            payment_terms=terms,
            tags=[],
        )
        session.add(customer)
        session.flush()
    if company_id:
        customer.external_ids.append(CustomerExternalId(system=system, external_id=company_id))
        session.flush()
    return customer


# --- billing a trigger -----------------------------------------------------------------------------


def _invoice_input(invoice: Invoice) -> InvoiceWorkflowInput:
    return InvoiceWorkflowInput(
        invoice_id=str(invoice.id),
        customer_id=str(invoice.customer_id),
        currency=invoice.currency,
        requires_approval=invoice.requires_approval,
    )


def _new_invoice(
    session: Session, project: Project, what: str, lines: list[LineInput], notes: str
) -> Invoice:
    invoice = repo.create_invoice(
        session,
        repo.NewInvoice(
            customer=project.customer,
            currency=project.currency,
            lines=lines,
            payment_terms=project.payment_terms,
            notes=notes,
            source="project",
            invoice_id=_invoice_id(project.id, what),
            project_id=project.id,
            # The project's approved expenses (and time) roll into its next invoice, a deposit aside.
            collect_billable_items=not what.endswith("deposit"),
        ),
    )
    return invoice


def _maker(session: Session, project: Project) -> time_entries.InvoiceMaker:
    return time_entries.InvoiceMaker(
        find=lambda what: session.get(Invoice, _invoice_id(project.id, what)),
        new=lambda what, lines, notes: _new_invoice(session, project, what, lines, notes),
        as_input=_invoice_input,
    )


def _unbilled(project: Project) -> Decimal:
    return sum((m.amount for m in project.milestones if m.status == "pending"), Decimal(0))


def _bill_deposit(session: Session, project: Project, trigger: ProjectTrigger, out: BillOutcome) -> None:
    if project.deposit_invoice_id is not None:
        if project.deposit_event == trigger.event_key:  # a retry of the trigger that billed it
            out.invoices.append(_invoice_input(repo.get_invoice(session, project.deposit_invoice_id)))
        else:
            out.detail += "deposit already billed; "
        return
    amount = deposit_to_bill(project.deposit_amount, _unbilled(project))
    if amount <= 0:
        out.detail += "no deposit to bill (every milestone is billed); "
        return
    label = f"Deposit ({project.deposit_percent.normalize():f}%)" if project.deposit_percent else "Deposit"
    invoice = _new_invoice(
        session,
        project,
        "deposit",
        [
            LineInput(
                description=f"{project.name}: {label}",
                quantity=Decimal(1),
                unit_price=amount,
                tax_rate=project.tax_rate,
            )
        ],
        notes="Advance payment, deducted from the milestone invoices that follow.",
    )
    project.deposit_invoice_id, project.deposit_billed, project.deposit_event = (
        invoice.id,
        amount,
        trigger.event_key,
    )
    repo.add_event(
        session,
        invoice.id,
        "project.deposit",
        actor=trigger.actor,
        data={"project_id": str(project.id), "event": trigger.event_key, "provider": trigger.provider},
    )
    out.invoices.append(_invoice_input(invoice))


def _bill_milestone(
    session: Session, project: Project, milestone: ProjectMilestone, trigger: ProjectTrigger, out: BillOutcome
) -> None:
    if milestone.status == "billed":
        if milestone.billed_event == trigger.event_key and milestone.invoice_id is not None:
            out.invoices.append(_invoice_input(repo.get_invoice(session, milestone.invoice_id)))
        else:
            out.detail += f"milestone {milestone.key} already billed; "
        return
    pending = [m for m in project.milestones if m.status == "pending"]
    recoup = recoupment(
        currency=project.currency,
        milestone_amount=milestone.amount,
        deposit_billed=project.deposit_billed,
        deposit_recouped=project.deposit_recouped,
        unbilled_milestones=_unbilled(project),
        is_last=len(pending) == 1,
    )
    if milestone.lines:
        lines = _apply_recoupment(parse_lines(milestone.lines), recoup, project.currency)
    else:
        lines = [
            LineInput(
                description=f"{project.name}: {milestone.name}",
                quantity=Decimal(1),
                unit_price=milestone.amount,
                discount_amount=recoup,
                tax_rate=project.tax_rate,
            )
        ]
    notes = f"Deposit applied: {format_money(recoup, project.currency)}." if recoup > 0 else ""
    invoice = _new_invoice(session, project, f"milestone:{milestone.key}", lines, notes)
    milestone.status, milestone.invoice_id, milestone.recouped = "billed", invoice.id, recoup
    milestone.billed_event, milestone.billed_at = trigger.event_key, datetime.now(UTC)
    project.deposit_recouped += recoup
    repo.add_event(
        session,
        invoice.id,
        "project.milestone",
        actor=trigger.actor,
        data={
            "project_id": str(project.id),
            "milestone": milestone.key,
            "event": trigger.event_key,
            "provider": trigger.provider,
            "ref": trigger.ref,
        },
    )
    out.invoices.append(_invoice_input(invoice))


def _bill_or_hold(
    session: Session, project: Project, milestone: ProjectMilestone, trigger: ProjectTrigger, out: BillOutcome
) -> None:
    """Bill a milestone, or, before a ``deposit_paid`` project starts, keep it for the start."""
    if project_start.waiting(project):
        project_start.hold(milestone, trigger, out)
    else:
        _bill_milestone(session, project, milestone, trigger, out)


def _apply_recoupment(lines: list[LineInput], recoup: Decimal, currency: str) -> list[LineInput]:
    """Spread a deduction over lines in order, each at most its gross (lines from a CRM deal)."""
    result: list[LineInput] = []
    for line in lines:
        room = quantize(line.quantity * line.unit_price, currency) - line.discount_amount
        take = min(recoup, max(room, Decimal(0))) if line.discount_percent == 0 else Decimal(0)
        recoup -= take
        result.append(
            LineInput(
                line.description,
                line.quantity,
                line.unit_price,
                line.discount_percent,
                line.discount_amount + take,
                line.tax_rate,
            )
        )
    return result


def _paid_stage(project: Project, invoice_id: str) -> str | None:
    """Which stage of the plan a paid invoice billed: ``deposit`` or a milestone key."""
    if project.deposit_invoice_id is not None and str(project.deposit_invoice_id) == invoice_id:
        return "deposit"
    return next((m.key for m in project.milestones if m.invoice_id and str(m.invoice_id) == invoice_id), None)


def bill_trigger(session: Session, project_id: uuid.UUID, trigger: ProjectTrigger) -> BillOutcome:
    project = get_project(session, project_id, lock=True)
    out = BillOutcome(outcome="nothing_to_bill")
    if project.status == "cancelled":
        return BillOutcome(outcome="closed", detail="project is cancelled", project_done=True)
    order = None
    if trigger.kind == TriggerKind.CONTRACT_SIGNED and trigger.provider != "api":
        order = change_orders.for_envelope(session, project.id, trigger.provider, trigger.ref)
    if trigger.kind == TriggerKind.CHANGE_ORDER:
        order = session.get(change_orders.ChangeOrder, uuid.UUID(trigger.ref))
    if order is not None:  # a change order's envelope signed, or one that needs no signature
        change_orders.apply(session, project, order, trigger, out, _maker(session, project))
        if project.tm_rule:  # a raised cap: the time waiting over the old one may bill now
            time_entries.bill_time(session, project, trigger, out, _maker(session, project))
    elif trigger.kind in (TriggerKind.TIME_LOGGED, TriggerKind.TM_PERIOD):
        time_entries.bill_time(
            session,
            project,
            trigger,
            out,
            _maker(session, project),
            store_only=project_start.waiting(project),
        )
    elif trigger.kind in (TriggerKind.DEAL_WON, TriggerKind.CONTRACT_SIGNED):
        stage = "deal_won" if trigger.kind == TriggerKind.DEAL_WON else "signature"
        if project.deposit_amount > 0 and project.deposit_on == stage:
            _bill_deposit(session, project, trigger, out)
        for staged in project.milestones:
            if staged.bill_on == stage:
                _bill_or_hold(session, project, staged, trigger, out)
    elif trigger.kind == TriggerKind.INVOICE_PAID:
        paid = _paid_stage(project, trigger.ref)
        if paid is None:
            return BillOutcome(
                outcome="nothing_to_bill", detail=f"invoice {trigger.ref} is not of this project"
            )
        if paid == "deposit" and project.start_on == "deposit_paid":
            project_start.start(session, project, trigger, out, _bill_milestone, _maker(session, project))
        for waiting in project.milestones:
            if waiting.bill_on == "after_paid" and waiting.after_key == paid:
                _bill_milestone(session, project, waiting, trigger, out)
    elif trigger.kind == TriggerKind.MILESTONE_DONE:
        milestone = next((m for m in project.milestones if m.key == trigger.milestone_key), None)
        if milestone is None:
            return BillOutcome(
                outcome="unknown_milestone", detail=f"project has no milestone {trigger.milestone_key!r}"
            )
        _bill_or_hold(session, project, milestone, trigger, out)
    else:
        return BillOutcome(outcome="nothing_to_bill", detail=f"unknown trigger kind {trigger.kind!r}")
    if out.invoices:
        out.outcome = "billed"
    elif "already billed" in out.detail:
        out.outcome = "already_billed"
    if project.milestones and not project.tm_rule and all(m.status == "billed" for m in project.milestones):
        project.status = "completed"
    out.project_done = project.status != "active"
    out.detail = out.detail.rstrip("; ")
    session.flush()
    return out


def summary(project: Project) -> dict[str, object]:
    """What is billed, what is pending, what is left: the numbers GET /projects/{id} shows."""
    billed = project.deposit_billed + sum(
        (m.amount - m.recouped for m in project.milestones if m.status == "billed"), Decimal(0)
    )
    pending = [m.key for m in project.milestones if m.status == "pending"]
    return {
        "billed": billed,
        "pending_milestones": pending,
        "left": project.contract_amount - billed,
        "deposit_outstanding": project.deposit_billed - project.deposit_recouped,
    }
