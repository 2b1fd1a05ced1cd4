"""Engines and workers: what an engine saved while its task awaits approval, and the
actions members performed after Charter allowed them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TIMESTAMP = sa.String(32)


def upgrade() -> None:
    op.add_column("tasks", sa.Column(
        "resume", sa.Text, nullable=True,
        comment="JSON: what the engine saved while the task awaits approval"))
    op.create_table(
        "actions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("key", sa.String(320), nullable=False, unique=True,
                  comment="idempotency key: one action per key, ever"),
        sa.Column("task_id", sa.String(36), nullable=True),
        sa.Column("member", sa.String(64), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("resource", sa.String(256), nullable=False),
        sa.Column("context", sa.Text, nullable=False, comment="canonical JSON"),
        sa.Column("approval_id", sa.String(36), nullable=True,
                  comment="the approval it needed"),
        sa.Column("output", sa.Text, nullable=True,
                  comment="JSON: what performing it returned"),
        sa.Column("at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_actions_task", "actions", ["task_id"])
    op.create_index("ix_actions_member", "actions", ["member"])


def downgrade() -> None:
    op.drop_index("ix_actions_member", "actions")
    op.drop_index("ix_actions_task", "actions")
    op.drop_table("actions")
    op.drop_column("tasks", "resume")
