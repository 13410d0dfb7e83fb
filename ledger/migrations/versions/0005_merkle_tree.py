"""The Merkle tree over the log (RFC 9162), its head, signed checkpoints and the log's
origin (issue 17, ledger/proofs.py).

A store written before this revision gets its tree built from the log here, so every
event it ever recorded is provable.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ipledger.ledger.proofs import checkpoints_table, fill_tree, head_table, leaves_table, nodes_table, settings_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = (leaves_table, nodes_table, head_table, checkpoints_table, settings_table)


def upgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:
        table.create(bind, checkfirst=True)  # a store made by the library's create_table has them
    if bind.execute(sa.select(head_table.c.id)).first() is None:
        fill_tree(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(TABLES):
        table.drop(bind, checkfirst=True)
