"""Customers, invoices, their lines, payments and timeline, numbering, the email outbox, idempotency
keys, stored documents and the counted views of an invoice's links."""

from __future__ import annotations

import uuid
from datetime import date, datetime
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
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from persistence.models.base import Base, _uuid


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


class LinkVisit(Base):
    """One counter row per (invoice, kind, visitor, UTC day); ``persistence.link_visits`` says why."""

    __tablename__ = "link_visits"

    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    visitor: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
