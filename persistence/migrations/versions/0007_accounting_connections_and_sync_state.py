"""Accounting sync: encrypted OAuth connections and per-invoice/payment sync state.

``accounting_connections`` holds Fernet ciphertext only (see accounting.tokens). ``accounting_syncs``
has one row per provider organisation and invoice or payment.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 10:44:54.740806
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounting_connections",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("tenant_id", sa.String(length=200), nullable=False),
        sa.Column("access_token", sa.LargeBinary(), nullable=False),
        sa.Column("refresh_token", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounting_connections")),
        sa.UniqueConstraint("provider", "tenant_id", name="uq_accounting_connections_provider_tenant"),
    )
    op.create_table(
        "accounting_syncs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("tenant_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("object_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("remote_status", sa.String(length=40), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_accounting_syncs_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounting_syncs")),
        sa.UniqueConstraint("provider", "tenant_id", "kind", "object_id", name="uq_accounting_syncs_object"),
    )
    op.create_index(op.f("ix_accounting_syncs_invoice_id"), "accounting_syncs", ["invoice_id"], unique=False)
    op.create_index(
        "ix_accounting_syncs_status", "accounting_syncs", ["provider", "tenant_id", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_accounting_syncs_status", table_name="accounting_syncs")
    op.drop_index(op.f("ix_accounting_syncs_invoice_id"), table_name="accounting_syncs")
    op.drop_table("accounting_syncs")
    op.drop_table("accounting_connections")
