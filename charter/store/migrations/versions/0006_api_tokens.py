"""The service: API bearer tokens, stored hashed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TIMESTAMP = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("member", sa.String(64), nullable=False),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True,
                  comment="sha256 of the token; the token itself is never stored"),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
    )
    op.create_index("ix_api_tokens_member", "api_tokens", ["member"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_member", "api_tokens")
    op.drop_table("api_tokens")
