"""Subscriptions: create, cycles, terms, pause, cancel; operator approval."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
)

from api.schemas.common import Currency, Strict, Terms, Timezone
from api.schemas.invoices import LineCreate
from api.validation import ApiDate

# ---------------------------------------------------------------- subscriptions


class SubscriptionCreate(Strict):
    customer_id: uuid.UUID
    currency: Currency | None = Field(default=None, description="Defaults to the customer's currency.")
    lines: list[LineCreate] = Field(min_length=1, max_length=500)
    interval: Literal["week", "month", "quarter", "year"]
    interval_count: int = Field(default=1, ge=1, le=52, description="Every N intervals.")
    anchor_day: int | None = Field(
        default=None, ge=1, le=31, description="Day of month; 31 clamps to the month's end."
    )
    start_date: ApiDate
    end_date: ApiDate | None = None
    max_cycles: int | None = Field(default=None, ge=1, le=10000)
    timezone: Timezone | None = Field(default=None, description="Defaults to the customer's timezone.")
    send_time: time = Field(default=time(9, 0), description="Local time the cycle's invoice goes out.")
    auto_send: bool = Field(
        default=True, description="False: each cycle's invoice waits for an operator's approval."
    )
    payment_terms: Terms | None = None
    catch_up: Literal["all", "latest", "none"] = Field(
        default="all", description="Missed cycles (outage, pause): bill all, only the latest, or none."
    )


class CycleOut(BaseModel):
    cycle: int
    date: date
    send_at: datetime


class TermsOut(BaseModel):
    version: int
    effective_from_cycle: int
    lines: list[dict[str, str]]


class CycleInvoiceOut(BaseModel):
    cycle: int
    period_date: date
    invoice_id: uuid.UUID
    number: str | None
    status: str
    total: str


class SubscriptionEventOut(BaseModel):
    at: datetime
    kind: str
    cycle: int | None
    data: dict[str, Any]


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    workflow_id: str
    customer_id: uuid.UUID
    status: str
    currency: str
    interval: str
    interval_count: int
    anchor_day: int | None
    start_date: date
    end_date: date | None
    max_cycles: int | None
    timezone: str
    send_time: str = Field(
        description="Local wall-clock time the cycle's invoice goes out (HH:MM:SS, the client's time zone).",
        pattern=r"^\d{2}:\d{2}:\d{2}$",
    )
    auto_send: bool
    payment_terms: str
    catch_up: str
    next_cycle: int
    paused_until: date | None
    next_invoice_dates: list[CycleOut]
    terms: list[TermsOut]
    invoices: list[CycleInvoiceOut] = Field(default_factory=list)
    history: list[SubscriptionEventOut] = Field(default_factory=list)


class PauseCreate(Strict):
    resume_on: ApiDate | None = Field(
        default=None, description="Resume automatically on this date (client's timezone)."
    )


class CancelCreate(Strict):
    at_period_end: bool = Field(
        default=False, description="Bill nothing more; end when the current period ends."
    )


class TermsCreate(Strict):
    lines: list[LineCreate] = Field(min_length=1, max_length=500)


class ApproveCreate(Strict):
    comment: str = Field(default="", max_length=2000)
