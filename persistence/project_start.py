"""Projects that start when their deposit is paid (``start_on: deposit_paid``).

Before the deposit invoice is paid in full nothing but the deposit bills: a milestone reported done is
kept with the event that completed it (``done_event``), time is stored but not billed, and the T&M
calendar has no timer. The deposit's payment reaches the project as the invoice workflow's own
``invoice-paid`` trigger (whichever source reported it: the API, Stripe, the books), heard once; it
starts the project, bills the milestones done meanwhile (in plan order) and the time over a threshold,
and asks for one email to the account owner (outbox key ``project-started:<project id>``). A retry of
that trigger finds its invoices (ids derive from the trigger) and the same email key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from persistence import time_entries
from persistence.models import Project, ProjectMilestone
from workflows.payloads import BillOutcome, ProjectEmail, ProjectTrigger

BillMilestone = Callable[[Session, Project, ProjectMilestone, ProjectTrigger, BillOutcome], None]


def waiting(project: Project) -> bool:
    """True while a ``deposit_paid`` project's deposit is unpaid."""
    return project.start_on == "deposit_paid" and project.started_at is None


def hold(milestone: ProjectMilestone, trigger: ProjectTrigger, out: BillOutcome) -> None:
    if milestone.status == "pending" and milestone.done_event is None:
        milestone.done_event = trigger.event_key
    out.detail += f"milestone {milestone.key} waits for the deposit to be paid; "


def owner_of(project: Project) -> str | None:
    return project.owner_email or project.customer.owner_email


def start(
    session: Session,
    project: Project,
    trigger: ProjectTrigger,
    out: BillOutcome,
    bill_milestone: BillMilestone,
    maker: time_entries.InvoiceMaker,
) -> None:
    """The deposit is paid in full: start billing (idempotent: a retry re-finds what it made)."""
    if project.started_at is None:
        project.started_at = datetime.now(UTC)
        out.detail += "deposit paid: billing starts; "
    out.started = True
    for milestone in sorted(project.milestones, key=lambda m: m.position):
        held = milestone.done_event is not None and milestone.status == "pending"
        if held or (milestone.status == "billed" and milestone.billed_event == trigger.event_key):
            bill_milestone(session, project, milestone, trigger, out)
    if project.tm_rule:
        time_entries.bill_time(session, project, trigger, out, maker)
    owner = owner_of(project)
    if owner:
        out.emails.append(
            ProjectEmail(
                key=f"project-started:{project.id}",
                kind="project_started",
                project_id=str(project.id),
                to=[owner],
            )
        )
    else:
        out.detail += "no account owner to tell; "
