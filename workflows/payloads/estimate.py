"""Payloads of the estimate workflow: decisions and conversion into an invoice or a project.

Stdlib dataclasses only (imported inside the workflow sandbox); every field added later has a default so
recorded histories still decode; money travels as decimal strings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class EstimateWorkflowInput:
    estimate_id: str
    customer_id: str
    currency: str
    expires_at: datetime  # end of the valid-until day in the client's timezone


@dataclass
class EstimateDecisionInput:
    decision: str  # accept | decline
    note: str = ""
    actor: str = "client"
    via: str = "link"  # link | api
    ip: str = ""
    user_agent: str = ""


@dataclass
class EstimateStatusChange:
    estimate_id: str
    status: str  # sent | declined | expired
    note: str = ""
    actor: str = "workflow"


@dataclass
class ConvertRequest:
    estimate_id: str
    actor: str
    note: str = ""


@dataclass
class ConvertedEstimate:
    invoice_id: str  # empty when the estimate became a project instead
    customer_id: str
    currency: str
    total: str
    project_id: str | None = None  # an estimate with a project plan becomes a project (deposit billed)


@dataclass
class EstimateState:
    estimate_id: str
    status: str  # sent | accepted | declined | expired
    invoice_id: str | None = None
    project_id: str | None = None
