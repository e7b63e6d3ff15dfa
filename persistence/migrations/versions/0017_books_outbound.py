"""Provider rate limits shared by every worker process: one lock row per organisation and a log of
its recent calls (``accounting.shared_limit``).

Revision ID: 0017_books_outbound
Revises: 0016_hardening_input
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_books_outbound"
down_revision = "0016_hardening_input"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounting_rate_limits",
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("provider", "tenant_id", name="pk_accounting_rate_limits"),
    )
    op.create_table(
        "accounting_rate_calls",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_accounting_rate_calls"),
    )
    op.create_index("ix_accounting_rate_calls_org", "accounting_rate_calls", ["provider", "tenant_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_accounting_rate_calls_org", table_name="accounting_rate_calls")
    op.drop_table("accounting_rate_calls")
    op.drop_table("accounting_rate_limits")
