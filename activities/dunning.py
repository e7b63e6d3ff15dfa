"""Dunning activities of the invoice workflow: record a hold, at its end decide what happens to
the reminders it held back, charge a late fee. One transaction each, idempotent by hold id, step and
fee sequence."""

from __future__ import annotations

from temporalio import activity

from activities.invoices import non_retryable
from billing.errors import MoneyError
from core.settings import Settings
from persistence import dunning
from persistence import invoices as repo
from persistence.db import session_scope
from workflows.payloads import (
    ActivityName,
    LateFeeOutcome,
    LateFeeRequest,
    PlaceHoldRequest,
    ReleaseHoldsRequest,
    ReleasePlan,
)


class DunningActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._url = settings.require_database_url()

    @activity.defn(name=ActivityName.PLACE_DUNNING_HOLD)
    def place_dunning_hold(self, request: PlaceHoldRequest) -> None:
        with session_scope(self._url) as session:
            dunning.place_hold(session, request)

    @activity.defn(name=ActivityName.RELEASE_DUNNING_HOLDS)
    def release_dunning_holds(self, request: ReleaseHoldsRequest) -> ReleasePlan:
        try:
            with session_scope(self._url) as session:
                return dunning.release_holds(session, request, send_hour=self._settings.reminder_send_hour)
        except repo.InvoiceNotFound as exc:
            raise non_retryable(exc) from exc

    @activity.defn(name=ActivityName.APPLY_LATE_FEE)
    def apply_late_fee(self, request: LateFeeRequest) -> LateFeeOutcome:
        try:
            with session_scope(self._url) as session:
                return dunning.apply_late_fee(session, request)
        except (repo.InvoiceNotFound, MoneyError) as exc:
            raise non_retryable(exc) from exc
