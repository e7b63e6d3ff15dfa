"""Estimate activities: status changes and the conversion into an invoice (idempotent)."""

from __future__ import annotations

import uuid

from temporalio import activity
from temporalio.exceptions import ApplicationError

from billing.errors import MoneyError
from core.settings import Settings
from persistence import estimates as repo
from persistence.db import session_scope
from workflows.payloads import ActivityName, ConvertedEstimate, ConvertRequest, EstimateStatusChange


class EstimateActivities:
    def __init__(self, settings: Settings) -> None:
        self._url = settings.require_database_url()

    @activity.defn(name=ActivityName.CONVERT_ESTIMATE)
    def convert_estimate(self, request: ConvertRequest) -> ConvertedEstimate:
        try:
            with session_scope(self._url) as session:
                return repo.convert(
                    session, uuid.UUID(request.estimate_id), actor=request.actor, note=request.note
                )
        except (repo.EstimateNotFound, repo.InvalidEstimateOperation, MoneyError) as exc:
            raise ApplicationError(str(exc), type="InvalidEstimate", non_retryable=True) from exc

    @activity.defn(name=ActivityName.RECORD_ESTIMATE_STATUS)
    def record_estimate_status(self, change: EstimateStatusChange) -> None:
        try:
            with session_scope(self._url) as session:
                repo.set_status(session, uuid.UUID(change.estimate_id), change.status, change.note)
        except repo.EstimateNotFound as exc:
            raise ApplicationError(str(exc), type="InvalidEstimate", non_retryable=True) from exc
