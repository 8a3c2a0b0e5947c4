"""Red-flag alerts carry their urgency tier and categories.

Revision ID: 0002_alert_tiers
Revises: 0001_initial
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_alert_tiers"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add `tier` (emergency/urgent) and `categories`; existing alerts become emergencies."""
    with op.batch_alter_table("red_flag_alerts") as batch:
        batch.add_column(
            sa.Column("tier", sa.String(20), nullable=False, server_default="emergency")
        )
        batch.add_column(
            sa.Column("categories", sa.String(200), nullable=False, server_default="back_knee")
        )
        batch.create_check_constraint("tier", "tier IN ('emergency', 'urgent')")


def downgrade() -> None:
    """Drop the two columns."""
    with op.batch_alter_table("red_flag_alerts") as batch:
        batch.drop_constraint("tier", type_="check")
        batch.drop_column("categories")
        batch.drop_column("tier")
