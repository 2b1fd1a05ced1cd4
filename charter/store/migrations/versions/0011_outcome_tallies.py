"""Tallies of the outcomes that count, per member, engine version, task type and hour,
filled from the outcomes already recorded.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TIMESTAMP = sa.String(32)
MONEY = sa.Numeric(20, 4)

BACKFILL = """
INSERT INTO outcome_tallies (member, engine_version, task_type, hour, first_at, n,
    successes, verified, cost_total, costed, duration_total, timed)
SELECT member, engine_version, task_type, substr(at, 1, 13), min(at),
    sum(CASE WHEN counted_rank = 1 THEN 1 ELSE 0 END),
    sum(CASE WHEN counted_rank = 1 AND success THEN 1 ELSE 0 END),
    sum(CASE WHEN counted_rank = 1 AND verified THEN 1 ELSE 0 END),
    coalesce(sum(CASE WHEN counted_rank = 1 THEN cost END), 0),
    count(CASE WHEN counted_rank = 1 THEN cost END),
    coalesce(sum(CASE WHEN counted_rank = 1 THEN duration_s END), 0),
    count(CASE WHEN counted_rank = 1 THEN duration_s END)
FROM (SELECT member, engine_version, task_type, success, verified, cost, duration_s, at,
             row_number() OVER (PARTITION BY task_id, member
                                ORDER BY verified DESC, at DESC, id DESC) AS counted_rank
      FROM outcomes) AS ranked
GROUP BY member, engine_version, task_type, substr(at, 1, 13)
"""
"""One outcome counts per task and member — the first by (verified, at, id) descending —
as `charter.outcometallies` keeps it while outcomes are recorded."""


def upgrade() -> None:
    op.create_table(
        "outcome_tallies",
        sa.Column("member", sa.String(64), primary_key=True),
        sa.Column("engine_version", sa.String(64), primary_key=True),
        sa.Column("task_type", sa.String(64), primary_key=True),
        sa.Column("hour", sa.String(13), primary_key=True,
                  comment="the first 13 characters of the outcomes' time: YYYY-MM-DDTHH"),
        sa.Column("first_at", TIMESTAMP, nullable=False,
                  comment="the earliest outcome recorded in the hour, counted or not"),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("successes", sa.Integer, nullable=False),
        sa.Column("verified", sa.Integer, nullable=False),
        sa.Column("cost_total", MONEY, nullable=False),
        sa.Column("costed", sa.Integer, nullable=False),
        sa.Column("duration_total", sa.Float, nullable=False),
        sa.Column("timed", sa.Integer, nullable=False),
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_table("outcome_tallies")
