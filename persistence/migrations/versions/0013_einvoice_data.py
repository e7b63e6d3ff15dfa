"""E-invoice data (EN 16931): the customer's structured postal address, buyer reference, electronic
address and e-invoice format; per line the unit, VAT category and exemption reason; per invoice the
order, contract and project references, the invoicing period and where its e-invoice stands.

Revision ID: 0013_einvoice_data
Revises: 0011_books_inbound
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013_einvoice_data"
down_revision = "0011_books_inbound"
branch_labels = None
depends_on = None

CUSTOMER = [
    ("address_line1", sa.String(300)),
    ("address_line2", sa.String(300)),
    ("city", sa.String(120)),
    ("postal_code", sa.String(32)),
    ("region", sa.String(120)),
    ("country", sa.String(2)),
    ("buyer_reference", sa.String(200)),
    ("endpoint", sa.String(200)),
]
INVOICE = [
    ("purchase_order", sa.String(200)),
    ("contract_ref", sa.String(200)),
    ("project_ref", sa.String(200)),
]


def upgrade() -> None:
    for name, kind in CUSTOMER:
        op.add_column("customers", sa.Column(name, kind, nullable=False, server_default=""))
    op.add_column(
        "customers", sa.Column("einvoice_format", sa.String(16), nullable=False, server_default="none")
    )
    for name, kind in INVOICE:
        op.add_column("invoices", sa.Column(name, kind, nullable=False, server_default=""))
    op.add_column("invoices", sa.Column("period_start", sa.Date(), nullable=True))
    op.add_column("invoices", sa.Column("period_end", sa.Date(), nullable=True))
    op.add_column("invoices", sa.Column("einvoice_key", sa.String(200), nullable=True))
    op.add_column("invoices", sa.Column("einvoice_status", sa.String(16), nullable=False, server_default=""))
    op.add_column("invoices", sa.Column("einvoice_errors", JSONB(), nullable=True))
    op.add_column("invoice_lines", sa.Column("unit", sa.String(3), nullable=False, server_default="C62"))
    op.add_column("invoice_lines", sa.Column("tax_category", sa.String(2), nullable=True))
    op.add_column(
        "invoice_lines", sa.Column("tax_exemption_reason", sa.Text(), nullable=False, server_default="")
    )


def downgrade() -> None:
    for name in ("tax_exemption_reason", "tax_category", "unit"):
        op.drop_column("invoice_lines", name)
    for name in ("einvoice_errors", "einvoice_status", "einvoice_key", "period_end", "period_start"):
        op.drop_column("invoices", name)
    for name, _ in reversed(INVOICE):
        op.drop_column("invoices", name)
    op.drop_column("customers", "einvoice_format")
    for name, _ in reversed(CUSTOMER):
        op.drop_column("customers", name)
