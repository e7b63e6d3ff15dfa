"""The approval gate: nothing is issued before sign-off. Rules pick a chain of steps; approvers get signed
links, undecided steps are reminded and escalated, a rejection sends the invoice back to draft.
"""

from __future__ import annotations

from datetime import date, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from billing.errors import MoneyError
    from billing.status import FINAL_STATUSES, InvoiceStatus
    from billing.totals import compute_totals, parse_lines
    from workflows import search_attributes as sa
    from workflows.payloads import (
        ActivityName,
        ApprovalChain,
        ApprovalLinkSpec,
        ApprovalStepSpec,
        ApproveInput,
        DecisionInput,
        DraftChanges,
        RevisionRequest,
        RouteRequest,
        SubmitInput,
    )

from workflows.invoice.base import InvoiceBase
from workflows.invoice.options import (
    APPROVAL_ROUTING_PATCH,
    EDIT_AFTER_REJECTION_PATCH,
)


class ApprovalGate(InvoiceBase):
    async def _approval_gate(self) -> None:
        """Nothing is issued before sign-off. Approval rules pick a chain of steps (any/all approvers,
        delegates); each approver gets a signed link; an undecided step is reminded, then escalated
        to its delegate; a rejection sends the invoice back to draft until it is submitted again.
        Without a matching rule, only ``requires_approval`` invoices wait, for an operator."""
        if not self._patched(APPROVAL_ROUTING_PATCH):
            # Invoices started before approval routing existed keep the behaviour they started with.
            await self._operator_gate()
            return
        if self._lean and self._input.approval_rules == 0:
            # The API read the rule set when it started this workflow and found no rule: none can
            # match, so nothing is routed (an invoice started with rules in force, or by a subscription,
            # an estimate or a project, routes through the database below).
            await self._operator_gate()
            return
        while self._status not in FINAL_STATUSES:
            chain = await self._db_step(
                ActivityName.ROUTE_APPROVAL,
                RouteRequest(invoice_id=self._input.invoice_id),
                result_type=ApprovalChain,
                summary="Route approval",
            )
            self._revision = chain.revision
            if not chain.steps:
                await self._operator_gate()
                return
            self._note("approval.routed", f"{chain.rule}: {len(chain.steps)} step(s)")
            if await self._run_chain(chain) != "rejected":
                return
            await self._back_to_draft()

    async def _operator_gate(self) -> None:
        if not self._input.requires_approval:
            return
        await self._persist_status(InvoiceStatus.PENDING_APPROVAL, event="awaiting_approval")
        await workflow.wait_condition(lambda: self._approved or self._status in FINAL_STATUSES)

    async def _run_chain(self, chain: ApprovalChain) -> str:
        self._chain = chain
        await self._persist_status(
            InvoiceStatus.PENDING_APPROVAL, event=f"awaiting_approval.r{chain.revision}"
        )
        for index, step in enumerate(chain.steps):
            self._step, self._approvals, self._rejection, self._escalated = index, set(), None, False
            workflow.set_current_details(
                f"Approval step {index + 1}/{len(chain.steps)}: {', '.join(step.approvers)} ({step.mode})"
            )
            workflow.upsert_search_attributes([sa.APPROVAL_STEP.value_set(f"{index + 1}/{len(chain.steps)}")])
            await self._ask(chain, index, step.approvers, reminder=False)
            started, reminded = workflow.now(), False
            while not self._step_settled(step):
                deadlines = []
                if not reminded:
                    deadlines.append(started + timedelta(seconds=chain.remind_after_s))
                if step.delegate and not self._escalated:
                    deadlines.append(started + timedelta(seconds=chain.escalate_after_s))
                timeout = (min(deadlines) - workflow.now()) if deadlines else None
                try:
                    await workflow.wait_condition(
                        lambda step=step: self._step_settled(step),  # type: ignore[misc]
                        timeout=max(timeout, timedelta(0)) if timeout is not None else None,
                    )
                except TimeoutError:
                    now = workflow.now()
                    if not reminded and now >= started + timedelta(seconds=chain.remind_after_s):
                        reminded = True
                        undecided = [a for a in step.approvers if a not in self._approvals]
                        await self._ask(chain, index, undecided, reminder=True)
                    if (
                        step.delegate
                        and not self._escalated
                        and now >= started + timedelta(seconds=chain.escalate_after_s)
                    ):
                        self._escalated = True
                        self._note("approval.escalated", f"step {index + 1} to {step.delegate}")
                        await self._ask(chain, index, [step.delegate], reminder=False)
            if self._status in FINAL_STATUSES or self._rejection is not None:
                workflow.upsert_search_attributes([sa.APPROVAL_STEP.value_unset()])
                return "closed" if self._status in FINAL_STATUSES else "rejected"
        workflow.upsert_search_attributes([sa.APPROVAL_STEP.value_unset()])
        workflow.set_current_details("")
        self._chain = None
        return "approved"

    def _step_settled(self, step: ApprovalStepSpec) -> bool:
        if self._status in FINAL_STATUSES or self._rejection is not None:
            return True
        if self._escalated and step.delegate in self._approvals:
            return True  # the delegate decides for the whole step
        if step.mode == "all":
            return set(step.approvers) <= self._approvals
        return bool(self._approvals)

    async def _ask(self, chain: ApprovalChain, index: int, approvers: list[str], *, reminder: bool) -> None:
        for approver in approvers:
            suffix = ":reminder" if reminder else ""
            await self._send_email(
                "approval_request",
                key=f"invoice:{self._input.invoice_id}:approval:r{chain.revision}:s{index}:{approver}{suffix}",
                to=[approver],
                approval=ApprovalLinkSpec(
                    revision=chain.revision,
                    step=index,
                    approver=approver,
                    reminder=reminder,
                    of_steps=len(chain.steps),
                ),
            )

    async def _back_to_draft(self) -> None:
        """A rejection: back to draft with the comment to the account owner; every outstanding link is
        superseded (new revision); wait for the draft to be submitted again (or voided)."""
        assert self._rejection is not None
        approver, comment = self._rejection
        await self._persist_status(InvoiceStatus.DRAFT, event=f"rejected.r{self._revision}")
        await self._revise(DraftChanges(actor="workflow"))
        await self._send_email(
            "approval_rejected",
            key=f"invoice:{self._input.invoice_id}:rejected:r{self._revision}",
            comment=comment,
            approval=ApprovalLinkSpec(revision=self._revision, step=self._step, approver=approver),
        )
        self._chain, self._rejection, self._awaiting_submit = None, None, True
        workflow.set_current_details("Rejected: waiting for the draft to be edited and submitted")
        await workflow.wait_condition(lambda: not self._awaiting_submit or self._status in FINAL_STATUSES)

    async def _revise(self, changes: DraftChanges) -> None:
        revision = self._revision + 1
        await self._db_step(
            ActivityName.REVISE_DRAFT,
            RevisionRequest(invoice_id=self._input.invoice_id, revision=revision, changes=changes),
            result_type=int,
        )
        self._revision = revision

    def _awaiting_approvers(self) -> list[str]:
        if self._chain is None or self._status != InvoiceStatus.PENDING_APPROVAL:
            return []
        step = self._chain.steps[self._step]
        waiting = [a for a in step.approvers if a not in self._approvals]
        if self._escalated and step.delegate:
            waiting.append(step.delegate)
        return waiting

    # ------------------------------------------------------------------ what the handlers accept

    def _check_decide(self, decision: DecisionInput) -> None:
        chain = self._chain
        if self._status != InvoiceStatus.PENDING_APPROVAL or chain is None:
            raise ValueError(f"invoice is {self._status}; it is not waiting for an approval decision")
        if decision.decision not in ("approve", "reject"):
            raise ValueError("decision: 'approve' or 'reject'")
        if decision.revision is not None and decision.revision != self._revision:
            raise ValueError("superseded: the invoice changed since this approval was requested")
        if decision.step is not None and decision.step != self._step:
            raise ValueError("superseded: this approval step is no longer the current one")
        step = chain.steps[self._step]
        approver = decision.approver.strip().lower()
        eligible = set(step.approvers) | ({step.delegate} if self._escalated and step.delegate else set())
        if approver not in eligible:
            raise ValueError(f"{approver} is not an approver of step {self._step + 1}")
        if approver in self._approvals or self._rejection is not None or self._step_settled(step):
            raise ValueError("already decided")
        if decision.decision == "reject" and not decision.comment.strip():
            raise ValueError("comment: a rejection needs a reason")

    def _check_edit(self, changes: DraftChanges) -> None:
        if not self._awaiting_submit and not self._rejection_pending():
            raise ValueError(f"invoice is {self._status}; only a rejected draft can be edited")
        if changes.lines is not None:
            try:
                compute_totals(parse_lines(changes.lines), self._input.currency)
            except MoneyError as exc:
                raise ValueError(str(exc)) from None
        if changes.due_date is not None:
            try:
                date.fromisoformat(changes.due_date)
            except ValueError:
                raise ValueError(f"due_date: {changes.due_date!r} is not a date") from None

    def _check_submit(self, request: SubmitInput) -> None:
        if not self._awaiting_submit and not self._rejection_pending():
            raise ValueError(f"invoice is {self._status}; only a rejected draft can be submitted again")

    def _check_approve(self, request: ApproveInput) -> None:
        if self._status != InvoiceStatus.PENDING_APPROVAL or self._approved:
            raise ValueError(f"invoice is {self._status}; only an invoice pending approval can be approved")
        if self._chain is not None:
            raise ValueError(
                "this invoice waits for its approval chain; approvers decide (POST /invoices/{id}/decisions)"
            )

    def _rejection_pending(self) -> bool:
        """A rejection is accepted but the return to draft is still under way (the status may already
        say draft): edits and a resubmission wait for it instead of being refused."""
        return self._rejection is not None and not self._awaiting_submit

    async def _await_draft(self) -> None:
        if self._awaiting_submit:
            return
        self._patched(EDIT_AFTER_REJECTION_PATCH)
        await workflow.wait_condition(lambda: self._awaiting_submit or self._status in FINAL_STATUSES)
        if not self._awaiting_submit:
            raise ApplicationError(
                f"invoice is {self._status}; it is no longer a draft", type="InvoiceClosed"
            )
