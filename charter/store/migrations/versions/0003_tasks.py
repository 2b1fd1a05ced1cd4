"""Work: tasks, outcomes and earned autonomy levels.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TIMESTAMP = sa.String(32)
MONEY = sa.Numeric(20, 4)


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("payload", sa.Text, nullable=False, comment="canonical JSON"),
        sa.Column("value", MONEY, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("deadline", TIMESTAMP, nullable=True),
        sa.Column("requester", sa.String(128), nullable=False),
        sa.Column("state", sa.String(24), nullable=False,
                  comment="queued|assigned|running|awaiting_approval|done|failed|cancelled"),
        sa.Column("assignee", sa.String(64), nullable=True),
        sa.Column("fencing", sa.BigInteger, nullable=False,
                  comment="token of the latest claim"),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("lease_until", TIMESTAMP, nullable=True),
        sa.Column("fallback_step", sa.Integer, nullable=False,
                  comment="index into the protocol"),
        sa.Column("fallback_used", sa.Integer, nullable=False,
                  comment="uses of that step so far"),
        sa.Column("excluded", sa.Text, nullable=False,
                  comment="JSON list of members that failed it"),
        sa.Column("approval_id", sa.String(36), nullable=True),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=True, comment="why it is in its current state"),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_tasks_state_priority", "tasks", ["state", "priority", "created_at"])
    op.create_index("ix_tasks_assignee_state", "tasks", ["assignee", "state"])
    op.create_index("ix_tasks_lease", "tasks", ["state", "lease_until"])
    op.create_table(
        "outcomes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("member", sa.String(64), nullable=False),
        sa.Column("engine_version", sa.String(64), nullable=False),
        sa.Column("task_type", sa.String(64), nullable=False),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("quality", sa.Float, nullable=True),
        sa.Column("cost", MONEY, nullable=True),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("reported_by", sa.String(128), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_outcomes_member_type", "outcomes", ["member", "task_type"])
    op.create_index("ix_outcomes_task", "outcomes", ["task_id"])
    op.create_table(
        "autonomy_levels",
        sa.Column("member", sa.String(64), primary_key=True),
        sa.Column("task_type", sa.String(64), primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("changed_at", TIMESTAMP, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False, comment="JSON: n, bound, threshold"),
    )


def downgrade() -> None:
    op.drop_table("autonomy_levels")
    op.drop_index("ix_outcomes_task", "outcomes")
    op.drop_index("ix_outcomes_member_type", "outcomes")
    op.drop_table("outcomes")
    op.drop_index("ix_tasks_lease", "tasks")
    op.drop_index("ix_tasks_assignee_state", "tasks")
    op.drop_index("ix_tasks_state_priority", "tasks")
    op.drop_table("tasks")
