"""Create the booking, hand-off, red-flag, feedback and outbox tables.

Revision ID: 0001_initial
Revises:
Create Date: 2025-11-25 18:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _aware() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create all tables."""
    op.create_table(
        "booking_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(16), nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("phone_e164", sa.String(16), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("body_part", sa.String(100), nullable=False),
        sa.Column("preferred_times", sa.Text(), nullable=False),
        sa.Column("preferred_times_parsed", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("consent_given_at", _aware(), nullable=False),
        sa.Column("channel", sa.String(50), nullable=False),
        sa.Column("created_at", _aware(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.CheckConstraint(
            "status IN ('new', 'contacted', 'scheduled', 'cancelled')",
            name=op.f("ck_booking_requests_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_requests")),
        sa.UniqueConstraint("reference", name=op.f("uq_booking_requests_reference")),
        sa.UniqueConstraint(
            "idempotency_key", name=op.f("uq_booking_requests_idempotency_key")
        ),
    )
    op.create_index(
        op.f("ix_booking_requests_conversation_id"),
        "booking_requests",
        ["conversation_id"],
    )

    op.create_table(
        "handoff_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("last_topic", sa.String(200), nullable=True),
        sa.Column("contact_name", sa.String(200), nullable=True),
        sa.Column("contact_phone", sa.String(16), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("within_hours", sa.Boolean(), nullable=False),
        sa.Column("callback_requested", sa.Boolean(), nullable=False),
        sa.Column("created_at", _aware(), nullable=False),
        sa.Column("updated_at", _aware(), nullable=False),
        sa.Column("taken_by", sa.String(100), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'taken', 'released', 'closed')",
            name=op.f("ck_handoff_requests_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_requests")),
    )
    op.create_index(
        op.f("ix_handoff_requests_conversation_id"),
        "handoff_requests",
        ["conversation_id"],
    )
    op.create_index("ix_handoff_requests_status", "handoff_requests", ["status"])

    op.create_table(
        "red_flag_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("flags", sa.String(500), nullable=False),
        sa.Column("message_excerpt", sa.String(500), nullable=False),
        sa.Column("created_at", _aware(), nullable=False),
        sa.Column("acknowledged_at", _aware(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_red_flag_alerts")),
    )
    op.create_index(
        op.f("ix_red_flag_alerts_conversation_id"),
        "red_flag_alerts",
        ["conversation_id"],
    )

    op.create_table(
        "answer_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", _aware(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer_feedback")),
    )
    op.create_index(
        op.f("ix_answer_feedback_conversation_id"),
        "answer_feedback",
        ["conversation_id"],
    )
    op.create_index(op.f("ix_answer_feedback_topic"), "answer_feedback", ["topic"])

    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", _aware(), nullable=False),
        sa.Column("created_at", _aware(), nullable=False),
        sa.Column("sent_at", _aware(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('booking', 'handoff', 'red_flag')",
            name=op.f("ck_notification_outbox_kind"),
        ),
        sa.CheckConstraint(
            "channel IN ('email', 'webhook')",
            name=op.f("ck_notification_outbox_channel"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')",
            name=op.f("ck_notification_outbox_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_outbox")),
    )
    op.create_index(
        "ix_notification_outbox_due",
        "notification_outbox",
        ["status", "next_attempt_at"],
    )


def downgrade() -> None:
    """Drop all tables (loses every stored request)."""
    op.drop_index("ix_notification_outbox_due", table_name="notification_outbox")
    op.drop_table("notification_outbox")
    op.drop_index(op.f("ix_answer_feedback_topic"), table_name="answer_feedback")
    op.drop_index(
        op.f("ix_answer_feedback_conversation_id"), table_name="answer_feedback"
    )
    op.drop_table("answer_feedback")
    op.drop_index(
        op.f("ix_red_flag_alerts_conversation_id"), table_name="red_flag_alerts"
    )
    op.drop_table("red_flag_alerts")
    op.drop_index("ix_handoff_requests_status", table_name="handoff_requests")
    op.drop_index(
        op.f("ix_handoff_requests_conversation_id"), table_name="handoff_requests"
    )
    op.drop_table("handoff_requests")
    op.drop_index(
        op.f("ix_booking_requests_conversation_id"), table_name="booking_requests"
    )
    op.drop_table("booking_requests")
