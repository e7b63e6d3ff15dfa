"""SQLAlchemy 2 models: the system of record for customers, invoices, payments and side effects.

Temporal owns the *process* (what happens next, when); PostgreSQL owns the *facts* (what was billed,
numbered, paid, sent). Every side effect goes through a row with a unique key so a retried activity
finds its earlier work instead of repeating it.

Money columns are ``NUMERIC`` without scale (exact); the billing package quantizes to the currency's
minor units before anything is written.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    Time,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(300))
    emails: Mapped[list[str]] = mapped_column(ARRAY(Text))
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    payment_terms: Mapped[str] = mapped_column(String(32), default="net_30")
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    address: Mapped[str] = mapped_column(Text, default="")
    tax_id: Mapped[str] = mapped_column(String(64), default="")
    # E-invoicing (EN 16931): structured postal address (``address`` stays the free text the PDF prints),
    # buyer reference (BT-10, the Leitweg-ID of German public buyers), electronic address ``scheme:id``
    # (BT-49) and the format the customer receives: none | facturx | xrechnung | peppol.
    address_line1: Mapped[str] = mapped_column(String(300), default="", server_default="")
    address_line2: Mapped[str] = mapped_column(String(300), default="", server_default="")
    city: Mapped[str] = mapped_column(String(120), default="", server_default="")
    postal_code: Mapped[str] = mapped_column(String(32), default="", server_default="")
    region: Mapped[str] = mapped_column(String(120), default="", server_default="")
    country: Mapped[str] = mapped_column(String(2), default="", server_default="")
    buyer_reference: Mapped[str] = mapped_column(String(200), default="", server_default="")
    endpoint: Mapped[str] = mapped_column(String(200), default="", server_default="")
    einvoice_format: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    owner_email: Mapped[str | None] = mapped_column(String(320))
    reminder_offsets: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    # Named dunning policy; None: the default reminder offsets above apply.
    dunning_policy: Mapped[str | None] = mapped_column(ForeignKey("dunning_policies.name"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    external_ids: Mapped[list[CustomerExternalId]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", lazy="selectin"
    )


class CustomerExternalId(Base):
    """The customer's id in a source system (HubSpot company, Xero contact, ...), unique per system."""

    __tablename__ = "customer_external_ids"
    __table_args__ = (UniqueConstraint("system", "external_id", name="uq_customer_external_ids_system_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    system: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))

    customer: Mapped[Customer] = relationship(back_populates="external_ids")


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        Index("ix_invoices_customer_status", "customer_id", "status"),
        UniqueConstraint("subscription_id", "subscription_cycle", name="uq_invoices_subscription_cycle"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    status: Mapped[str] = mapped_column(String(24), default="draft", index=True)
    currency: Mapped[str] = mapped_column(String(3))
    series: Mapped[str | None] = mapped_column(String(40))
    number: Mapped[str | None] = mapped_column(String(64), unique=True)
    payment_terms: Mapped[str] = mapped_column(String(32))
    requested_due_date: Mapped[date | None] = mapped_column(Date)
    issue_date: Mapped[date | None] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)
    subtotal: Mapped[Decimal] = mapped_column(Numeric)
    discount_total: Mapped[Decimal] = mapped_column(Numeric)
    tax_total: Mapped[Decimal] = mapped_column(Numeric)
    total: Mapped[Decimal] = mapped_column(Numeric)
    amount_paid: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))
    credit_amount: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))
    # Sum of its credit notes; amount_due = total − amount_paid − amount_credited (billing.credits).
    amount_credited: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0), server_default="0")
    amount_due: Mapped[Decimal] = mapped_column(Numeric)
    notes: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(40), default="api")
    reminder_offsets: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    workflow_id: Mapped[str] = mapped_column(String(120), unique=True)
    pdf_key: Mapped[str | None] = mapped_column(String(200))
    void_reason: Mapped[str | None] = mapped_column(Text)
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    collect_billable_items: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    subscription_cycle: Mapped[int | None] = mapped_column(Integer)
    period_date: Mapped[date | None] = mapped_column(Date)
    project_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("projects.id"), index=True)
    # Dunning: the policy asked for at creation (wins over the customer's), and the copy of the
    # policy frozen at issue, so a later edit of the named policy never changes an issued invoice.
    dunning_policy: Mapped[str | None] = mapped_column(ForeignKey("dunning_policies.name"))
    dunning_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # E-invoicing: order (BT-13), contract (BT-12) and project (BT-11) references, the invoicing period
    # (BT-73/74), and the e-invoice produced at issue: its document key, "" | valid | invalid, and the
    # failed rules ([{"id", "flag", "text", "location"}]) while it is invalid.
    purchase_order: Mapped[str] = mapped_column(String(200), default="", server_default="")
    contract_ref: Mapped[str] = mapped_column(String(200), default="", server_default="")
    project_ref: Mapped[str] = mapped_column(String(200), default="", server_default="")
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    einvoice_key: Mapped[str | None] = mapped_column(String(200))
    einvoice_status: Mapped[str] = mapped_column(String(16), default="", server_default="")
    einvoice_errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    customer: Mapped[Customer] = relationship(lazy="joined")
    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice",
        cascade="all, delete-orphan",
        order_by="InvoiceLine.position",
        lazy="selectin",
    )
    payments: Mapped[list[Payment]] = relationship(
        back_populates="invoice", order_by="Payment.received_at", lazy="selectin"
    )


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (UniqueConstraint("invoice_id", "position", name="uq_invoice_lines_invoice_position"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(Numeric)
    unit_price: Mapped[Decimal] = mapped_column(Numeric)
    discount_percent: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))
    discount_amount: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))
    tax_rate: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))
    gross: Mapped[Decimal] = mapped_column(Numeric)
    discount: Mapped[Decimal] = mapped_column(Numeric)
    net: Mapped[Decimal] = mapped_column(Numeric)
    # UN/ECE Rec 20 unit (BT-130), VAT category (BT-151; None: S above 0 %, else Z) and exemption reason.
    unit: Mapped[str] = mapped_column(String(3), default="C62", server_default="C62")
    tax_category: Mapped[str | None] = mapped_column(String(2))
    tax_exemption_reason: Mapped[str] = mapped_column(Text, default="", server_default="")

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class Payment(Base):
    """A payment applied to one invoice. ``idempotency_key`` is unique: the same bank transfer or
    provider event recorded twice is one row."""

    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    amount: Mapped[Decimal] = mapped_column(Numeric)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(40), default="bank_transfer")
    reference: Mapped[str] = mapped_column(String(200), default="")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    invoice: Mapped[Invoice] = relationship(back_populates="payments")


