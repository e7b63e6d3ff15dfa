"""Dunning policies: named policies, their assignment to customers and invoices, the policy
frozen on an invoice at issue, dunning holds (disputes, payments in flight) and late fee charges.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dunning_policies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("definition", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dunning_policies")),
        sa.UniqueConstraint("name", name=op.f("uq_dunning_policies_name")),
    )
    op.add_column("customers", sa.Column("dunning_policy", sa.String(length=120), nullable=True))
    op.create_foreign_key(
        op.f("fk_customers_dunning_policy_dunning_policies"),
        "customers",
        "dunning_policies",
        ["dunning_policy"],
        ["name"],
    )
    op.add_column("invoices", sa.Column("dunning_policy", sa.String(length=120), nullable=True))
    op.add_column(
        "invoices", sa.Column("dunning_snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.create_foreign_key(
        op.f("fk_invoices_dunning_policy_dunning_policies"),
        "invoices",
        "dunning_policies",
        ["dunning_policy"],
        ["name"],
    )
    op.create_table(
        "dunning_holds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payment_key", sa.String(length=200), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resume_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_dunning_holds_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_dunning_holds_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dunning_holds")),
    )
    op.create_index(op.f("ix_dunning_holds_customer_id"), "dunning_holds", ["customer_id"], unique=False)
    op.create_index(op.f("ix_dunning_holds_invoice_id"), "dunning_holds", ["invoice_id"], unique=False)
    op.create_table(
        "late_fee_charges",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("assessed_on", sa.Date(), nullable=False),
        sa.Column("base", sa.Numeric(), nullable=True),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_late_fee_charges_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_late_fee_charges")),
        sa.UniqueConstraint("invoice_id", "sequence", name="uq_late_fee_charges_invoice_sequence"),
    )


def downgrade() -> None:
    op.drop_table("late_fee_charges")
    op.drop_index(op.f("ix_dunning_holds_invoice_id"), table_name="dunning_holds")
    op.drop_index(op.f("ix_dunning_holds_customer_id"), table_name="dunning_holds")
    op.drop_table("dunning_holds")
    op.drop_constraint(op.f("fk_invoices_dunning_policy_dunning_policies"), "invoices", type_="foreignkey")
    op.drop_column("invoices", "dunning_snapshot")
    op.drop_column("invoices", "dunning_policy")
    op.drop_constraint(op.f("fk_customers_dunning_policy_dunning_policies"), "customers", type_="foreignkey")
    op.drop_column("customers", "dunning_policy")
    op.drop_table("dunning_policies")
