"""Versioned schema migrations of the event store (Alembic)."""
