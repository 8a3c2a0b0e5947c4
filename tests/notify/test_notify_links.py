"""Notifications link to the item's page in the staff console; outage alerts arrive by mail."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from bot.notify.email import EmailNotifier
from bot.notify.outbox import deliver_pending
from bot.notify.webhook import WebhookNotifier
from bot.settings import get_settings
from bot.storage.repository import Repository
from bot.tracker_store import alert_staff

if TYPE_CHECKING:
    from conftest import SmtpServer, WebhookReceiver

CONSOLE = "https://console.clinic.test"


def mailer(server: SmtpServer) -> EmailNotifier:
    return EmailNotifier(
        host="127.0.0.1", port=server.port, recipients=["reception@clinic.test"], starttls=False, timeout=5,
        console_url=CONSOLE,
    )


def body_of(server: SmtpServer, index: int = 0) -> str:
    return str(server.messages[index].get_content()).replace("\r\n", "\n")


def test_each_email_links_to_its_page_in_the_console(
    smtp_server: SmtpServer, repo: Repository, booking_fields: Callable[..., dict[str, Any]]
) -> None:
    booking = repo.create_booking_request(**booking_fields(notify_channels=("email",)))
    handoff = repo.create_handoff(
        conversation_id="web-4711", reason="asked for a person", within_hours=True, notify_channels=("email",)
    )
    alert = repo.record_red_flag(
        conversation_id="web-4711", flags=["saddle_numbness"], message="numb", notify_channels=("email",)
    )

    report = deliver_pending(repository=repo, notifiers={"email": mailer(smtp_server)})

    assert report.sent == 3
    bodies = [body_of(smtp_server, i) for i in range(3)]
    assert f"Open it in the staff console: {CONSOLE}/queue/bookings/{booking.id}\n" in bodies[0]
    assert f"Open it in the staff console: {CONSOLE}/queue/handoffs/{handoff.id}\n" in bodies[1]
    assert f"Open it in the staff console: {CONSOLE}/alerts/{alert.id}\n" in bodies[2]


def test_webhook_body_carries_the_console_link(
    webhook_receiver: WebhookReceiver, webhook_secret: str, repo: Repository,
    booking_fields: Callable[..., dict[str, Any]],
) -> None:
    booking = repo.create_booking_request(**booking_fields(notify_channels=("webhook",)))
    hook = WebhookNotifier(webhook_receiver.url, webhook_secret, timeout=5, console_url=CONSOLE + "/")

    deliver_pending(repository=repo, notifiers={"webhook": hook})

    [request] = webhook_receiver.requests
    body = json.loads(request.body)
    assert body["console_link"] == f"{CONSOLE}/queue/bookings/{booking.id}"
    assert body["data"]["booking_id"] == booking.id


def test_outage_alert_email_reaches_staff_with_its_subject(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("SMTP_STARTTLS", "false")
    monkeypatch.setenv("NOTIFY_EMAIL_TO", "oncall@clinic.test")
    get_settings.cache_clear()

    alert_staff("OperationalError: connection refused")

    [message] = smtp_server.messages
    assert message["Subject"] == "[Clinic assistant] System problem: conversation store unreachable"
    assert smtp_server.recipients == [["oncall@clinic.test"]]
    body = body_of(smtp_server)
    assert "OperationalError: connection refused" in body
    assert "kept in a local spool" in body
    assert "staff console" not in body  # a system problem has no console page
