"""Trigram index for the console's text search on PostgreSQL.

Staff search the patients' messages (`conversation_summaries.search_text`) with a
case-insensitive substring match; over 100,000 conversations a sequential scan took
over 500 ms (p95, `python -m bot.bench --only console`). A pg_trgm GIN index on
lower(search_text) serves `LIKE '%words%'`. SQLite scans (under 200 ms at that size).

Revision ID: 0005_console
Revises: 0004_console
"""

from __future__ import annotations

import logging

from alembic import op
from sqlalchemy.exc import DBAPIError

logger = logging.getLogger(__name__)

revision: str = "0005_console"
down_revision: str | None = "0004_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the extension (once per database, in public) and the index.

    A database role that may not create extensions still migrates: search then scans,
    and a warning says how to add the index later.
    """
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    except DBAPIError:
        logger.warning(
            "pg_trgm could not be created (needs a role allowed to CREATE EXTENSION): the "
            "console's text search works without its index; create the extension and run "
            "this migration again (downgrade to 0004_console, upgrade) for faster search"
        )
        return
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_conversation_summaries_search_trgm ON conversation_summaries "
        "USING gin (lower(search_text) public.gin_trgm_ops)"
    )


def downgrade() -> None:
    """Drop the index (the extension stays: other schemas may use it)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_conversation_summaries_search_trgm")
