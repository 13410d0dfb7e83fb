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

from ipledger.ledger.proofs import fill_tree

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The schema as of this revision (ledger/proofs.py defines the tables the code uses).
TABLES = {
    "ipledger_tree_leaves": lambda: op.create_table(
        "ipledger_tree_leaves",
        sa.Column("idx", POSITION, primary_key=True, autoincrement=False),
        sa.Column("position", POSITION, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
    ),
    "ipledger_tree_nodes": lambda: op.create_table(
        "ipledger_tree_nodes",
        sa.Column("level", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("idx", POSITION, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sqlite_with_rowid=False,
    ),
    "ipledger_tree_head": lambda: op.create_table(
        "ipledger_tree_head",
        sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("size", POSITION, nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
    ),
    "ipledger_checkpoints": lambda: op.create_table(
        "ipledger_checkpoints",
        sa.Column("id", POSITION, primary_key=True, autoincrement=True),
        sa.Column("size", POSITION, nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
    ),
    "ipledger_settings": lambda: op.create_table(
        "ipledger_settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    ),
}


def upgrade() -> None:
    bind = op.get_bind()
    for name, create in TABLES.items():
        if not sa.inspect(bind).has_table(name):  # a store made by the library's create_table has them
            create()
    if bind.execute(sa.text("SELECT id FROM ipledger_tree_head")).first() is None:
        fill_tree(bind)


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
