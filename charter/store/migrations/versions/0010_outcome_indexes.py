"""Outcome indexes for a member's record: which outcome counts for a task is decided
from the task index alone, and a member's first and last outcome are read from an index.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_outcomes_task", "outcomes")
    op.create_index("ix_outcomes_task", "outcomes", ["task_id", "member", "verified", "at", "id"])
    op.create_index("ix_outcomes_member_at", "outcomes", ["member", "at"])


def downgrade() -> None:
    op.drop_index("ix_outcomes_member_at", "outcomes")
    op.drop_index("ix_outcomes_task", "outcomes")
    op.create_index("ix_outcomes_task", "outcomes", ["task_id"])
