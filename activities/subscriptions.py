"""Database activities of the subscription workflow. Idempotent: a cycle's invoice has a deterministic
id, terms versions and history events are unique, so retries and replays change nothing twice."""

from __future__ import annotations

import uuid
from datetime import date

from temporalio import activity
from temporalio.exceptions import ApplicationError

from billing.errors import MoneyError
from core.settings import Settings
from persistence import subscriptions as repo
from persistence.db import session_scope
from workflows.payloads import (
    ActivityName,
    CycleInvoice,
    CycleInvoiceRequest,
    SubscriptionEvent,
    TermsChange,
)


class SubscriptionActivities:
    def __init__(self, settings: Settings) -> None:
        self._url = settings.require_database_url()

    @activity.defn(name=ActivityName.CREATE_CYCLE_INVOICE)
    def create_cycle_invoice(self, request: CycleInvoiceRequest) -> CycleInvoice:
        try:
            with session_scope(self._url) as session:
                return repo.create_cycle_invoice(
                    session,
                    uuid.UUID(request.subscription_id),
                    request.cycle,
                    date.fromisoformat(request.period_date),
                )
        except (repo.SubscriptionNotFound, MoneyError) as exc:
            raise ApplicationError(str(exc), type="InvalidSubscription", non_retryable=True) from exc

    @activity.defn(name=ActivityName.RECORD_SUBSCRIPTION_EVENT)
    def record_subscription_event(self, event: SubscriptionEvent) -> None:
        try:
            with session_scope(self._url) as session:
                repo.record_event(session, event)
        except repo.SubscriptionNotFound as exc:
            raise ApplicationError(str(exc), type="InvalidSubscription", non_retryable=True) from exc

    @activity.defn(name=ActivityName.ADD_SUBSCRIPTION_TERMS)
    def add_subscription_terms(self, change: TermsChange) -> None:
        try:
            with session_scope(self._url) as session:
                repo.add_terms(
                    session,
                    uuid.UUID(change.subscription_id),
                    change.version,
                    change.effective_from_cycle,
                    change.lines,
                )
        except MoneyError as exc:
            raise ApplicationError(str(exc), type="InvalidSubscription", non_retryable=True) from exc
