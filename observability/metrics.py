"""Every invoiceflow metric, defined once (Prometheus text format through ``prometheus-client``).

Counters and histograms live in the process's default registry: the API process serves them at
``GET /metrics``, the worker at ``INVOICEFLOW_WORKER_METRICS_PORT`` next to the Temporal SDK's own
metrics. Values that are facts in PostgreSQL (inbox backlog, outbox backlog, sync failures waiting) are
not counted in memory: ``observability.collectors`` reads them at scrape time, so every replica reports
the same truth and a restart loses nothing.

Several processes serving one port (uvicorn ``--workers``, gunicorn) set ``PROMETHEUS_MULTIPROC_DIR``
before start: ``exposition()`` then merges every process's samples (prometheus-client's multiprocess
mode). PDF render processes record nothing themselves: the worker times each render around the pool call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.registry import Collector

T = TypeVar("T")
PREFIX = "invoiceflow"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RENDER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# -- API ------------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    f"{PREFIX}_http_requests",
    "HTTP requests answered, by route template (never the raw path) and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
WEBHOOK_DELIVERIES = Counter(
    f"{PREFIX}_webhook_deliveries",
    "Webhook deliveries by provider and outcome (accepted, duplicate, unmatched, ignored, refused, error);"
    " reason says why one was refused (signature, not_configured, malformed, stale).",
    ["provider", "outcome", "reason"],
)
APPROVAL_LINKS = Counter(
    f"{PREFIX}_approval_links",
    "Approval link decisions: used (a decision recorded) or refused, with the reason.",
    ["outcome", "reason"],
)

# -- worker ---------------------------------------------------------------------------------------
INVOICES_ISSUED = Counter(f"{PREFIX}_invoices_issued", "Invoices issued (numbered).")
EMAILS_SENT = Counter(
    f"{PREFIX}_emails_sent", "Emails accepted by the SMTP server, by template.", ["template"]
)
EMAILS_FAILED = Counter(
    f"{PREFIX}_emails_failed",
    "Emails refused for good (5xx, every recipient refused), by template.",
    ["template"],
)
REMINDERS_SENT = Counter(f"{PREFIX}_reminders_sent", "Payment reminders and dunning notices sent.")
PAYMENTS_RECORDED = Counter(f"{PREFIX}_payments_recorded", "Payments applied to invoices (not duplicates).")
LATE_FEES_CHARGED = Counter(f"{PREFIX}_late_fees_charged", "Late fees added to overdue invoices.")
RENDER_SECONDS = Histogram(
    f"{PREFIX}_pdf_render_seconds", "Time to render one PDF (invoice or credit note).", buckets=RENDER_BUCKETS
)
ACTIVITIES = Counter(
    f"{PREFIX}_activities",
    "Activity executions by type and outcome (completed, failed, retrying).",
    ["activity", "outcome"],
)
ACCOUNTING_CALLS = Counter(
    f"{PREFIX}_accounting_calls",
    "Calls to the accounting provider by provider, operation and outcome (ok, rate_limited, auth_expired,"
    " denied, rejected, transient).",
    ["provider", "operation", "outcome"],
)
EINVOICE_VALIDATION_FAILURES = Counter(
    f"{PREFIX}_einvoice_validation_failures",
    "E-invoices that failed validation before sending, by format (e.g. xrechnung, peppol-bis).",
    ["format"],
)

# Read from PostgreSQL at scrape time (observability.collectors); listed here so that the dashboard,
# the alert rules and their test know every name from one place.
INBOX_BACKLOG = f"{PREFIX}_inbox_backlog"
INBOX_OLDEST_AGE = f"{PREFIX}_inbox_oldest_undispatched_age_seconds"
INBOX_UNMATCHED = f"{PREFIX}_inbox_unmatched"
OUTBOX_BACKLOG = f"{PREFIX}_outbox_backlog"
OUTBOX_OLDEST_AGE = f"{PREFIX}_outbox_oldest_pending_age_seconds"
SYNC_FAILURES_WAITING = f"{PREFIX}_accounting_sync_failures_waiting"
GAUGES = (
    INBOX_BACKLOG,
    INBOX_OLDEST_AGE,
    INBOX_UNMATCHED,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    SYNC_FAILURES_WAITING,
)


# The Temporal SDK's own metrics (prefix ``temporal_``, durations in milliseconds) that the dashboard and
# alert rules use. Present on every worker scrape from its first task on:
SDK_METRICS = (
    "temporal_worker_task_slots_available",
    "temporal_worker_task_slots_used",
    "temporal_sticky_cache_size",
    "temporal_num_pollers",
    "temporal_workflow_task_schedule_to_start_latency_bucket",
    "temporal_activity_schedule_to_start_latency_bucket",
    "temporal_activity_execution_latency_count",
)
# Present once the event has happened (a failed workflow task, a failed activity attempt, a failed call):
SDK_EVENT_METRICS = (
    "temporal_sticky_cache_hit",
    "temporal_workflow_completed",
    "temporal_workflow_task_execution_failed",
    "temporal_activity_execution_failed",
    "temporal_request_failure",
)


def metric_names() -> set[str]:
    """Every series name invoiceflow exposes (counters with ``_total``, histograms with their parts)."""
    names: set[str] = set(GAUGES)
    for metric in (
        HTTP_REQUESTS,
        WEBHOOK_DELIVERIES,
        APPROVAL_LINKS,
        INVOICES_ISSUED,
        EMAILS_SENT,
        EMAILS_FAILED,
        REMINDERS_SENT,
        PAYMENTS_RECORDED,
        LATE_FEES_CHARGED,
        ACTIVITIES,
        ACCOUNTING_CALLS,
        EINVOICE_VALIDATION_FAILURES,
    ):
        names.add(f"{metric._name}_total")
    for histogram in (HTTP_LATENCY, RENDER_SECONDS):
        names |= {f"{histogram._name}_{part}" for part in ("bucket", "sum", "count")}
    return names


def timed(histogram: Histogram, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, its duration observed in ``histogram`` (whether it returns or raises)."""
    started = time.perf_counter()
    try:
        return fn(*args)
    finally:
        histogram.observe(time.perf_counter() - started)


