"""What every part of the invoice workflow shares: its state (declared here, set in
``InvoiceWorkflow.__init__``) and the side effects all parts use: email, status, search attributes, the
timeline.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ApplicationError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from billing.status import FINAL_STATUSES, InvoiceStatus, settle_status
    from workflows import search_attributes as sa
    from workflows.payloads import (
        AccountingAction,
        AccountingSyncRequest,
        ActivityName,
        ApprovalChain,
        ApprovalLinkSpec,
        CloseRequest,
        EmailRequest,
        EmailResult,
        HoldSpec,
        InvoiceState,
        InvoiceWorkflowInput,
        IssuedInvoice,
        ProjectTrigger,
        StatusChange,
        TimelineEntry,
        TriggerKind,
        project_workflow_id,
    )

from workflows.invoice.options import (
    BOOKS_WRITE_OFF_PATCH,
    DB_RETRY,
    DB_TIMEOUT,
    EMAIL_HEARTBEAT,
    EMAIL_TIMEOUT,
    LOCAL_DB_RETRY,
    PROJECT_PAID_PATCH,
    SIDE_EFFECT_RETRY,
)

T = TypeVar("T")


class InvoiceBase:
    """State every part reads; ``InvoiceWorkflow.__init__`` sets it (Temporal constructs the workflow
    there)."""

    _input: InvoiceWorkflowInput
    _status: InvoiceStatus
    _issued: IssuedInvoice | None
    _total: Decimal | None
    _amount_paid: Decimal
    _credit: Decimal
    _credited: Decimal
    _past_due: bool
    _next_step: int
    _pdf_key: str | None
    _timeline: list[TimelineEntry]
    _approved: bool
    _revision: int
    _chain: ApprovalChain | None
    _step: int
    _approvals: set[str]
    _rejection: tuple[str, str] | None
    _escalated: bool
    _awaiting_submit: bool
    _lock: asyncio.Lock
    _sync_enabled: bool
    _sync_queue: list[AccountingSyncRequest]
    _sync_status: str
    _sync_error: str
    _sync_retry: bool
    _holds: dict[str, HoldSpec]
    _ended_holds: set[str]
    _held_since: datetime | None
    _wake: bool
    _next_fee: int
    _einvoice_retry: bool
    _einvoice_errors: list[str]
    _sent_attach: str | None
    _resends: set[str]
    _lean: bool  # LEAN_LIFE_PATCH: database steps as local activities (see ``_db_step``)

    if TYPE_CHECKING:  # provided by the parts (BooksSync, DunningClock, ApprovalGate) the workflow combines

        def _queue_sync(
            self, action: str, payment_id: str | None = None, credit_note_id: str | None = None
        ) -> None: ...

        def _next_deadline(self) -> datetime | None: ...

        def _awaiting_approvers(self) -> list[str]: ...

    def _amount_due(self) -> Decimal:
        if self._total is None:
            return Decimal(0)
        return max(self._total - self._amount_paid - self._credited, Decimal(0))

    def _patched(self, patch: str) -> bool:
        """``workflow.patched`` for the patches older than the lean life: every lean history has them all,
        so it takes their paths without another marker (each marker also costs an upsert of Temporal's
        ``TemporalChangeVersion`` search attribute, a visibility write on the server)."""
        return self._lean or workflow.patched(patch)

    async def _db_step(
        self, activity: str, arg: Any, *, result_type: type[T] | None = None, summary: str | None = None
    ) -> T:
        """A short database step (one transaction, idempotent by key): issue, status write, timeline
        event, routing, payment.

        In lean histories it runs first as a local activity, inside the workflow task that asked for it:
        the server schedules no activity task and no workflow task for its result, and its timeout and
        a few quick retries still apply (``LOCAL_DB_RETRY``). A step that still fails (bad data, a
        database outage) then runs as a regular activity under ``DB_RETRY``, without limit, where an
        operator sees it pending with its error and can retry it (``GET /invoices/{id}`` problems); the
        step is idempotent, so running it again is safe. Renders, emails, e-invoices and books syncs
        always stay regular activities: they take seconds to minutes, heartbeat, wait on providers'
        rate limits, and must be visible while pending."""
        if self._lean:
            try:
                local = await workflow.execute_local_activity(
                    activity,
                    arg,
                    result_type=result_type,
                    start_to_close_timeout=DB_TIMEOUT,
                    retry_policy=LOCAL_DB_RETRY,
                    summary=summary,
                )
                return local  # type: ignore[no-any-return]
            except CancelledError:
                raise
            except FailureError:
                # Also when no retry can fix it: the regular activity then fails at once, exactly as
                # before (an ActivityError with its cause; a local one raises the bare cause).
                pass
        result = await workflow.execute_activity(
            activity,
            arg,
            result_type=result_type,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
            summary=summary,
        )
        return result  # type: ignore[no-any-return]

    async def _send_email(
        self,
        kind: str,
        *,
        key: str,
        offset_days: int = 0,
        attach_pdf_key: str | None = None,
        to: list[str] | None = None,
        approval: ApprovalLinkSpec | None = None,
        comment: str = "",
        credit_note_id: str | None = None,
        template: str = "",
        tone: str = "",
        audience: str = "",
        recipients: list[str] | None = None,
        step_index: int | None = None,
    ) -> EmailResult:
        result = await workflow.execute_activity(
            ActivityName.SEND_EMAIL,
            EmailRequest(
                invoice_id=self._input.invoice_id,
                kind=kind,
                key=key,
                offset_days=offset_days,
                attach_pdf_key=attach_pdf_key,
                to=to,
                approval=approval,
                comment=comment,
                credit_note_id=credit_note_id,
                template=template,
                tone=tone,
                audience=audience,
                recipients=list(recipients or []),
                step_index=step_index,
            ),
            result_type=EmailResult,
            start_to_close_timeout=EMAIL_TIMEOUT,
            heartbeat_timeout=EMAIL_HEARTBEAT,
            retry_policy=SIDE_EFFECT_RETRY,
            summary=f"Email: {kind}",
        )
        self._note(f"email.{kind}", f"{result.status} {result.detail}".strip())
        return result

    async def _settle(self, *, event: str) -> None:
        """Recompute the status from money and time, persist it if it changed, publish it."""
        assert self._total is not None
        status = settle_status(
            total=self._total,
            amount_paid=self._amount_paid,
            past_due=self._past_due,
            amount_credited=self._credited,
        )
        if status != self._status:
            await self._persist_status(status, event=event)

    async def _persist_status(self, status: InvoiceStatus, *, event: str, actor: str = "workflow") -> None:
        await self._db_step(
            ActivityName.SET_STATUS,
            StatusChange(
                invoice_id=self._input.invoice_id,
                status=str(status),
                actor=actor,
                event=event,
                dedupe_key=f"invoice:{self._input.invoice_id}:status:{status}:{event}",
            ),
        )
        self._status = status
        self._note(f"status.{status}", event)
        self._publish()

    def _publish(self) -> None:
        """Search attributes for the Temporal UI: ids, status and amounts only, never names."""
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.INVOICE_STATUS.value_set(str(self._status)),
            sa.CUSTOMER_ID.value_set(self._input.customer_id),
            sa.CURRENCY.value_set(self._input.currency),
        ]
        if self._issued is not None:
            due = date.fromisoformat(self._issued.due_date)
            updates += [
                sa.INVOICE_NUMBER.value_set(self._issued.number),
                # Double for filtering and sorting in the UI; the exact amount lives in PostgreSQL.
                sa.AMOUNT_DUE.value_set(float(self._amount_due())),
                sa.DUE_DATE.value_set(datetime(due.year, due.month, due.day, tzinfo=UTC)),
            ]
        workflow.upsert_search_attributes(updates)

    def _note(self, kind: str, detail: str = "") -> None:
        self._timeline.append(TimelineEntry(at=workflow.now(), kind=kind, detail=detail))

    async def _close(self, status: InvoiceStatus, reason: str, actor: str) -> None:
        await self._db_step(
            ActivityName.CLOSE_INVOICE,
            CloseRequest(invoice_id=self._input.invoice_id, status=str(status), reason=reason, actor=actor),
        )
        self._status = status
        self._note(f"status.{status}", reason)
        self._publish()
        if status == InvoiceStatus.VOID:
            self._queue_sync(AccountingAction.VOID)
        elif (
            status == InvoiceStatus.UNCOLLECTIBLE
            and self._sync_enabled
            and self._patched(BOOKS_WRITE_OFF_PATCH)
        ):
            self._queue_sync(AccountingAction.WRITE_OFF)  # a bad-debt credit for what was still due

    def _snapshot(self) -> InvoiceState:
        """What the ``state`` query and every Update return: status, money, plan and timeline."""
        next_at = None
        if self._issued is not None and self._status not in FINAL_STATUSES:
            next_at = self._next_deadline()
        return InvoiceState(
            invoice_id=self._input.invoice_id,
            status=str(self._status),
            number=self._issued.number if self._issued else None,
            currency=self._input.currency,
            total=str(self._total) if self._total is not None else None,
            amount_paid=str(self._amount_paid),
            amount_due=str(self._amount_due()) if self._total is not None else None,
            credit=str(self._credit),
            due_date=self._issued.due_date if self._issued else None,
            next_reminder_at=next_at,
            timeline=list(self._timeline),
            revision=self._revision,
            approval_rule=self._chain.rule if self._chain else None,
            approval_step=self._step + 1 if self._chain else None,
            approval_steps=len(self._chain.steps) if self._chain else None,
            awaiting_approvers=self._awaiting_approvers(),
            accounting_status=self._sync_status,
            accounting_error=self._sync_error,
            amount_credited=str(self._credited),
            holds=list(self._holds.values()),
            reminders=list(self._issued.reminders) if self._issued else [],
            reminders_sent=self._next_step,
        )

    async def _tell_project_paid(self) -> None:
        """A paid invoice of a project may bill the project's next stage (a milestone ``after_paid``): the
        project hears it once, whichever source (API, Stripe, the books) reported the last payment."""
        if self._issued is None or not self._issued.project_id or not self._patched(PROJECT_PAID_PATCH):
            return
        trigger = ProjectTrigger(
            event_key=f"invoice-paid:{self._input.invoice_id}",
            kind=TriggerKind.INVOICE_PAID,
            provider="invoiceflow",
            ref=self._input.invoice_id,
            actor="workflow",
        )
        project = workflow.get_external_workflow_handle(project_workflow_id(self._issued.project_id))
        try:
            await project.signal("trigger", trigger)
        except ApplicationError as exc:  # the project's workflow has ended: nothing is left to bill
            self._note("project.not_told", exc.message)
        else:
            self._note("project.told", f"paid: {self._issued.project_id}")
