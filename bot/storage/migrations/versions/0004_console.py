"""Staff console: staff users, sessions, audit log, conversation summaries, notes, status
history, per-flag alert rows with acknowledgement, NLU corrections; the queue lifecycle.

Bookings move new -> contacted -> booked / no_answer / closed (old `scheduled` becomes
`booked`, `cancelled` becomes `closed`); handoffs gain the same call-back states.

Revision ID: 0004_console
Revises: 0003_seen_channel_messages
Create Date: 2026-12-02 15:49:43
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_console"
down_revision: str | None = "0003_seen_channel_messages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_BOOKING = "status IN ('new', 'contacted', 'scheduled', 'cancelled')"
NEW_BOOKING = "status IN ('new', 'contacted', 'booked', 'no_answer', 'closed')"
OLD_HANDOFF = "status IN ('open', 'taken', 'released', 'closed')"
NEW_HANDOFF = "status IN ('open', 'taken', 'released', 'contacted', 'booked', 'no_answer', 'closed')"


def _recheck(table: str, check: str, renames: dict[str, str], fallback: str) -> None:
    """Swap a status CHECK constraint, mapping statuses the new one does not allow."""
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint("status", type_="check")
    for old, new in renames.items():
        op.execute(sa.text(f"UPDATE {table} SET status = :new WHERE status = :old").bindparams(old=old, new=new))
    allowed = check[check.index("(") + 1 : check.rindex(")")].replace("'", "").split(", ")
    placeholders = ", ".join(f"'{value}'" for value in allowed)
    op.execute(sa.text(f"UPDATE {table} SET status = '{fallback}' WHERE status NOT IN ({placeholders})"))
    with op.batch_alter_table(table) as batch:
        batch.create_check_constraint("status", check)


def upgrade() -> None:
    """Create the console's tables and columns; move statuses to the queue lifecycle."""
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('receptionist', 'clinician', 'admin')", name=op.f("ck_staff_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_users_username")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_kind", sa.String(length=32), nullable=True),
        sa.Column("target_id", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["staff_users.id"], name=op.f("fk_audit_log_user_id_staff_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_user_id"), ["user_id"], unique=False)

    op.create_table(
        "conversation_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("author_name", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["staff_users.id"],
            name=op.f("fk_conversation_notes_author_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_notes")),
    )
    with op.batch_alter_table("conversation_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversation_notes_conversation_id"), ["conversation_id"], unique=False)

    op.create_table(
        "conversation_summaries",
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_user_message_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("events_seen", sa.Integer(), nullable=False),
        sa.Column("topics", sa.String(length=1000), nullable=False),
        sa.Column("red_flag", sa.Boolean(), nullable=False),
        sa.Column("crisis", sa.Boolean(), nullable=False),
        sa.Column("booking", sa.Boolean(), nullable=False),
        sa.Column("handoff", sa.Boolean(), nullable=False),
        sa.Column("not_understood", sa.Boolean(), nullable=False),
        sa.Column("thumbs_down", sa.Boolean(), nullable=False),
        sa.Column("staff_replied", sa.Boolean(), nullable=False),
        sa.Column("taken_over", sa.Boolean(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("tags", sa.String(length=500), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["reviewed_by_id"],
            ["staff_users.id"],
            name=op.f("fk_conversation_summaries_reviewed_by_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_conversation_summaries")),
    )
    with op.batch_alter_table("conversation_summaries", schema=None) as batch_op:
        batch_op.create_index("ix_conversation_summaries_channel_started_at", ["channel", "started_at"], unique=False)
        batch_op.create_index("ix_conversation_summaries_last_event_at", ["last_event_at"], unique=False)
        batch_op.create_index("ix_conversation_summaries_started_at", ["started_at"], unique=False)

    op.create_table(
        "nlu_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=False),
        sa.Column("message_timestamp", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("predicted_intent", sa.String(length=100), nullable=True),
        sa.Column("predicted_confidence", sa.String(length=16), nullable=True),
        sa.Column("corrected_intent", sa.String(length=100), nullable=True),
        sa.Column("new_topic", sa.String(length=200), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_by_name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["staff_users.id"],
            name=op.f("fk_nlu_corrections_created_by_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nlu_corrections")),
        sa.UniqueConstraint("conversation_id", "message_timestamp", name="uq_nlu_corrections_conversation_id"),
    )
    with op.batch_alter_table("nlu_corrections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nlu_corrections_conversation_id"), ["conversation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nlu_corrections_corrected_intent"), ["corrected_intent"], unique=False)

    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["staff_users.id"], name=op.f("fk_staff_sessions_user_id_staff_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_sessions_token_hash")),
    )
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_sessions_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_staff_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "status_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("by_id", sa.Integer(), nullable=True),
        sa.Column("by_name", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('booking', 'handoff')", name=op.f("ck_status_history_kind")),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["staff_users.id"],
            name=op.f("fk_status_history_assignee_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["by_id"], ["staff_users.id"], name=op.f("fk_status_history_by_id_staff_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_history")),
    )
    with op.batch_alter_table("status_history", schema=None) as batch_op:
        batch_op.create_index("ix_status_history_kind_ref_id", ["kind", "ref_id"], unique=False)

    op.create_table(
        "red_flag_alert_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("flag", sa.String(length=64), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.CheckConstraint("tier IN ('emergency', 'urgent')", name=op.f("ck_red_flag_alert_flags_tier")),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["red_flag_alerts.id"],
            name=op.f("fk_red_flag_alert_flags_alert_id_red_flag_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_red_flag_alert_flags")),
    )
    with op.batch_alter_table("red_flag_alert_flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_red_flag_alert_flags_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_red_flag_alert_flags_flag"), ["flag"], unique=False)

    with op.batch_alter_table("booking_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_booking_requests_status_created_at", ["status", "created_at"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_booking_requests_assignee_id_staff_users"),
            "staff_users",
            ["assignee_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("handoff_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_consent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_handoff_requests_assignee_id_staff_users"),
            "staff_users",
            ["assignee_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("red_flag_alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acknowledged_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(length=500), nullable=True))
        batch_op.create_index(
            "ix_red_flag_alerts_acknowledged_at_created_at", ["acknowledged_at", "created_at"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_red_flag_alerts_acknowledged_by_id_staff_users"),
            "staff_users",
            ["acknowledged_by_id"],
            ["id"],
            ondelete="SET NULL",
        )

    _recheck("booking_requests", NEW_BOOKING, {"scheduled": "booked", "cancelled": "closed"}, "closed")
    _recheck("handoff_requests", NEW_HANDOFF, {}, "closed")


def downgrade() -> None:
    """Drop them again; statuses the old lifecycle lacks become the nearest old one."""
    _recheck(
        "booking_requests",
        OLD_BOOKING,
        {"booked": "scheduled", "closed": "cancelled", "no_answer": "cancelled"},
        "cancelled",
    )
    _recheck(
        "handoff_requests", OLD_HANDOFF, {"contacted": "closed", "booked": "closed", "no_answer": "closed"}, "closed"
    )
    with op.batch_alter_table("red_flag_alerts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_red_flag_alerts_acknowledged_by_id_staff_users"), type_="foreignkey")
        batch_op.drop_index("ix_red_flag_alerts_acknowledged_at_created_at")
        batch_op.drop_column("outcome")
        batch_op.drop_column("acknowledged_by_id")

    with op.batch_alter_table("handoff_requests", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_handoff_requests_assignee_id_staff_users"), type_="foreignkey")
        batch_op.drop_column("closed_at")
        batch_op.drop_column("assignee_id")
        batch_op.drop_column("contact_consent_at")

    with op.batch_alter_table("booking_requests", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_booking_requests_assignee_id_staff_users"), type_="foreignkey")
        batch_op.drop_index("ix_booking_requests_status_created_at")
        batch_op.drop_column("closed_at")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("assignee_id")

    with op.batch_alter_table("red_flag_alert_flags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_red_flag_alert_flags_flag"))
        batch_op.drop_index(batch_op.f("ix_red_flag_alert_flags_alert_id"))

    op.drop_table("red_flag_alert_flags")
    with op.batch_alter_table("status_history", schema=None) as batch_op:
        batch_op.drop_index("ix_status_history_kind_ref_id")

    op.drop_table("status_history")
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_sessions_user_id"))
        batch_op.drop_index(batch_op.f("ix_staff_sessions_expires_at"))

    op.drop_table("staff_sessions")
    with op.batch_alter_table("nlu_corrections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nlu_corrections_corrected_intent"))
        batch_op.drop_index(batch_op.f("ix_nlu_corrections_conversation_id"))

    op.drop_table("nlu_corrections")
    with op.batch_alter_table("conversation_summaries", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_summaries_started_at")
        batch_op.drop_index("ix_conversation_summaries_last_event_at")
        batch_op.drop_index("ix_conversation_summaries_channel_started_at")

    op.drop_table("conversation_summaries")
    with op.batch_alter_table("conversation_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_notes_conversation_id"))

    op.drop_table("conversation_notes")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_user_id"))
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))
        batch_op.drop_index(batch_op.f("ix_audit_log_action"))

    op.drop_table("audit_log")
    op.drop_table("staff_users")
