"""Worker interceptor: log context, one log line per side effect, and the business counters.

Every activity runs with its context bound for every log line it writes (activity type, attempt,
workflow id and run id, and the invoice id from its input or its workflow id), ends with one line saying
what it did, and moves the counters its result proves: an ``IssuedInvoice`` is an invoice issued, an
``EmailResult`` with status ``sent`` an email sent, a ``PaymentOutcome`` that is not a duplicate a
payment. Reading results instead of editing each activity keeps the counting in one place, and counts
only what happened: a skipped reminder or an idempotent replay of a payment moves nothing."""

from __future__ import annotations

import logging
import time
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from observability import metrics

log = logging.getLogger("invoiceflow.activity")
REMINDER_KINDS = {"reminder", "dunning_notice"}


def count_result(activity_type: str, args: tuple[Any, ...], result: Any) -> dict[str, Any]:
    """Move the counters ``result`` proves; return the fields worth logging about it."""
    kind = type(result).__name__
    if kind == "IssuedInvoice":
        metrics.INVOICES_ISSUED.inc()
        return {"number": result.number, "total": result.total, "currency": result.currency}
    if kind == "EmailResult":
        template = str(getattr(args[0], "kind", "unknown")) if args else "unknown"
        if result.status == "sent":
            metrics.EMAILS_SENT.labels(template).inc()
            if template in REMINDER_KINDS:
                metrics.REMINDERS_SENT.inc()
        elif result.status == "failed":
            metrics.EMAILS_FAILED.labels(template).inc()
        return {"template": template, "email_status": result.status, "message_id": result.message_id}
    if kind == "PaymentOutcome":
        if not result.duplicate:
            metrics.PAYMENTS_RECORDED.inc()
        return {
            "duplicate": result.duplicate,
            "invoice_status": result.status,
            "amount_due": result.amount_due,
        }
    if kind == "LateFeeOutcome":
        if result.applied:
            metrics.LATE_FEES_CHARGED.inc()
        return {"applied": result.applied, "amount": result.amount}
    return {}


def _invoice_id(args: tuple[Any, ...], workflow_id: str) -> str | None:
    for arg in args[:1]:
        value = getattr(arg, "invoice_id", None)
        if isinstance(value, str) and value:
            return value
    if workflow_id.startswith("invoice-"):
        return workflow_id.removeprefix("invoice-")
    return None


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        context = {
            "activity_type": info.activity_type,
            "attempt": info.attempt,
            "workflow_id": info.workflow_id,
            "run_id": info.workflow_run_id,
            "invoice_id": _invoice_id(tuple(input.args), info.workflow_id or ""),
        }
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(**{k: v for k, v in context.items() if v is not None}):
            try:
                result = await super().execute_activity(input)
            except BaseException as exc:
                final = isinstance(exc, ApplicationError) and exc.non_retryable
                outcome = "failed" if final else "retrying"
                metrics.ACTIVITIES.labels(info.activity_type, outcome).inc()
                log.warning(
                    "activity.%s",
                    outcome,
                    extra={
                        "error": f"{type(exc).__name__}: {exc}"[:500],
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )
                raise
            metrics.ACTIVITIES.labels(info.activity_type, "completed").inc()
            fields = count_result(info.activity_type, tuple(input.args), result)
            log.info(
                "activity.completed",
                extra={"duration_ms": round((time.perf_counter() - started) * 1000, 1), **fields},
            )
            return result


class ObservabilityInterceptor(Interceptor):
    """Put first in the worker's interceptors so its context covers the others."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)
