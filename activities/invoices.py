"""Database activities of the invoice workflow: issue, status changes, payments, void/write-off.

Sync activities on the worker's thread pool (SQLAlchemy + psycopg are blocking). Each one is a single
transaction and idempotent, so Temporal's retries are safe.
"""

from __future__ import annotations

import uuid

from temporalio import activity
from temporalio.exceptions import ApplicationError

from billing.errors import MoneyError
from billing.status import InvoiceStatus
from core.settings import Settings
from persistence import invoices as repo
from persistence.db import session_scope
from workflows.payloads import (
    ActivityName,
    ApplyPaymentRequest,
    CloseRequest,
    EventRecord,
    IssuedInvoice,
    IssueRequest,
    PaymentOutcome,
    StatusChange,
)


def non_retryable(exc: Exception) -> ApplicationError:
    """Errors no retry can fix: surface them to the workflow at once, typed for its retry policy."""
    kind = "InvoiceNotFound" if isinstance(exc, repo.InvoiceNotFound) else "InvalidInvoice"
    return ApplicationError(str(exc), type=kind, non_retryable=True)


class InvoiceActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._url = settings.require_database_url()

    @activity.defn(name=ActivityName.ISSUE_INVOICE)
    def issue_invoice(self, request: IssueRequest) -> IssuedInvoice:
        try:
            with session_scope(self._url) as session:
                return repo.issue(
                    session,
                    uuid.UUID(request.invoice_id),
                    as_of=request.as_of,
                    number_prefix=self._settings.invoice_number_prefix,
                    default_offsets=self._settings.reminder_offsets(),
                    send_hour=self._settings.reminder_send_hour,
                )
        except (repo.InvoiceNotFound, repo.InvalidInvoiceOperation, MoneyError) as exc:
            raise non_retryable(exc) from exc

    @activity.defn(name=ActivityName.SET_STATUS)
    def set_invoice_status(self, change: StatusChange) -> None:
        try:
            with session_scope(self._url) as session:
                repo.set_status(
                    session,
                    uuid.UUID(change.invoice_id),
                    InvoiceStatus(change.status),
                    actor=change.actor,
                    event=change.event or f"status.{change.status}",
                    dedupe_key=change.dedupe_key,
                    detail=change.detail,
                )
        except repo.InvoiceNotFound as exc:
            raise non_retryable(exc) from exc

    @activity.defn(name=ActivityName.RECORD_EVENT)
    def record_invoice_event(self, record: EventRecord) -> None:
        with session_scope(self._url) as session:
            repo.add_event(
                session,
                uuid.UUID(record.invoice_id),
                record.kind,
                actor=record.actor,
                data=dict(record.data),
                dedupe_key=record.dedupe_key,
            )

    @activity.defn(name=ActivityName.APPLY_PAYMENT)
    def apply_payment(self, request: ApplyPaymentRequest) -> PaymentOutcome:
        try:
            with session_scope(self._url) as session:
                return repo.apply_payment(
                    session,
                    uuid.UUID(request.invoice_id),
                    request.payment,
                    past_due=request.past_due,
                    received_at=request.received_at,
                )
        except (repo.InvoiceNotFound, repo.InvalidInvoiceOperation, MoneyError) as exc:
            raise non_retryable(exc) from exc

    @activity.defn(name=ActivityName.CLOSE_INVOICE)
    def close_invoice(self, request: CloseRequest) -> None:
        try:
            with session_scope(self._url) as session:
                repo.close(
                    session,
                    uuid.UUID(request.invoice_id),
                    InvoiceStatus(request.status),
                    reason=request.reason,
                    actor=request.actor,
                )
        except (repo.InvoiceNotFound, repo.InvalidInvoiceOperation) as exc:
            raise non_retryable(exc) from exc