class InvoiceEvent(Base):
    """Append-only audit timeline. A database trigger refuses UPDATE and DELETE.

    ``dedupe_key`` makes writes from retried activities idempotent (same logical event → one row).
    """

    __tablename__ = "invoice_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(60))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)


class NumberSeries(Base):
    """Gapless counters, one row per series (e.g. ``INV-2026``). Allocation locks the row inside the
    transaction that stamps the invoice, so a rollback returns the number and nothing skips."""

    __tablename__ = "number_series"

    series: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_value: Mapped[int] = mapped_column(BigInteger, default=1)


class OutboxEntry(Base):
    """One row per logical side effect (an email, a ledger post). Status moves pending → sending → done;
    a retry that finds ``done`` returns the recorded result instead of acting again."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IdempotencyRecord(Base):
    """Responses to API requests carrying an ``Idempotency-Key`` header, replayed on repeats."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Document(Base):
    """Rendered files (PDFs). Workflows pass the key, never the bytes (Temporal's 2 MB payload limit)."""

    __tablename__ = "documents"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


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


class Project(Base):
    """A billing plan: what a contract's deposit and milestones bill, linked to the CRM deal and the
    PM-tool objects whose events trigger them. Its ProjectBillingWorkflow starts each invoice."""

    __tablename__ = "projects"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str | None] = mapped_column(String(120))
    contract_amount: Mapped[Decimal] = mapped_column(Numeric)
    deposit_percent: Mapped[Decimal | None] = mapped_column(Numeric)
    deposit_amount: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))  # resolved; 0 = none
    deposit_on: Mapped[str] = mapped_column(String(16), default="signature")  # signature | deal_won
    deposit_invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id", use_alter=True))
    deposit_billed: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))
    deposit_recouped: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))
    deposit_event: Mapped[str | None] = mapped_column(String(300))
    tax_rate: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))
    payment_terms: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(40), default="api")
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | completed | cancelled
    workflow_id: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    tm_rule: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # time & materials (billing.time_materials)

    customer: Mapped[Customer] = relationship(lazy="joined")
    milestones: Mapped[list[ProjectMilestone]] = relationship(
        back_populates="project",
        cascade="all, delete-orphan",
        order_by="ProjectMilestone.position",
        lazy="selectin",
    )
    refs: Mapped[list[ProjectRef]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="ProjectRef.id", lazy="selectin"
    )


