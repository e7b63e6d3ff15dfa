"""Hosted-link visits counted per visitor and day (``link_visits``) instead of one timeline row each.

Revision ID: 0016_hardening_input
Revises: 0014_users_and_audit
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0016_hardening_input"
down_revision = "0014_users_and_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_visits",
        sa.Column("invoice_id", UUID(as_uuid=True), sa.ForeignKey("invoices.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("visitor", sa.String(32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("first_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("invoice_id", "kind", "day", "visitor", name="pk_link_visits"),
    )


def downgrade() -> None:
    op.drop_table("link_visits")
