"""Invoice revisions (edits invalidate approval links) and single-use approval link claims.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_link_uses",
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("approver", sa.String(length=320), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_approval_link_uses_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_approval_link_uses")),
    )
    op.create_index(
        op.f("ix_approval_link_uses_invoice_id"), "approval_link_uses", ["invoice_id"], unique=False
    )
    op.add_column("invoices", sa.Column("revision", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("invoices", "revision")
    op.drop_index(op.f("ix_approval_link_uses_invoice_id"), table_name="approval_link_uses")
    op.drop_table("approval_link_uses")
