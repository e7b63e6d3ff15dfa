"""Gauges read from PostgreSQL when Prometheus scrapes: the backlogs are facts in the database.

Counting them in memory would be wrong twice over: each API replica or worker would see only its own
part, and a restart would reset them. A scrape costs three indexed aggregate queries; a failing
database yields no sample (the scrape still answers, ``/readyz`` says what is wrong)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text

from observability import metrics
from persistence.db import session_scope
from persistence.models import AccountingSync, OutboxEntry, WebhookEvent

log = logging.getLogger("invoiceflow.metrics")
STATEMENT_TIMEOUT = "set local statement_timeout = '2s'"


def _age(oldest: datetime | None) -> float:
    return max(0.0, (datetime.now(UTC) - oldest).total_seconds()) if oldest else 0.0


class InboxCollector(Collector):
    """The webhook inbox (served by the API): events waiting for the dispatcher, the oldest one's age,
    and events no project claimed (an operator replays those)."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url

    def collect(self) -> Iterator[Metric]:
        try:
            with session_scope(self._url) as session:
                session.execute(text(STATEMENT_TIMEOUT))
                waiting, oldest = session.execute(
                    select(func.count(), func.min(WebhookEvent.received_at)).where(
                        WebhookEvent.status == "received"
                    )
                ).one()
                unmatched = session.scalar(
                    select(func.count()).select_from(WebhookEvent).where(WebhookEvent.status == "unmatched")
                )
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the database does
            log.warning("inbox metrics unavailable: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily(
            metrics.INBOX_BACKLOG, "Webhook events accepted, not yet handed to Temporal.", waiting
        )
        yield GaugeMetricFamily(
            metrics.INBOX_OLDEST_AGE,
            "Age of the oldest webhook event not yet handed to Temporal.",
            _age(oldest),
        )
        yield GaugeMetricFamily(metrics.INBOX_UNMATCHED, "Webhook events no project claimed.", unmatched or 0)


class WorkerCollector(Collector):
    """Side effects not yet done (the email outbox) and accounting syncs refused by the provider,
    waiting for someone to fix the mapping (served by the worker)."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url

    def collect(self) -> Iterator[Metric]:
        try:
            with session_scope(self._url) as session:
                session.execute(text(STATEMENT_TIMEOUT))
                backlog, oldest = session.execute(
                    select(func.count(), func.min(OutboxEntry.created_at)).where(
                        OutboxEntry.status.in_(("pending", "sending"))
                    )
                ).one()
                failures = session.execute(
                    select(AccountingSync.provider, func.count())
                    .where(AccountingSync.status == "sync_failed")
                    .group_by(AccountingSync.provider)
                ).all()
        except Exception as exc:  # noqa: BLE001
            log.warning("worker metrics unavailable: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily(metrics.OUTBOX_BACKLOG, "Outbox rows (emails) not yet done.", backlog)
        yield GaugeMetricFamily(
            metrics.OUTBOX_OLDEST_AGE, "Age of the oldest outbox row not yet done.", _age(oldest)
        )
        waiting = GaugeMetricFamily(
            metrics.SYNC_FAILURES_WAITING,
            "Invoices and payments the accounting provider refused, waiting for an operator.",
            labels=["provider"],
        )
        for provider, count in failures:
            waiting.add_metric([provider], count)
        if not failures:
            waiting.add_metric(["none"], 0)
        yield waiting
