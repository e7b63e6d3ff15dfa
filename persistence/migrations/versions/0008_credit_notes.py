"""Credit notes: numbered credit notes with lines, the invoices' credited amount, the
customer credit ledger (overpayments and credit beyond the amount due, applied to the next invoice)
and refunds of recorded payments.

Existing overpayments (``invoices.credit_amount``) are carried into the ledger, so credit clients
already have is applied to their next invoice like new credit.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("amount_credited", sa.Numeric(), server_default="0", nullable=False))
    op.create_table(
        "credit_notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("series", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("subtotal", sa.Numeric(), nullable=False),
        sa.Column("tax_total", sa.Numeric(), nullable=False),
        sa.Column("total", sa.Numeric(), nullable=False),
        sa.Column("to_customer_credit", sa.Numeric(), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("pdf_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_credit_notes_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_credit_notes_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_notes")),
        sa.UniqueConstraint("invoice_id", "idempotency_key", name="uq_credit_notes_invoice_key"),
        sa.UniqueConstraint("number", name=op.f("uq_credit_notes_number")),
    )
    op.create_index(op.f("ix_credit_notes_customer_id"), "credit_notes", ["customer_id"], unique=False)
    op.create_index(op.f("ix_credit_notes_invoice_id"), "credit_notes", ["invoice_id"], unique=False)
    op.create_table(
        "credit_note_lines",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("credit_note_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Numeric(), nullable=False),
        sa.Column("unit_price", sa.Numeric(), nullable=False),
        sa.Column("discount_percent", sa.Numeric(), nullable=False),
        sa.Column("discount_amount", sa.Numeric(), nullable=False),
        sa.Column("tax_rate", sa.Numeric(), nullable=False),
        sa.Column("gross", sa.Numeric(), nullable=False),
        sa.Column("discount", sa.Numeric(), nullable=False),
        sa.Column("net", sa.Numeric(), nullable=False),
        sa.ForeignKeyConstraint(
            ["credit_note_id"],
            ["credit_notes.id"],
            name=op.f("fk_credit_note_lines_credit_note_id_credit_notes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_note_lines")),
        sa.UniqueConstraint("credit_note_id", "position", name="uq_credit_note_lines_position"),
    )
    op.create_table(
        "customer_credit_entries",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=True),
        sa.Column("credit_note_id", sa.Uuid(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["credit_note_id"],
            ["credit_notes.id"],
            name=op.f("fk_customer_credit_entries_credit_note_id_credit_notes"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_credit_entries_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_customer_credit_entries_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_credit_entries")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_customer_credit_entries_dedupe_key")),
    )
    op.create_index(
        "ix_customer_credit_entries_customer_currency",
        "customer_credit_entries",
        ["customer_id", "currency"],
        unique=False,
    )
    op.create_index(
        op.f("ix_customer_credit_entries_invoice_id"), "customer_credit_entries", ["invoice_id"], unique=False
    )
    op.create_table(
        "refunds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_refunds_invoice_id_invoices")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_refunds_payment_id_payments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_refunds_idempotency_key")),
    )
    op.create_index(op.f("ix_refunds_invoice_id"), "refunds", ["invoice_id"], unique=False)
    op.create_index(op.f("ix_refunds_payment_id"), "refunds", ["payment_id"], unique=False)
    # Overpayments recorded before this release become ledger credit (same key as new ones use).
    op.execute(
        "insert into customer_credit_entries (customer_id, currency, amount, kind, invoice_id, dedupe_key) "
        "select customer_id, currency, credit_amount, 'overpayment', id, 'invoice:' || id || ':' || "
        "'overpayment' "
        "from invoices where credit_amount > 0"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_refunds_payment_id"), table_name="refunds")
    op.drop_index(op.f("ix_refunds_invoice_id"), table_name="refunds")
    op.drop_table("refunds")
    op.drop_index(op.f("ix_customer_credit_entries_invoice_id"), table_name="customer_credit_entries")
    op.drop_index("ix_customer_credit_entries_customer_currency", table_name="customer_credit_entries")
    op.drop_table("customer_credit_entries")
    op.drop_table("credit_note_lines")
    op.drop_index(op.f("ix_credit_notes_invoice_id"), table_name="credit_notes")
    op.drop_index(op.f("ix_credit_notes_customer_id"), table_name="credit_notes")
    op.drop_table("credit_notes")
    op.drop_column("invoices", "amount_credited")