class ProjectMilestone(Base):
    __tablename__ = "project_milestones"
    __table_args__ = (UniqueConstraint("project_id", "key", name="uq_project_milestones_project_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(300))
    position: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Numeric)  # resolved from amount or percent
    percent: Mapped[Decimal | None] = mapped_column(Numeric)
    lines: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)  # a deal's own line items, if any
    # milestone | deal_won | signature | after_paid (once the invoice of ``after_key`` is paid in full)
    bill_on: Mapped[str] = mapped_column(String(16), default="milestone")
    after_key: Mapped[str | None] = mapped_column(String(80))  # a milestone key or "deposit"
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | billed
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    recouped: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))
    billed_event: Mapped[str | None] = mapped_column(String(300))
    billed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    project: Mapped[Project] = relationship(back_populates="milestones")


class ProjectRef(Base):
    """An external id that routes a webhook to a project (deal, envelope) or to one of its milestones
    (Jira issue, Linear issue, GitHub milestone, Asana task). Unique per system: one event, one target."""

    __tablename__ = "project_refs"
    __table_args__ = (UniqueConstraint("system", "ref", name="uq_project_refs_system_ref"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    milestone_key: Mapped[str | None] = mapped_column(String(80))
    system: Mapped[str] = mapped_column(String(40))
    ref: Mapped[str] = mapped_column(String(300))

    project: Mapped[Project] = relationship(back_populates="refs")


class ChangeOrder(Base):
    """An amendment of a project's plan (`persistence.change_orders`), signed or not."""

    __tablename__ = "project_change_orders"
    __table_args__ = (UniqueConstraint("project_id", "number", name="uq_project_change_orders_number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(String(200), default="")
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(24))  # pending_signature | approved | applied | refused
    envelope_system: Mapped[str | None] = mapped_column(String(40))
    envelope_id: Mapped[str | None] = mapped_column(String(300))
    contract_before: Mapped[Decimal | None] = mapped_column(Numeric)
    contract_after: Mapped[Decimal | None] = mapped_column(Numeric)
    deposit_amount: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))
    deposit_invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookEvent(Base):
    """The durable inbox of verified webhook deliveries that matter for billing.

    A delivery is written here (and routed: ``project_id``) before the 2xx; the inbox dispatcher marks it
    ``dispatched`` once its project workflow has it. ``unmatched`` events (no project knows the ref yet)
    stay until an operator replays them."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("provider", "dedupe_key", name="uq_webhook_events_provider_dedupe"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    provider: Mapped[str] = mapped_column(String(40))
    dedupe_key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(32))  # deal_won | milestone_done | contract_signed
    system: Mapped[str] = mapped_column(String(40))
    ref: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), index=True)  # received | dispatched | unmatched
    # No foreign key: a won deal's project is built by its workflow after the event is dispatched.
    project_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    milestone_key: Mapped[str | None] = mapped_column(String(80))
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    payload: Mapped[dict[str, Any] | list[Any]] = mapped_column(JSONB)
    deliveries: Mapped[int] = mapped_column(Integer, default=1)
    note: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A dispatcher's claim (or, after a failed hand-over, when to retry): no other one takes the row before.
    dispatching_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookSecret(Base):
    """Secrets a provider hands over at run time (Asana's X-Hook-Secret handshake), one per hook."""

    __tablename__ = "webhook_secrets"
    __table_args__ = (UniqueConstraint("provider", "secret", name="uq_webhook_secrets_provider_secret"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(40))
    secret: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AccountingConnection(Base):
    """OAuth tokens of one accounting organisation (Xero tenant, QBO realm, FreshBooks account).

    Both tokens are Fernet ciphertext (``accounting.tokens``): a database dump or backup must not hand
    out write access to the books. Refreshing locks the row (``SELECT ... FOR UPDATE``) because the
    providers rotate refresh tokens: two workers refreshing at once would otherwise each spend the old
    one and one of them would store a token the provider has already replaced. ``generation`` counts
    refreshes, so a process that waited for the lock can tell someone else refreshed meanwhile."""

    __tablename__ = "accounting_connections"
    __table_args__ = (
        UniqueConstraint("provider", "tenant_id", name="uq_accounting_connections_provider_tenant"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(20))
    tenant_id: Mapped[str] = mapped_column(String(200))
    access_token: Mapped[bytes] = mapped_column(LargeBinary)
    refresh_token: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    scope: Mapped[str] = mapped_column(Text, default="")
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccountingSync(Base):
    """Where one of our invoices or payments stands at the accounting provider.

    One row per (provider, organisation, kind, our id): ``kind`` is ``invoice`` (``object_id`` = the
    invoice) or ``payment`` (``object_id`` = the payment). ``external_id`` is the provider's id, kept
    so the next sync updates instead of creating; ``status`` is ``pending`` (being synced or waiting
    for a retry), ``synced`` or ``sync_failed`` (the provider refused the data: ``last_error`` says
    why in its words, and someone must fix the mapping). ``revision`` is the invoice revision last
    synced, so a repeated sync of an unchanged invoice costs no API call."""

    __tablename__ = "accounting_syncs"
    __table_args__ = (
        UniqueConstraint("provider", "tenant_id", "kind", "object_id", name="uq_accounting_syncs_object"),
        Index("ix_accounting_syncs_status", "provider", "tenant_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(20))
    tenant_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # invoice | payment | credit_note | refund | write_off
    object_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | synced | sync_failed
    external_id: Mapped[str | None] = mapped_column(String(200))
    remote_status: Mapped[str] = mapped_column(String(40), default="")
    revision: Mapped[int | None] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CreditNote(Base):
    """A numbered credit note against one issued invoice (its own gapless series, e.g. ``CN-2026-000001``).

    ``idempotency_key`` is unique per invoice: the same request twice is one credit note;
    ``request_hash`` tells a repeat from a different request reusing the key. ``to_customer_credit`` is
    the part beyond what was still due on the invoice, which became customer credit."""

    __tablename__ = "credit_notes"
    __table_args__ = (UniqueConstraint("invoice_id", "idempotency_key", name="uq_credit_notes_invoice_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"), index=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), index=True)
    series: Mapped[str] = mapped_column(String(40))
    number: Mapped[str] = mapped_column(String(64), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)
    full: Mapped[bool] = mapped_column(Boolean, default=False)
    subtotal: Mapped[Decimal] = mapped_column(Numeric)
    tax_total: Mapped[Decimal] = mapped_column(Numeric)
    total: Mapped[Decimal] = mapped_column(Numeric)
    to_customer_credit: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))
    issue_date: Mapped[date] = mapped_column(Date)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200), default="api")
    pdf_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    invoice: Mapped[Invoice] = relationship(lazy="joined")
    lines: Mapped[list[CreditNoteLine]] = relationship(
        back_populates="credit_note",
        cascade="all, delete-orphan",
        order_by="CreditNoteLine.position",
        lazy="selectin",
    )


class CreditNoteLine(Base):
    __tablename__ = "credit_note_lines"
    __table_args__ = (UniqueConstraint("credit_note_id", "position", name="uq_credit_note_lines_position"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    credit_note_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credit_notes.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(Numeric)
    unit_price: Mapped[Decimal] = mapped_column(Numeric)
    discount_percent: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))
    discount_amount: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))
    tax_rate: Mapped[Decimal] = mapped_column(Numeric, default=Decimal(0))
    gross: Mapped[Decimal] = mapped_column(Numeric)
    discount: Mapped[Decimal] = mapped_column(Numeric)
    net: Mapped[Decimal] = mapped_column(Numeric)

    credit_note: Mapped[CreditNote] = relationship(back_populates="lines")


