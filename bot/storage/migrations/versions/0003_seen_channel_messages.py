"""Remember platform message ids across restarts (replay protection of the channels).

Revision ID: 0003_seen_channel_messages
Revises: 0002_alert_tiers
Create Date: 2026-12-02 01:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_seen_channel_messages"
down_revision: str | None = "0002_alert_tiers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create seen_channel_messages."""
    op.create_table(
        "seen_channel_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seen_channel_messages")),
        sa.UniqueConstraint("channel", "message_id", name="uq_seen_channel_messages_channel_message_id"),
    )
    op.create_index("ix_seen_channel_messages_seen_at", "seen_channel_messages", ["seen_at"])


def downgrade() -> None:
    """Drop seen_channel_messages."""
    op.drop_index("ix_seen_channel_messages_seen_at", table_name="seen_channel_messages")
    op.drop_table("seen_channel_messages")
