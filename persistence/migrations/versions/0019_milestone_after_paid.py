"""Payment-driven milestones: a milestone can bill once an earlier invoice of its project is paid in full
(``bill_on = 'after_paid'``, ``after_key`` = the milestone key or ``deposit`` whose invoice must be paid).

Revision ID: 0019_milestone_after_paid
Revises: 0017_books_outbound
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_milestone_after_paid"
down_revision = "0017_books_outbound"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("project_milestones", sa.Column("after_key", sa.String(80), nullable=True))


def downgrade() -> None:
    op.drop_column("project_milestones", "after_key")
