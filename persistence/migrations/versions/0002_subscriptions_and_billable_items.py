"""Subscriptions (versioned terms, event history), billable expenses and time, invoice links to both.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("interval", sa.String(length=10), nullable=False),
        sa.Column("interval_count", sa.Integer(), nullable=False),
        sa.Column("anchor_day", sa.Integer(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("max_cycles", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("send_time", sa.Time(), nullable=False),
        sa.Column("payment_terms", sa.String(length=32), nullable=False),
        sa.Column("auto_send", sa.Boolean(), nullable=False),
        sa.Column("catch_up", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("next_cycle", sa.Integer(), nullable=False),
        sa.Column("paused_until", sa.Date(), nullable=True),
        sa.Column("workflow_id", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_subscriptions_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("workflow_id", name=op.f("uq_subscriptions_workflow_id")),
    )
    op.create_index(op.f("ix_subscriptions_customer_id"), "subscriptions", ["customer_id"], unique=False)
    op.create_table(
        "subscription_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_events_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_subscription_events_dedupe_key")),
    )
    op.create_index(
        op.f("ix_subscription_events_subscription_id"),
        "subscription_events",
        ["subscription_id"],
        unique=False,
    )
    op.create_table(
        "subscription_terms",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("effective_from_cycle", sa.Integer(), nullable=False),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_terms_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_terms")),
        sa.UniqueConstraint("subscription_id", "version", name="uq_subscription_terms_version"),
    )
    op.create_table(
        "billable_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("project_ref", sa.String(length=120), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Numeric(), nullable=False),
        sa.Column("unit_price", sa.Numeric(), nullable=False),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tax_rate", sa.Numeric(), nullable=False),
        sa.Column("incurred_on", sa.Date(), nullable=False),
        sa.Column("receipt_ref", sa.String(length=200), nullable=False),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invoice_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_billable_items_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_billable_items_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billable_items")),
    )
    op.create_index(
        "ix_billable_items_unbilled", "billable_items", ["customer_id", "status", "invoice_id"], unique=False
    )
    op.add_column(
        "invoices", sa.Column("requires_approval", sa.Boolean(), server_default="false", nullable=False)
    )
    op.add_column(
        "invoices", sa.Column("collect_billable_items", sa.Boolean(), server_default="false", nullable=False)
    )
    op.add_column("invoices", sa.Column("subscription_id", sa.Uuid(), nullable=True))
    op.add_column("invoices", sa.Column("subscription_cycle", sa.Integer(), nullable=True))
    op.add_column("invoices", sa.Column("period_date", sa.Date(), nullable=True))
    op.create_index(op.f("ix_invoices_subscription_id"), "invoices", ["subscription_id"], unique=False)
    op.create_unique_constraint(
        "uq_invoices_subscription_cycle", "invoices", ["subscription_id", "subscription_cycle"]
    )
    op.create_foreign_key(
        op.f("fk_invoices_subscription_id_subscriptions"),
        "invoices",
        "subscriptions",
        ["subscription_id"],
        ["id"],
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_invoices_subscription_id_subscriptions"), "invoices", type_="foreignkey")
    op.drop_constraint("uq_invoices_subscription_cycle", "invoices", type_="unique")
    op.drop_index(op.f("ix_invoices_subscription_id"), table_name="invoices")
    op.drop_column("invoices", "period_date")
    op.drop_column("invoices", "subscription_cycle")
    op.drop_column("invoices", "subscription_id")
    op.drop_column("invoices", "collect_billable_items")
    op.drop_column("invoices", "requires_approval")
    op.drop_index("ix_billable_items_unbilled", table_name="billable_items")
    op.drop_table("billable_items")
    op.drop_table("subscription_terms")
    op.drop_index(op.f("ix_subscription_events_subscription_id"), table_name="subscription_events")
    op.drop_table("subscription_events")
    op.drop_index(op.f("ix_subscriptions_customer_id"), table_name="subscriptions")
    op.drop_table("subscriptions")
