"""Command records carry the digest of the request they answered (command, canonical
arguments, actor), so a command id reused for something else is refused
(IdempotencyConflict) instead of answered with another command's outcome.

Records written before this revision have none: their repeats are judged by the
command name alone.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if "digest" not in {c["name"] for c in sa.inspect(bind).get_columns("ipledger_commands")}:
        op.add_column("ipledger_commands", sa.Column("digest", sa.String(64), nullable=True))  # else made by create_all
    # A record whose command's envelope carries its digest gets it back (a store downgraded
    # and upgraded again); records older than digests stay without.
    rows = bind.execute(
        sa.text(
            "SELECT c.command_id, e.state FROM ipledger_commands c JOIN ipledger_events e ON e.id = c.position "
            "WHERE c.digest IS NULL"
        ).execution_options(stream_results=True)
    )
    updates = []
    for command_id, state in rows:
        digest = (orjson.loads(bytes(state)).get("meta") or {}).get("digest")
        if isinstance(digest, str):
            updates.append({"d": digest, "c": command_id})
    if updates:
        bind.execute(sa.text("UPDATE ipledger_commands SET digest = :d WHERE command_id = :c"), updates)


def downgrade() -> None:
    op.drop_column("ipledger_commands", "digest")
