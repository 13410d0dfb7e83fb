"""Index events by topic: projections read only the topics they handle.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ipledger_events_topic_idx", "ipledger_events", ["topic", "id"])


def downgrade() -> None:
    op.drop_index("ipledger_events_topic_idx", table_name="ipledger_events")
