"""Indexes for the dashboard's lists: ledger searches by kind, subject or actor in seq
order; the task list newest first, whole or by state, assignee, requester or type; a
member's record on a task type counted from the outcomes index alone.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

EVENT_COLUMNS = ("kind", "subject", "actor")
TASK_INDEXES = {
    "ix_tasks_created": ["created_at", "id"],
    "ix_tasks_state_created": ["state", "created_at", "id"],
    "ix_tasks_assignee_created": ["assignee", "created_at", "id"],
    "ix_tasks_requester_created": ["requester", "created_at", "id"],
    "ix_tasks_type_created": ["type", "created_at", "id"],
}


def upgrade() -> None:
    for column in EVENT_COLUMNS:
        op.create_index(f"ix_events_{column}_seq", "events", [column, "seq"])
        op.drop_index(f"ix_events_{column}", "events")
    for name, columns in TASK_INDEXES.items():
        op.create_index(name, "tasks", columns)
    op.drop_index("ix_outcomes_member_type", "outcomes")
    op.create_index("ix_outcomes_member_type", "outcomes",
                    ["member", "task_type", "success", "verified"])


def downgrade() -> None:
    op.drop_index("ix_outcomes_member_type", "outcomes")
    op.create_index("ix_outcomes_member_type", "outcomes", ["member", "task_type"])
    for name in TASK_INDEXES:
        op.drop_index(name, "tasks")
    for column in EVENT_COLUMNS:
        op.create_index(f"ix_events_{column}", "events", [column])
        op.drop_index(f"ix_events_{column}_seq", "events")
