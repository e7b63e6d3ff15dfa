"""What moves money after issue and what the books hold: accounting connections and sync state, credit
notes, customer credit, refunds, dunning policies, holds and late fees, shared rate limits."""

from __future__ import annotations

import uuid
from datetime import date, datetime
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
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from persistence.models.base import Base, _uuid

if TYPE_CHECKING:  # relationships name these classes; SQLAlchemy resolves them by name at mapping time
    from persistence.models.invoicing import Invoice


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
