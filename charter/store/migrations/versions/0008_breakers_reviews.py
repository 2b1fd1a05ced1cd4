"""Circuit breakers per member and engine version, with their attempt counts; reviews of
sampled completed tasks.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TIMESTAMP = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "breakers",
        sa.Column("member", sa.String(64), primary_key=True),
        sa.Column("engine_version", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False, comment="closed|open|half_open"),
        sa.Column("changed_at", TIMESTAMP, nullable=False),
        sa.Column("until", TIMESTAMP, nullable=True,
                  comment="open: when its cool-down ends"),
        sa.Column("probe_task", sa.String(36), nullable=True,
                  comment="half_open: the probe task"),
        sa.Column("evidence", sa.Text, nullable=False, comment="JSON: why it last changed"),
    )
    op.create_index("ix_breakers_state", "breakers", ["state"])
    op.create_table(
        "breaker_counts",
        sa.Column("member", sa.String(64), primary_key=True),
        sa.Column("engine_version", sa.String(64), primary_key=True),
        sa.Column("second", sa.BigInteger, primary_key=True, autoincrement=False,
                  comment="POSIX second in which the attempts ended"),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
    )
    op.create_table(
        "reviews",
        sa.Column("task_id", sa.String(36), primary_key=True),
        sa.Column("member", sa.String(64), nullable=False, comment="whose completed work"),
        sa.Column("engine_version", sa.String(64), nullable=False),
        sa.Column("task_type", sa.String(64), nullable=False),
        sa.Column("evaluator", sa.String(64), nullable=False),
        sa.Column("level", sa.String(16), nullable=False,
                  comment="the member's autonomy then"),
        sa.Column("rate", sa.Float, nullable=False,
                  comment="the sampling rate it was drawn at"),
        sa.Column("status", sa.String(16), nullable=False, comment="pending|done"),
        sa.Column("requested_at", TIMESTAMP, nullable=False),
        sa.Column("reviewed_by", sa.String(64), nullable=True),
        sa.Column("reviewed_at", TIMESTAMP, nullable=True),
        sa.Column("success", sa.Boolean, nullable=True),
        sa.Column("quality", sa.Float, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("agreed", sa.Boolean, nullable=True,
                  comment="whether the verdict matched the member's self-report"),
    )
    op.create_index("ix_reviews_evaluator_status", "reviews", ["evaluator", "status"])
    op.create_index("ix_reviews_member_type", "reviews", ["member", "task_type"])


def downgrade() -> None:
    op.drop_index("ix_reviews_member_type", "reviews")
    op.drop_index("ix_reviews_evaluator_status", "reviews")
    op.drop_table("reviews")
    op.drop_table("breaker_counts")
    op.drop_index("ix_breakers_state", "breakers")
    op.drop_table("breakers")
