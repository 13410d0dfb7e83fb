"""The event store: events, their hash chain, and command records.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy_utils.types.uuid import UUIDType

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Same shape as eventsourcing-sqlalchemy's StoredEventRecord for table "ipledger_events".
    op.create_table(
        "ipledger_events",
        sa.Column("id", POSITION, primary_key=True, autoincrement=True),
        sa.Column("originator_id", UUIDType(), nullable=False),
        sa.Column("originator_version", POSITION, nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
    )
    op.create_index(
        "ipledger_events_aggregate_idx", "ipledger_events", ["originator_id", "originator_version"], unique=True
    )
    op.create_table(
        "ipledger_chain",
        sa.Column("position", POSITION, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "ipledger_commands",
        sa.Column("command_id", sa.String(200), primary_key=True),
        sa.Column("command", sa.String(64), nullable=False),
        sa.Column("outcome", sa.LargeBinary(), nullable=False),
        sa.Column("position", POSITION, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ipledger_commands")
    op.drop_table("ipledger_chain")
    op.drop_index("ipledger_events_aggregate_idx", table_name="ipledger_events")
    op.drop_table("ipledger_events")
