"""Projects, milestones, their references and change orders; the webhook inbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
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
    from persistence.models.invoicing import Customer


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
    # signature | deposit_paid: with deposit_paid nothing but the deposit bills before it is paid in full
    start_on: Mapped[str] = mapped_column(String(16), default="signature")
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    owner_email: Mapped[str | None] = mapped_column(String(320))  # else the customer's owner

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
    done_event: Mapped[str | None] = mapped_column(String(300))  # done before the project started

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
    # The approval chain a rule gave it (rule, steps, current step, decisions); None: no approval needed.
    approval: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


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
