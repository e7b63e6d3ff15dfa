"""Retry policies, timeouts and patch markers of the invoice workflow, in one place."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from billing.status import InvoiceStatus
    from workflows.payloads import ACCOUNTING_VALIDATION_ERROR

# Database steps: a PostgreSQL outage should stall the invoice, never fail it, so retry without limit.
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["InvoiceNotFound", "InvalidInvoice"],
)
# The same steps as local activities (lean histories): a few quick tries inside the workflow task; a step
# still failing then runs as a regular activity under DB_RETRY, where an operator sees it pending with its
# error (GET /invoices/{id} problems, the Temporal UI) and can retry it at once.
LOCAL_DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_attempts=3,
    non_retryable_error_types=DB_RETRY.non_retryable_error_types,
)
# Rendering and email can fail on things an operator fixes (a template, SMTP credentials): keep retrying,
# slowly, and the pending activity shows the error in the Temporal UI meanwhile.
SIDE_EFFECT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["InvoiceNotFound"],
)
DB_TIMEOUT = timedelta(seconds=30)
RENDER_TIMEOUT = timedelta(minutes=2)
EMAIL_TIMEOUT = timedelta(minutes=1)
EMAIL_HEARTBEAT = timedelta(seconds=10)

OPEN_STATES = (InvoiceStatus.OPEN, InvoiceStatus.OVERDUE, InvoiceStatus.PARTIALLY_PAID)
# Marks histories that route approvals through rules; older ones replay without it.
APPROVAL_ROUTING_PATCH = "approval-routing-v1"
# Marks histories that sync to accounting; invoices started before keep running without it.
ACCOUNTING_SYNC_PATCH = "accounting-sync-v1"
# Accounting APIs: 429s wait for the provider's Retry-After (the activity sets next_retry_delay), 5xx and
# timeouts back off; a validation error is final until an operator fixes the mapping and retries.
ACCOUNTING_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=30),
    non_retryable_error_types=[ACCOUNTING_VALIDATION_ERROR, "InvoiceNotFound"],
)
ACCOUNTING_TIMEOUT = timedelta(minutes=2)
# The sync heartbeats every 2 s: a worker killed mid-call is noticed in 10 s, not at the 2-minute timeout.
# (Timeouts are not part of replay's determinism check, so recorded histories replay unchanged.)
ACCOUNTING_HEARTBEAT = timedelta(seconds=10)
# Marks histories that issued a credit note (the Update is new; the marker documents the code path).
CREDIT_NOTES_PATCH = "credit-notes-v1"
# Marks histories that recorded a refund of an open invoice's payment.
REFUNDS_PATCH = "refunds-v1"
# Marks histories in which a dunning hold (dispute, payment in flight) paused the reminders.
HOLDS_PATCH = "dunning-holds-v1"
# Marks histories in which a paid invoice of a project told the project (a milestone may bill after it).
PROJECT_PAID_PATCH = "project-paid-trigger-v1"
# Marks histories that charge a dunning policy's late fee.
LATE_FEE_PATCH = "dunning-late-fee-v1"
# Marks histories whose refunds of an open invoice's payments are synced to the books.
BOOKS_REFUND_PATCH = "books-refund-v1"
# Marks histories whose write-off (uncollectible) reaches the books as a bad-debt credit.
BOOKS_WRITE_OFF_PATCH = "books-write-off-v1"
# Marks histories of the lean life: short database steps (issue, status writes, timeline events, routing,
# payments) run as local activities, routing is skipped when the API started the invoice with no approval
# rule in force, the e-invoice step when the customer takes none (known at issue), and the search
# attributes wait for the status change they describe. Older histories replay the regular activities.
LEAN_LIFE_PATCH = "lean-life-v1"
# Marks histories in which an edit or resubmission arrived while a rejection was still returning the
# invoice to draft (it waited instead of being refused).
EDIT_AFTER_REJECTION_PATCH = "edit-after-rejection-v1"
# Marks histories in which an operator had the invoice email sent again (the resend Update).
RESEND_PATCH = "invoice-resend-v1"
# Marks histories in which an open invoice, about to wait on its dunning clock, continued as new: the run
# that wakes holds a few events instead of its whole issue (see ``DunningClock._park``).
PARK_PATCH = "dunning-park-continue-as-new-v1"
# A run continues as new before a wait only past this many events (the run a continue-as-new starts holds
# about 5), and only before a wait longer than PARK_MIN_WAIT (a deadline that close finds it still cached).
PARK_AFTER_EVENTS = 20
PARK_MIN_WAIT = timedelta(minutes=5)
