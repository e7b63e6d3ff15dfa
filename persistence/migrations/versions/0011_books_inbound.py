"""The books talk back: the change-feed cursor per organisation and the differences an operator decides.

Revision ID: 0011_books_inbound
Revises: 0010
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011_books_inbound"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "books_cursors",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("cursor", sa.String(200), nullable=False),
        sa.Column("polled_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("provider", "tenant_id", name="uq_books_cursors_org"),
    )
    op.create_table(
        "books_differences",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("signature", sa.String(200), nullable=False, server_default=""),
        sa.Column("invoice_id", sa.Uuid, sa.ForeignKey("invoices.id"), nullable=True),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("data", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("resolution", sa.Text, nullable=False, server_default=""),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint(
            "provider", "tenant_id", "kind", "external_id", "signature", name="uq_books_differences_change"
        ),
    )
    op.create_index("ix_books_differences_status", "books_differences", ["status"])
    op.create_index("ix_books_differences_invoice_id", "books_differences", ["invoice_id"])


def downgrade() -> None:
    op.drop_table("books_differences")
    op.drop_table("books_cursors")
