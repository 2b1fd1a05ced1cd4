"""Operating safely: the kill switch (member suspensions, action freezes) and the trace
a task's spans belong to.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TIMESTAMP = sa.String(32)


def upgrade() -> None:
    op.add_column("tasks", sa.Column(
        "trace_id", sa.String(32), nullable=True,
        comment="the OpenTelemetry trace its spans belong to (hex), when tracing is on"))
    op.create_table(
        "suspensions",
        sa.Column("member", sa.String(64), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "freezes",
        sa.Column("action", sa.String(128), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("freezes")
    op.drop_table("suspensions")
    op.drop_column("tasks", "trace_id")
