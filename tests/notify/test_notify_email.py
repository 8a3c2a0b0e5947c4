"""Staff get notification emails through a real SMTP server, over TLS if configured."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from bot.notify.base import NotificationError
from bot.notify.email import EmailNotifier
from bot.notify.outbox import build_notifiers, deliver_pending
from bot.settings import Settings, SettingsError
from bot.storage.repository import Repository

if TYPE_CHECKING:
    from conftest import SmtpServer


def plain_notifier(server: SmtpServer, **overrides: Any) -> EmailNotifier:
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "recipients": ["reception@clinic.test"],
        "sender": "assistant@clinic.test",
        "starttls": False,
        "timeout": 5,
    }
    options.update(overrides)
    return EmailNotifier(**options)


def test_booking_email_arrives_with_reference_and_every_field(
    smtp_server: SmtpServer,
    repo: Repository,
    booking_fields: Callable[..., dict[str, Any]],
) -> None:
    booking = repo.create_booking_request(**booking_fields(notify_channels=("email",)))

    report = deliver_pending(
        repository=repo, notifiers={"email": plain_notifier(smtp_server)}
    )

    assert (report.sent, report.pending, report.failed) == (1, 0, 0)
    [message] = smtp_server.messages
    assert smtp_server.recipients == [["reception@clinic.test"]]
    assert booking.reference in message["Subject"]
    assert "Zoë" not in message["Subject"]  # patient details stay out of the subject
    body = message.get_content().replace("\r\n", "\n")
    for expected in (
        booking.reference,
        "Zoë O'Connor 🦵",
        "+353861234567",
        "zoe@example.org",
        "lower back",
        "Mondays before 10am",
        "2025-12-01T09:00:00+00:00",
        "Sharp pain bending <b>since</b> a fall.\nWorse in the morning.",
        "web-4711",
    ):
        assert expected in body
    [row] = repo.notifications_for("booking", booking.id)
    assert message["X-Clinic-Delivery"] == str(row.id)
    assert row.status == "sent" and row.attempts == 1


def test_starttls_and_login_use_the_configured_credentials(
    tls_smtp_server: SmtpServer,
) -> None:
    settings = Settings.from_env(
        {
            "BOT_ENV": "test",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(tls_smtp_server.port),
            "SMTP_USER": tls_smtp_server.username,
            "SMTP_PASSWORD": tls_smtp_server.password,
            "SMTP_FROM": "Clinic assistant <assistant@clinic.test>",
            "NOTIFY_EMAIL_TO": "reception@clinic.test, physio@clinic.test",
        }
    )
    notifier = EmailNotifier.from_settings(
        settings, ssl_context=tls_smtp_server.client_context()
    )
    notifier.send(
        "handoff",
        {
            "handoff_id": 12,
            "reason": "asked for a person",
            "within_hours": True,
            "callback_requested": True,
            "contact_name": "Sam",
            "contact_phone": "+441632960999",
        },
        delivery_id=5,
    )

    [message] = tls_smtp_server.messages
    assert tls_smtp_server.tls_sessions == [True]
    assert tls_smtp_server.logins == [tls_smtp_server.username]
    assert tls_smtp_server.recipients == [
        ["reception@clinic.test", "physio@clinic.test"]
    ]
    assert message["From"] == "Clinic assistant <assistant@clinic.test>"
    assert "hand-off #12" in message["Subject"]
    assert "+441632960999" in message.get_content()


def test_an_untrusted_certificate_is_refused(tls_smtp_server: SmtpServer) -> None:
    notifier = plain_notifier(
        tls_smtp_server,
        starttls=True,
        username=tls_smtp_server.username,
        password=tls_smtp_server.password,
    )
    with pytest.raises(NotificationError, match="SSL|certificate"):
        notifier.send("red_flag", {"alert_id": 1, "flags": ["chest_pain"]}, 1)
    assert tls_smtp_server.messages == []


def test_no_plain_text_fallback_when_server_lacks_starttls(
    smtp_server: SmtpServer,
) -> None:
    notifier = plain_notifier(
        smtp_server, starttls=True, ssl_context=ssl.create_default_context()
    )
    with pytest.raises(NotificationError, match="STARTTLS"):
        notifier.send("booking", {"reference": "BK-22222"}, 1)
    assert smtp_server.messages == []


def test_wrong_password_is_an_error_and_sends_nothing(
    tls_smtp_server: SmtpServer,
) -> None:
    notifier = plain_notifier(
        tls_smtp_server,
        starttls=True,
        username=tls_smtp_server.username,
        password="wrong",
        ssl_context=tls_smtp_server.client_context(),
    )
    with pytest.raises(NotificationError, match="Authentication"):
        notifier.send("booking", {"reference": "BK-22222"}, 1)
    assert tls_smtp_server.messages == []


def test_red_flag_email_names_the_tier_and_the_flags(smtp_server: SmtpServer) -> None:
    plain_notifier(smtp_server).send(
        "red_flag",
        {
            "alert_id": 3,
            "flags": ["bladder_bowel", "saddle_numbness"],
            "tier": "emergency",
            "categories": ["back_knee"],
            "conversation_id": "c1",
            "message_excerpt": "numb saddle area",
        },
        delivery_id=9,
    )
    [message] = smtp_server.messages
    assert "EMERGENCY alert #3" in message["Subject"]
    assert "bladder_bowel, saddle_numbness" in message["Subject"]
    body = message.get_content()
    assert "numb saddle area" in body and "Tier:" in body and "emergency" in body


@pytest.mark.parametrize(
    ("tier", "categories", "label"),
    [("emergency", ["crisis"], "CRISIS"), ("urgent", ["back_knee"], "URGENT"), ("emergency", ["general"], "EMERGENCY")],
)
def test_crisis_and_emergency_alerts_say_so_in_the_subject(
    smtp_server: SmtpServer, tier: str, categories: list, label: str  # type: ignore[type-arg]
) -> None:
    plain_notifier(smtp_server).send(
        "red_flag",
        {"alert_id": 4, "flags": ["x"], "tier": tier, "categories": categories, "conversation_id": "c"},
        delivery_id=10,
    )
    assert smtp_server.messages[-1]["Subject"].startswith(f"[Clinic assistant] {label} alert #4")


@pytest.mark.asyncio
async def test_async_send_does_not_block_the_event_loop(
    smtp_server: SmtpServer,
) -> None:
    await plain_notifier(smtp_server).send_async(
        "booking", {"reference": "BK-ABCDE"}, 1
    )
    assert "BK-ABCDE" in smtp_server.messages[0]["Subject"]


def test_credentials_are_never_sent_unencrypted_to_a_remote_server() -> None:
    settings = Settings.from_env(
        {
            "BOT_ENV": "test",
            "SMTP_HOST": "mail.clinic.invalid",
            "SMTP_USER": "bot@clinic.test",
            "SMTP_PASSWORD": "pw",
            "SMTP_STARTTLS": "false",
            "NOTIFY_EMAIL_TO": "reception@clinic.test",
        }
    )
    with pytest.raises(SettingsError, match="unencrypted"):
        build_notifiers(settings)  # refused before any connection is attempted
