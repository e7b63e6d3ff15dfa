"""The webhook inbox's dispatch lease: receivers answer once an event is recorded and routed,
and a dispatcher claims routed events (``dispatching_until``) to hand them to Temporal.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhook_events", sa.Column("dispatching_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("webhook_events", "dispatching_until")