class CustomerCreditEntry(Base):
    """The customer credit ledger, per customer and currency: + when an overpayment or a credit note
    beyond the amount due creates credit, − when credit is applied to an invoice (or refunded). The
    balance is the sum and never goes below zero (applications lock the customer row). ``dedupe_key``
    makes every entry exactly-once under activity retries."""

    __tablename__ = "customer_credit_entries"
    __table_args__ = (Index("ix_customer_credit_entries_customer_currency", "customer_id", "currency"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Numeric)  # signed
    kind: Mapped[str] = mapped_column(String(20))  # overpayment | credit_note | applied | refund
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    credit_note_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("credit_notes.id"))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Refund(Base):
    """Money returned against one recorded payment. On an open invoice it reopens the amount due; on a
    paid or credited invoice it pays out the customer credit that invoice created. ``idempotency_key``
    is unique (API key, or ``stripe-refund:<re_ id>``): a repeated request or event is one refund."""

    __tablename__ = "refunds"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"), index=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    amount: Mapped[Decimal] = mapped_column(Numeric)
    currency: Mapped[str] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(16))  # reopened | credit
    reason: Mapped[str] = mapped_column(Text, default="")
    reference: Mapped[str] = mapped_column(String(200), default="")
    actor: Mapped[str] = mapped_column(String(200), default="api")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DunningPolicyRow(Base):
    """A named dunning policy; ``definition`` is ``billing.dunning.policy_to_dict`` of the
    validated policy. Invoices copy it at issue (``Invoice.dunning_snapshot``)."""

    __tablename__ = "dunning_policies"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class DunningHold(Base):
    """A pause of dunning: a dispute on one invoice (``invoice_id``) or on a whole customer
    (``customer_id``, applies to its open invoices and to those issued while it lasts), or a payment in
    flight (``kind`` payment, ``payment_key`` = the payment's idempotency key). Active while
    ``released_at`` is null and ``resume_at`` (if any) has not passed."""

    __tablename__ = "dunning_holds"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # dispute | payment
    reason: Mapped[str] = mapped_column(Text, default="")
    payment_key: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(200), default="api")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resume_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LateFeeCharge(Base):
    """One application of a dunning policy's late fee to an invoice: ``sequence`` is unique per invoice,
    so a retried activity charges it once; the fee is also a line of the invoice (its total grows)."""

    __tablename__ = "late_fee_charges"
    __table_args__ = (
        UniqueConstraint("invoice_id", "sequence", name="uq_late_fee_charges_invoice_sequence"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    assessed_on: Mapped[date] = mapped_column(Date)
    base: Mapped[Decimal | None] = mapped_column(Numeric)  # what a percent fee applied to
    amount: Mapped[Decimal] = mapped_column(Numeric)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AccountingRateLimit(Base):
    """One provider organisation's shared rate-limit state: the row every worker process locks to
    admit a call (``accounting.shared_limit``), and a pause the provider asked for (Retry-After)."""

    __tablename__ = "accounting_rate_limits"

    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    paused_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccountingRateCall(Base):
    """One call admitted to a provider organisation, by any worker process: when it was sent, when its
    answer came back (``finished_at``), and until when it counts as in flight if its process died
    (``lease_until``). Only the most recent calls of each organisation are kept."""

    __tablename__ = "accounting_rate_calls"
    __table_args__ = (Index("ix_accounting_rate_calls_org", "provider", "tenant_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(20))
    tenant_id: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# Tables defined in modules of their own, on this same metadata (imported last: they import Base).
from persistence import books_models as _books_models  # noqa: E402, F401