def accounting_call(provider: str, method: str, path: str, status: int | str) -> None:
    """Count one HTTP call to a provider; ``status`` an HTTP status or the name of a transport failure."""
    ACCOUNTING_CALLS.labels(provider, f"{method.upper()} {_resource(path)}", _outcome(status)).inc()


def _outcome(status: int | str) -> str:
    if isinstance(status, str):
        return status
    if 200 <= status < 300:
        return "ok"
    return {429: "rate_limited", 401: "auth_expired", 403: "denied", 408: "transient"}.get(
        status, "transient" if status >= 500 else "rejected"
    )


def _resource(path: str) -> str:
    """The resource of a provider path without ids (``/v3/company/123/invoice`` → ``invoice``), so the
    label stays a handful of values."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    named = [p for p in parts if not any(c.isdigit() for c in p) or p.lower() in ("v2", "v3")]
    words = [p for p in named if p.lower() not in ("v2", "v3", "api", "accounting", "company")]
    return words[-1].lower() if words else "/"


def exposition(*extra: Collector, registry: CollectorRegistry | None = None) -> bytes:
    """The text a scrape gets: this process's (or, in multiprocess mode, every process's) metrics plus
    ``extra`` collectors evaluated now."""
    parts: list[bytes] = []
    if registry is None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        parts.append(generate_latest(merged))
    else:
        parts.append(generate_latest(registry or REGISTRY))
    if extra:
        scrape = CollectorRegistry(auto_describe=False)
        for collector in extra:
            scrape.register(collector)
        parts.append(generate_latest(scrape))
    return b"".join(parts)


def counter_value(samples: Iterable[object], name: str, **labels: str) -> float:
    """Sum of a family's samples matching ``labels`` (helper for tests and ``invoiceflow status``)."""
    total = 0.0
    for family in samples:
        for sample in getattr(family, "samples", []):
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


__all__ = ["CONTENT_TYPE_LATEST", "exposition", "metric_names", "accounting_call"]
