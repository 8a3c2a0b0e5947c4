"""Trigram index for the console's text search on PostgreSQL.

Staff search the patients' messages (`conversation_summaries.search_text`) with a
case-insensitive substring match; over 100,000 conversations a sequential scan took
over 500 ms (p95, `python -m bot.bench --only console`). A pg_trgm GIN index on
lower(search_text) serves `LIKE '%words%'`. SQLite scans (under 200 ms at that size).

Revision ID: 0005_console
Revises: 0004_console
"""

from __future__ import annotations

from alembic import op

revision: str = "0005_console"
down_revision: str | None = "0004_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the extension (once per database, in public) and the index."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_conversation_summaries_search_trgm ON conversation_summaries "
        "USING gin (lower(search_text) public.gin_trgm_ops)"
    )


def downgrade() -> None:
    """Drop the index (the extension stays: other schemas may use it)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_conversation_summaries_search_trgm")
