"""Projects (billing plans, external refs) and the webhook inbox.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 10:04:32.837787
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_secrets",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("secret", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_secrets")),
        sa.UniqueConstraint("provider", "secret", name="uq_webhook_secrets_provider_secret"),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("category", sa.String(length=120), nullable=True),
        sa.Column("contract_amount", sa.Numeric(), nullable=False),
        sa.Column("deposit_percent", sa.Numeric(), nullable=True),
        sa.Column("deposit_amount", sa.Numeric(), nullable=False),
        sa.Column("deposit_on", sa.String(length=16), nullable=False),
        sa.Column("deposit_invoice_id", sa.Uuid(), nullable=True),
        sa.Column("deposit_billed", sa.Numeric(), nullable=False),
        sa.Column("deposit_recouped", sa.Numeric(), nullable=False),
        sa.Column("deposit_event", sa.String(length=300), nullable=True),
        sa.Column("tax_rate", sa.Numeric(), nullable=False),
        sa.Column("payment_terms", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("workflow_id", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_projects_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("workflow_id", name=op.f("uq_projects_workflow_id")),
    )
    op.create_index(op.f("ix_projects_customer_id"), "projects", ["customer_id"], unique=False)
    op.create_table(
        "project_refs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("milestone_key", sa.String(length=80), nullable=True),
        sa.Column("system", sa.String(length=40), nullable=False),
        sa.Column("ref", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_refs_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_refs")),
        sa.UniqueConstraint("system", "ref", name="uq_project_refs_system_ref"),
    )
    op.create_index(op.f("ix_project_refs_project_id"), "project_refs", ["project_id"], unique=False)
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("dedupe_key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("system", sa.String(length=40), nullable=False),
        sa.Column("ref", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=True),
        sa.Column("milestone_key", sa.String(length=80), nullable=True),
        sa.Column("summary", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("provider", "dedupe_key", name="uq_webhook_events_provider_dedupe"),
    )
    op.create_index(op.f("ix_webhook_events_status"), "webhook_events", ["status"], unique=False)
    op.create_table(
        "project_milestones",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("percent", sa.Numeric(), nullable=True),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("bill_on", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=True),
        sa.Column("recouped", sa.Numeric(), nullable=False),
        sa.Column("billed_event", sa.String(length=300), nullable=True),
        sa.Column("billed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_project_milestones_invoice_id_invoices")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_milestones_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_milestones")),
        sa.UniqueConstraint("project_id", "key", name="uq_project_milestones_project_key"),
    )
    op.create_index(
        op.f("ix_project_milestones_project_id"), "project_milestones", ["project_id"], unique=False
    )
    # invoices ↔ projects reference each other, so this key is added once both tables exist.
    op.create_foreign_key(
        op.f("fk_projects_deposit_invoice_id_invoices"),
        "projects",
        "invoices",
        ["deposit_invoice_id"],
        ["id"],
    )
    op.add_column("invoices", sa.Column("project_id", sa.Uuid(), nullable=True))
    op.create_index(op.f("ix_invoices_project_id"), "invoices", ["project_id"], unique=False)
    op.create_foreign_key(
        op.f("fk_invoices_project_id_projects"), "invoices", "projects", ["project_id"], ["id"]
    )
    op.add_column(
        "estimates", sa.Column("project_plan", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column("estimates", sa.Column("project_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_estimates_project_id_projects"), "estimates", "projects", ["project_id"], ["id"]
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_projects_deposit_invoice_id_invoices"), "projects", type_="foreignkey")
    op.drop_constraint(op.f("fk_estimates_project_id_projects"), "estimates", type_="foreignkey")
    op.drop_column("estimates", "project_id")
    op.drop_column("estimates", "project_plan")
    op.drop_constraint(op.f("fk_invoices_project_id_projects"), "invoices", type_="foreignkey")
    op.drop_index(op.f("ix_invoices_project_id"), table_name="invoices")
    op.drop_column("invoices", "project_id")
    op.drop_index(op.f("ix_project_milestones_project_id"), table_name="project_milestones")
    op.drop_table("project_milestones")
    op.drop_index(op.f("ix_webhook_events_status"), table_name="webhook_events")
    op.drop_table("webhook_events")
    op.drop_index(op.f("ix_project_refs_project_id"), table_name="project_refs")
    op.drop_table("project_refs")
    op.drop_index(op.f("ix_projects_customer_id"), table_name="projects")
    op.drop_table("projects")
    op.drop_table("webhook_secrets")
