"""Billable items (expenses, time), approval decisions and draft edits."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import (
    BaseModel,
    EmailStr,
    Field,
)

from api.schemas.common import Currency, Strict
from api.schemas.invoices import LineCreate
from api.validation import ApiDate, DecimalStr

# ---------------------------------------------------------------- billable items


class ExpenseCreate(Strict):
    description: str = Field(min_length=1, max_length=1000)
    amount: DecimalStr
    currency: Currency | None = Field(default=None, description="Defaults to the customer's currency.")
    incurred_on: ApiDate
    receipt_ref: str = Field(default="", max_length=200)
    billable: bool = True
    tax_rate: DecimalStr = Decimal(0)
    project_ref: str | None = Field(default=None, max_length=120)


class TimeEntryCreate(Strict):
    description: str = Field(min_length=1, max_length=1000)
    hours: DecimalStr
    rate: DecimalStr
    currency: Currency | None = None
    incurred_on: ApiDate
    billable: bool = True
    tax_rate: DecimalStr = Decimal(0)
    project_ref: str | None = Field(default=None, max_length=120)


class BillableItemOut(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    kind: str
    description: str
    quantity: str
    unit_price: str
    amount: str
    currency: str
    tax_rate: str
    incurred_on: date
    receipt_ref: str
    billable: bool
    status: str
    decided_by: str | None
    invoice_id: uuid.UUID | None
    project_ref: str | None


class DecisionCreate(Strict):
    comment: str = Field(default="", max_length=2000)


class ApprovalDecisionCreate(Strict):
    approver: EmailStr
    decision: Literal["approve", "reject"]
    comment: str = Field(default="", max_length=2000)


class DraftEdit(Strict):
    lines: list[LineCreate] | None = Field(default=None, min_length=1, max_length=500)
    notes: str | None = Field(default=None, max_length=5000)
    due_date: ApiDate | None = None
