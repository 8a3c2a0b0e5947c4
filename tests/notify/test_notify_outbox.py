"""Queued notifications survive a receiver outage and go out once it is back."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.notify import verify_signature
from bot.notify.config import enabled_channels
from bot.notify.email import EmailNotifier
from bot.notify.outbox import deliver_pending, deliver_pending_async
from bot.notify.webhook import WebhookNotifier
from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.repository import Repository

if TYPE_CHECKING:
    from conftest import SmtpServer, WebhookReceiver

PROJECT_ROOT = Path(__file__).resolve().parents[2]
Fields = Callable[..., dict[str, Any]]


def webhook(receiver: WebhookReceiver, secret: str) -> WebhookNotifier:
    return WebhookNotifier(
        receiver.url, secret, timeout=2, retries=1, backoff_seconds=0.01
    )


def test_receiver_down_keeps_the_row_and_next_run_delivers_it(
    repo: Repository,
    booking_fields: Fields,
    stopped_receiver: WebhookReceiver,
    webhook_secret: str,
) -> None:
    booking = repo.create_booking_request(
        **booking_fields(notify_channels=("webhook",))
    )
    notifiers = {"webhook": webhook(stopped_receiver, webhook_secret)}

    down = deliver_pending(repository=repo, notifiers=notifiers)
    assert (down.sent, down.retrying, down.pending, down.failed) == (0, 1, 1, 0)
    [row] = repo.notifications_for("booking", booking.id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "ConnectionError" in (row.last_error or "")
    assert row.next_attempt_at > row.created_at

    # Not due yet: a second run right away leaves it alone.
    early = deliver_pending(repository=repo, notifiers=notifiers)
    assert (early.sent, early.retrying) == (0, 0)
    assert repo.notifications_for("booking", booking.id)[0].attempts == 1

    stopped_receiver.start()
    later = deliver_pending(
        repository=repo,
        notifiers=notifiers,
        now=row.next_attempt_at + timedelta(seconds=1),
    )
    assert (later.sent, later.pending, later.failed) == (1, 0, 0)
    [request] = stopped_receiver.requests
    assert verify_signature(
        request.body, request.headers["X-Clinic-Signature"], webhook_secret
    )
    assert booking.reference.encode() in request.body
    assert request.headers["X-Clinic-Delivery"] == str(row.id)
    [sent] = repo.notifications_for("booking", booking.id)
    assert (sent.status, sent.attempts) == ("sent", 2)


def test_after_max_attempts_the_row_is_failed_but_kept_for_staff(
    repo: Repository,
    booking_fields: Fields,
    stopped_receiver: WebhookReceiver,
    webhook_secret: str,
) -> None:
    booking = repo.create_booking_request(
        **booking_fields(notify_channels=("webhook",))
    )
    notifiers = {"webhook": webhook(stopped_receiver, webhook_secret)}
    now = repo.notifications_for("booking", booking.id)[0].created_at

    reports = []
    for _ in range(3):  # NOTIFY_MAX_ATTEMPTS=3 in the test settings
        reports.append(deliver_pending(repository=repo, notifiers=notifiers, now=now))
        now = repo.notifications_for("booking", booking.id)[0].next_attempt_at

    assert [r.retrying for r in reports] == [1, 1, 0]
    assert reports[-1].gave_up == 1 and reports[-1].failed == 1
    [row] = repo.notifications_for("booking", booking.id)
    assert (row.status, row.attempts) == ("failed", 3)
    assert repo.get_booking(booking.reference) is not None  # the request itself is safe

    stopped_receiver.start()
    assert repo.requeue_failed() == 1
    retried = deliver_pending(
        repository=repo, notifiers=notifiers, now=now + timedelta(seconds=1)
    )
    assert (retried.sent, retried.failed) == (1, 0)


def test_settings_switch_on_both_channels(
    database: Database,
    booking_fields: Fields,
    smtp_server: SmtpServer,
    webhook_receiver: WebhookReceiver,
    webhook_secret: str,
) -> None:
    settings = Settings.from_env(
        {
            "BOT_ENV": "test",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_server.port),
            "SMTP_STARTTLS": "false",
            "NOTIFY_EMAIL_TO": "reception@clinic.test",
            "NOTIFY_WEBHOOK_URL": webhook_receiver.url,
            "NOTIFY_WEBHOOK_SECRET": webhook_secret,
        }
    )
    repo = Repository(database, settings=settings)
    fields = booking_fields(notify_channels=enabled_channels(settings))
    booking = repo.create_booking_request(**fields)

    report = deliver_pending(repository=repo)

    assert (report.sent, report.pending, report.failed) == (2, 0, 0)
    assert booking.reference in smtp_server.messages[0]["Subject"]
    assert booking.reference.encode() in webhook_receiver.requests[0].body


def test_rows_for_a_channel_not_configured_here_wait(
    repo: Repository,
    booking_fields: Fields,
    webhook_receiver: WebhookReceiver,
    webhook_secret: str,
) -> None:
    booking = repo.create_booking_request(
        **booking_fields(notify_channels=("email", "webhook"))
    )

    report = deliver_pending(
        repository=repo,
        notifiers={"webhook": webhook(webhook_receiver, webhook_secret)},
    )

    assert (report.sent, report.skipped, report.pending) == (1, 1, 1)
    email_row = next(
        r for r in repo.notifications_for("booking", booking.id) if r.channel == "email"
    )
    assert (email_row.status, email_row.attempts) == ("pending", 0)


def test_handoff_and_red_flag_go_out_too(
    repo: Repository, smtp_server: SmtpServer
) -> None:
    repo.create_handoff(
        conversation_id="c1",
        reason="asked for a person",
        within_hours=True,
        notify_channels=("email",),
    )
    repo.record_red_flag(
        conversation_id="c2",
        flags=["chest_pain"],
        message="crushing chest pain",
        tier="emergency",
        categories=["general"],
        notify_channels=("email",),
    )
    notifier = EmailNotifier(
        host="127.0.0.1",
        port=smtp_server.port,
        recipients=["r@clinic.test"],
        starttls=False,
    )

    report = deliver_pending(repository=repo, notifiers={"email": notifier})

    assert report.sent == 2
    subjects = sorted(m["Subject"] for m in smtp_server.messages)
    assert any("hand-off" in s for s in subjects)
    assert any("EMERGENCY alert" in s and "chest_pain" in s for s in subjects)


@pytest.mark.asyncio
async def test_async_delivery_from_an_action(
    repo: Repository,
    booking_fields: Fields,
    webhook_receiver: WebhookReceiver,
    webhook_secret: str,
) -> None:
    repo.create_booking_request(**booking_fields(notify_channels=("webhook",)))
    report = await deliver_pending_async(
        repository=repo,
        notifiers={"webhook": webhook(webhook_receiver, webhook_secret)},
    )
    assert report.sent == 1


def _cli(database: Database, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.notify.outbox", "--url", database.url],
        cwd=PROJECT_ROOT,
        env={"PATH": os.environ.get("PATH", ""), "BOT_ENV": "test", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_delivers_once_and_prints_counts(
    database: Database,
    booking_fields: Fields,
    stopped_receiver: WebhookReceiver,
    webhook_secret: str,
) -> None:
    repo = Repository(database, settings=Settings.from_env({"BOT_ENV": "test"}))
    repo.create_booking_request(**booking_fields(notify_channels=("webhook",)))
    env = {
        "NOTIFY_WEBHOOK_URL": stopped_receiver.url,
        "NOTIFY_WEBHOOK_SECRET": webhook_secret,
        "NOTIFY_WEBHOOK_RETRIES": "0",
        "NOTIFY_BACKOFF_SECONDS": "0",
    }

    down = _cli(database, env)
    assert down.returncode == 0, down.stderr
    assert "sent=0 pending=1 failed=0" in down.stdout

    stopped_receiver.start()
    up = _cli(database, env)
    assert up.returncode == 0, up.stderr
    assert "sent=1 pending=0 failed=0" in up.stdout
    assert len(stopped_receiver.requests) == 1


def test_cli_reports_an_unreachable_database() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.notify.outbox",
            "--url",
            "postgresql://postgres@127.0.0.1:1/x",
        ],
        cwd=PROJECT_ROOT,
        env={"PATH": os.environ.get("PATH", ""), "BOT_ENV": "test"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "database unavailable" in result.stderr
