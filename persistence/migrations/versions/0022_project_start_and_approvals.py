"""Projects that start when their deposit is paid; change orders through approval rules.

``start_on`` (``signature`` by default, or ``deposit_paid``) with ``started_at`` set when the deposit
invoice is paid in full; ``owner_email`` is the project's account owner (else the customer's). A
milestone done before the project starts keeps the event that completed it (``done_event``) and is
billed when the project starts. A change order that approval rules route keeps its chain and decisions
in ``approval``.

Revision ID: 0022
Revises: 0020_time_and_materials
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0022"
down_revision = "0020_time_and_materials"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "projects", sa.Column("start_on", sa.String(16), nullable=False, server_default="signature")
    )
    op.add_column("projects", sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("projects", sa.Column("owner_email", sa.String(320), nullable=True))
    op.add_column("project_milestones", sa.Column("done_event", sa.String(300), nullable=True))
    op.add_column("project_change_orders", sa.Column("approval", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("project_change_orders", "approval")
    op.drop_column("project_milestones", "done_event")
    for column in ("owner_email", "started_at", "start_on"):
        op.drop_column("projects", column)
