"""Projection tracking rows live in the versioned schema, so concurrent first opens of a
store never race to create the table.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if sa.inspect(bind).has_table("rm_projections"):
        return  # made by the read side before this revision existed
    op.create_table(
        "rm_projections",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_table("rm_projections")
