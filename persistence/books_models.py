"""Tables of the inbound half of the accounting sync: where each organisation's change feed stands, and
what the books changed that we never apply silently.

Kept apart from ``persistence.models`` (already the largest module) but on the same ``Base``, so
Alembic and every session see them alike.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, Text, UniqueConstraint, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from persistence.models.base import Base


class BooksCursor(Base):
    """The last cursor a poll of one organisation's books handed out and whose changes were recorded
    (Xero: an If-Modified-Since time, QBO: a changedSince time, FreshBooks: an updated_min time)."""

    __tablename__ = "books_cursors"
    __table_args__ = (UniqueConstraint("provider", "tenant_id", name="uq_books_cursors_org"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(20))
    tenant_id: Mapped[str] = mapped_column(String(200))
    cursor: Mapped[str] = mapped_column(String(200))
    polled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class BooksDifference(Base):
    """A change made in the books that invoiceflow does not apply on its own: a void, an amount change,
    a credit note, a deleted payment, a payment on an invoice that takes none. ``signature`` tells two
    different changes of the same object apart (a new total), so the same report twice is one row.
    ``status``: open → accepted | rejected, by one operator call."""

    __tablename__ = "books_differences"
    __table_args__ = (
        UniqueConstraint(
            "provider", "tenant_id", "kind", "external_id", "signature", name="uq_books_differences_change"
        ),
        Index("ix_books_differences_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    provider: Mapped[str] = mapped_column(String(20))
    tenant_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    signature: Mapped[str] = mapped_column(String(200), default="")
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")
    resolution: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
