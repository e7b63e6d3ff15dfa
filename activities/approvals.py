"""Approval activities: which chain an invoice needs (rules evaluated against the database), and edits
to a rejected draft. The chain is computed once per revision and recorded in the workflow history, so
a rule changed later does not reroute an invoice already waiting."""

from __future__ import annotations

import uuid

from temporalio import activity

from activities.invoices import non_retryable
from billing.approval_rules import ApprovalStep, route
from billing.errors import MoneyError
from core.settings import Settings
from persistence import approval_rules as rules_repo
from persistence import invoices as repo
from persistence.db import session_scope
from workflows.payloads import ActivityName, ApprovalChain, ApprovalStepSpec, RevisionRequest, RouteRequest


def _step_spec(step: ApprovalStep, client_emails: list[str]) -> ApprovalStepSpec:
    """A routed step; a ``client_contact`` step adds the client's first email as an approver."""
    client = [client_emails[0].strip().lower()] if step.client_contact and client_emails else []
    approvers = list(step.approvers) + [e for e in client if e not in step.approvers]
    return ApprovalStepSpec(approvers=approvers, mode=step.mode, delegate=step.delegate, client=client)


class ApprovalActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._url = settings.require_database_url()

    @activity.defn(name=ActivityName.ROUTE_APPROVAL)
    def route_approval(self, request: RouteRequest) -> ApprovalChain:
        try:
            with session_scope(self._url) as session:
                invoice = repo.get_invoice(session, uuid.UUID(request.invoice_id), children=False)
                decision = route(
                    [rule for _, rule in rules_repo.load_all(session)],
                    rules_repo.facts_for_invoice(session, invoice),
                )
                repo.add_event(
                    session,
                    invoice.id,
                    "approval.routed",
                    actor="workflow",
                    data={
                        "rule": decision.rule or "",
                        "revision": str(invoice.revision),
                        "reasons": " | ".join(decision.reasons),
                    },
                    dedupe_key=f"invoice:{invoice.id}:routed:{invoice.revision}",
                )
                return ApprovalChain(
                    rule=decision.rule,
                    revision=invoice.revision,
                    steps=[_step_spec(s, invoice.customer.emails) for s in decision.steps],
                    remind_after_s=self._settings.approval_remind_after_hours * 3600,
                    escalate_after_s=self._settings.approval_escalate_after_hours * 3600,
                )
        except repo.InvoiceNotFound as exc:
            raise non_retryable(exc) from exc

    @activity.defn(name=ActivityName.REVISE_DRAFT)
    def revise_draft(self, request: RevisionRequest) -> int:
        try:
            with session_scope(self._url) as session:
                return repo.revise_draft(
                    session, uuid.UUID(request.invoice_id), request.revision, request.changes
                )
        except (repo.InvoiceNotFound, repo.InvalidInvoiceOperation, MoneyError) as exc:
            raise non_retryable(exc) from exc
