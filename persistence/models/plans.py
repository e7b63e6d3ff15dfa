"""Subscriptions and their terms, billable items (expenses, time), approval rules and links, estimates."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from persistence.models.base import Base, _uuid

if TYPE_CHECKING:  # relationships name these classes; SQLAlchemy resolves them by name at mapping time
    from persistence.models.invoicing import Customer


class Subscription(Base):
    """A recurring billing agreement. Its SubscriptionWorkflow owns the schedule; this row is the
    projection the API reads (status, next cycle) plus the calendar definition."""

    __tablename__ = "subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    interval: Mapped[str] = mapped_column(String(10))
    interval_count: Mapped[int] = mapped_column(Integer)
    anchor_day: Mapped[int | None] = mapped_column(Integer)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    max_cycles: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    send_time: Mapped[time] = mapped_column(Time)
    payment_terms: Mapped[str] = mapped_column(String(32))
    auto_send: Mapped[bool] = mapped_column(Boolean, default=True)
    catch_up: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(16), default="active")
    next_cycle: Mapped[int] = mapped_column(Integer, default=0)
    paused_until: Mapped[date | None] = mapped_column(Date)
    workflow_id: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    terms: Mapped[list[SubscriptionTerms]] = relationship(
        back_populates="subscription", order_by="SubscriptionTerms.version", lazy="selectin"
    )


class SubscriptionTerms(Base):
    """Versioned lines of a subscription: version N applies from cycle ``effective_from_cycle`` on, so
    the history shows which cycle was billed on which terms."""

    __tablename__ = "subscription_terms"
    __table_args__ = (UniqueConstraint("subscription_id", "version", name="uq_subscription_terms_version"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    effective_from_cycle: Mapped[int] = mapped_column(Integer)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    subscription: Mapped[Subscription] = relationship(back_populates="terms")


class BillableItem(Base):
    """An expense or time entry waiting to be billed. ``invoice_id`` is set in the transaction that
    issues the invoice carrying it (so it is billed once) and cleared when that invoice is voided."""

    __tablename__ = "billable_items"
    __table_args__ = (
        Index("ix_billable_items_unbilled", "customer_id", "status", "invoice_id"),
        Index("ix_billable_items_project", "project_id", "invoice_id"),
        Index(
            "uq_billable_items_project_external",
            "project_id",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    project_ref: Mapped[str | None] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(10))  # expense | time
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(Numeric)  # hours for time, 1 for an expense
    unit_price: Mapped[Decimal] = mapped_column(Numeric)  # rate for time, the amount for an expense
    amount: Mapped[Decimal] = mapped_column(Numeric)
    currency: Mapped[str] = mapped_column(String(3))
    tax_rate: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))
    incurred_on: Mapped[date] = mapped_column(Date)
    receipt_ref: Mapped[str] = mapped_column(String(200), default="")
    billable: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(20))  # pending_approval | approved | rejected
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Logged against a project (time & materials, expenses of a project): billed on its invoices only.
    project_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    person: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(80))
    external_id: Mapped[str | None] = mapped_column(String(300))  # unique per project: dedupes re-sends
    source: Mapped[str] = mapped_column(String(40), default="api")


class SubscriptionEventRow(Base):
    """The subscription's history: cycles billed or skipped (and by which catch-up rule), pauses,
    resumes, term changes, cancellation. ``dedupe_key`` makes retried writes harmless."""

    __tablename__ = "subscription_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    kind: Mapped[str] = mapped_column(String(40))
    cycle: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)


class ApprovalRuleRow(Base):
    """An approval rule, in evaluation order (``position``); ``definition`` is the validated rule as
    ``billing.approval_rules.rule_to_dict`` writes it."""

    __tablename__ = "approval_rules"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    position: Mapped[int] = mapped_column(Integer, index=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ApprovalLinkUse(Base):
    """A signed approval link that has acted. Links are single-use: the claim is inserted before the
    decision is sent to the workflow, and a second use finds it."""

    __tablename__ = "approval_link_uses"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"), index=True)
    approver: Mapped[str] = mapped_column(String(320))
    decision: Mapped[str] = mapped_column(String(10))
    used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Estimate(Base):
    """A quote sent to a client. Accepting it converts it into an invoice with exactly its lines,
    discounts and tax; its EstimateWorkflow owns the timing (validity, reminders later)."""

    __tablename__ = "estimates"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), index=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    subtotal: Mapped[Decimal] = mapped_column(Numeric)
    tax_total: Mapped[Decimal] = mapped_column(Numeric)
    total: Mapped[Decimal] = mapped_column(Numeric)
    notes: Mapped[str] = mapped_column(Text, default="")
    payment_terms: Mapped[str] = mapped_column(String(32))
    valid_until: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft|sent|accepted|declined|expired
    decision_note: Mapped[str] = mapped_column(Text, default="")
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    project_plan: Mapped[dict[str, Any] | None] = mapped_column(
        JSONB
    )  # accepted → a project, its deposit billed
    project_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("projects.id"))
    workflow_id: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    customer: Mapped[Customer] = relationship(lazy="joined")
