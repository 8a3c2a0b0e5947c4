"""Hand-offs, red-flag alerts and feedback as staff will see them."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from bot.storage.database import Database
from bot.storage.models import UTC, RedFlagAlertFlag
from bot.storage.repository import MAX_EXCERPT, NotFound, Repository, ValidationError


def test_handoff_without_consent_keeps_no_contact_details(repo: Repository) -> None:
    handoff = repo.create_handoff(
        conversation_id="c1",
        reason="asked for a human",
        within_hours=True,
        last_topic="knee",
    )
    assert handoff.status == "open"
    assert handoff.contact_name is None and handoff.contact_phone is None

    with pytest.raises(ValidationError):
        repo.create_handoff(
            conversation_id="c2",
            reason="asked for a human",
            within_hours=False,
            contact_phone="+441632960123",
        )
    assert [h.conversation_id for h in repo.open_handoffs()] == ["c1"]


def test_callback_with_consent_stores_contact_and_notifies(repo: Repository) -> None:
    handoff = repo.create_handoff(
        conversation_id="c3",
        reason="out of hours",
        within_hours=False,
        callback_requested=True,
        contact_name="Sam Lee",
        contact_phone="+441632960999",
        contact_consented=True,
        notify_channels=("email",),
    )
    assert handoff.contact_phone == "+441632960999"
    assert handoff.callback_requested is True
    [row] = repo.notifications_for("handoff", handoff.id)
    assert row.payload["contact_phone"] == "+441632960999"
    assert row.payload["within_hours"] is False


def test_callback_needs_a_phone_number(repo: Repository) -> None:
    with pytest.raises(ValidationError) as caught:
        repo.create_handoff(
            conversation_id="c4",
            reason="x",
            within_hours=True,
            callback_requested=True,
            contact_consented=True,
        )
    assert caught.value.field == "contact_phone"


def test_handoff_lifecycle(repo: Repository) -> None:
    handoff = repo.create_handoff(
        conversation_id="c5", reason="pain", within_hours=True
    )

    with pytest.raises(ValidationError):
        repo.set_handoff_status(handoff.id, "taken")  # who took it?
    taken = repo.set_handoff_status(handoff.id, "taken", taken_by="nurse.kim")
    assert taken.taken_by == "nurse.kim"
    assert taken.updated_at >= handoff.updated_at
    assert [h.id for h in repo.open_handoffs()] == [handoff.id]

    released = repo.set_handoff_status(handoff.id, "released")
    assert released.status == "released"
    assert repo.open_handoffs() == []
    assert [h.id for h in repo.open_handoffs(statuses=("released",))] == [handoff.id]

    closed = repo.set_handoff_status(handoff.id, "closed")
    assert repo.set_handoff_status(handoff.id, "closed") == closed  # double click
    with pytest.raises(ValidationError):
        repo.set_handoff_status(handoff.id, "open")
    with pytest.raises(ValidationError):
        repo.set_handoff_status(handoff.id, "escalated")
    with pytest.raises(NotFound):
        repo.set_handoff_status(999_999, "closed")


def test_open_handoffs_lists_oldest_first(repo: Repository) -> None:
    ids = [
        repo.create_handoff(conversation_id=f"c{i}", reason="r", within_hours=True).id
        for i in range(3)
    ]
    repo.set_handoff_status(ids[1], "closed")
    assert [h.id for h in repo.open_handoffs()] == [ids[0], ids[2]]


def test_red_flag_excerpt_is_cleaned_and_truncated(repo: Repository) -> None:
    message = "I can't feel my legs\x00 and " + "numb " * 2000 + "🦴"
    alert = repo.record_red_flag(
        conversation_id="c6",
        flags=["cauda_equina", "saddle_anaesthesia", "cauda_equina"],
        message=message,
        notify_channels=("webhook",),
    )
    assert alert.flags == ("cauda_equina", "saddle_anaesthesia")
    assert len(alert.message_excerpt) == MAX_EXCERPT
    assert "\x00" not in alert.message_excerpt
    assert alert.message_excerpt.startswith("I can't feel my legs and numb")
    assert alert.message_excerpt.endswith("…")
    [row] = repo.notifications_for("red_flag", alert.id)
    assert row.payload["flags"] == ["cauda_equina", "saddle_anaesthesia"]

    assert [a.id for a in repo.unacknowledged_red_flags()] == [alert.id]
    acknowledged = repo.acknowledge_red_flag(alert.id)
    assert acknowledged.acknowledged_at is not None
    assert (
        repo.acknowledge_red_flag(alert.id).acknowledged_at
        == acknowledged.acknowledged_at
    )
    assert repo.unacknowledged_red_flags() == []


@pytest.mark.parametrize(
    "flags", [[], ["Cauda Equina"], ["x'); DROP TABLE red_flag_alerts;--"]]
)
def test_red_flag_keys_must_be_plain(repo: Repository, flags: list[str]) -> None:
    with pytest.raises(ValidationError):
        repo.record_red_flag(conversation_id="c7", flags=flags, message="help")


def test_feedback_is_recorded_with_clean_comment(repo: Repository) -> None:
    good = repo.record_feedback(
        conversation_id="c8", topic="faq/opening_hours", helpful=True
    )
    assert good.helpful is True and good.comment is None

    bad = repo.record_feedback(
        conversation_id="c8",
        topic="faq/parking",
        helpful=False,
        comment="<script>x</script>\x00 wrong address 🚗" + "!" * 5000,
    )
    assert bad.helpful is False
    assert bad.comment is not None
    assert bad.comment.startswith("<script>x</script> wrong address 🚗")
    assert len(bad.comment) == 2000


def test_alert_keeps_one_row_per_flag_with_its_tier_and_category(
    repo: Repository, database: Database
) -> None:
    alert = repo.record_red_flag(
        conversation_id="c-flags",
        flags=["saddle_numbness", "fever_with_back_pain", "suicidal_thoughts"],
        message="numb down there, a fever, and I want to end it",
        tier="emergency",
        categories=["back_knee", "crisis"],
        flag_details={
            "saddle_numbness": ["emergency", "back_knee"],
            "fever_with_back_pain": ["urgent", "back_knee"],
            "suicidal_thoughts": ["emergency", "crisis"],
        },
    )

    with database.session_scope() as session:
        rows = session.execute(
            select(RedFlagAlertFlag.flag, RedFlagAlertFlag.tier, RedFlagAlertFlag.category)
            .where(RedFlagAlertFlag.alert_id == alert.id)
            .order_by(RedFlagAlertFlag.id)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("saddle_numbness", "emergency", "back_knee"),
        ("fever_with_back_pain", "urgent", "back_knee"),
        ("suicidal_thoughts", "emergency", "crisis"),
    ]
    assert [f.flag for f in repo.alert_flags(alert.id)] == [
        "saddle_numbness",
        "fever_with_back_pain",
        "suicidal_thoughts",
    ]


def test_alert_flag_without_details_takes_the_alerts_tier_and_category(
    repo: Repository,
) -> None:
    alert = repo.record_red_flag(
        conversation_id="c-old",
        flags=["hot_swollen_joint"],
        message="my knee is hot and swollen",
        tier="urgent",
        categories=["back_knee"],
    )

    [flag] = repo.alert_flags(alert.id)
    assert (flag.flag, flag.tier, flag.category) == ("hot_swollen_joint", "urgent", "back_knee")


def test_callback_contact_details_keep_their_consent_time(repo: Repository) -> None:
    consented = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    handoff = repo.create_handoff(
        conversation_id="c-consent",
        reason="out of hours",
        within_hours=False,
        callback_requested=True,
        contact_name="Sam Lee",
        contact_phone="+441632960999",
        contact_consented=True,
        contact_consent_at=consented,
    )
    assert handoff.contact_consent_at == consented

    defaulted = repo.create_handoff(
        conversation_id="c-consent-now",
        reason="out of hours",
        within_hours=False,
        callback_requested=True,
        contact_phone="+441632960998",
        contact_consented=True,
    )
    assert defaulted.contact_consent_at is not None
    assert defaulted.contact_consent_at >= defaulted.created_at

    anonymous = repo.create_handoff(
        conversation_id="c-no-contact",
        reason="asked for a human",
        within_hours=True,
        contact_consented=True,
        contact_consent_at=consented,
    )
    assert anonymous.contact_consent_at is None  # nothing stored, no consent time
