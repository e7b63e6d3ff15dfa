"""Time & materials and change orders.

A project can carry a ``tm_rule`` (rate, rate card, ``bill_every`` week|month or a threshold in hours or
money, an optional cap). Time entries are billable items with the project, the person, the role and the
source tool's id (unique per project, so a redelivered or re-sent entry is stored once). Change orders
amend a project's milestones and contract, signed or not.

Revision ID: 0020_time_and_materials
Revises: 0019_milestone_after_paid
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020_time_and_materials"
down_revision = "0019_milestone_after_paid"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("tm_rule", postgresql.JSONB(), nullable=True))
    op.add_column(
        "billable_items",
        sa.Column("project_id", sa.Uuid(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    )
    op.add_column("billable_items", sa.Column("person", sa.String(200), nullable=True))
    op.add_column("billable_items", sa.Column("role", sa.String(80), nullable=True))
    op.add_column("billable_items", sa.Column("external_id", sa.String(300), nullable=True))
    op.add_column("billable_items", sa.Column("source", sa.String(40), nullable=False, server_default="api"))
    op.create_index("ix_billable_items_project", "billable_items", ["project_id", "invoice_id"])
    op.create_index(
        "uq_billable_items_project_external",
        "billable_items",
        ["project_id", "external_id"],
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.create_table(
        "project_change_orders",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "project_id",
            sa.Uuid(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            index=True,
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False, server_default=""),
        sa.Column("changes", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("envelope_system", sa.String(40), nullable=True),
        sa.Column("envelope_id", sa.String(300), nullable=True),
        sa.Column("contract_before", sa.Numeric(), nullable=True),
        sa.Column("contract_after", sa.Numeric(), nullable=True),
        sa.Column("deposit_amount", sa.Numeric(), nullable=False, server_default="0"),
        sa.Column("deposit_invoice_id", sa.Uuid(), sa.ForeignKey("invoices.id"), nullable=True),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("project_id", "number", name="uq_project_change_orders_number"),
    )


def downgrade() -> None:
    op.drop_table("project_change_orders")
    op.drop_index("uq_billable_items_project_external", table_name="billable_items")
    op.drop_index("ix_billable_items_project", table_name="billable_items")
    for column in ("source", "external_id", "role", "person", "project_id"):
        op.drop_column("billable_items", column)
    op.drop_column("projects", "tm_rule")
