"""Deliver queued staff notifications; nothing is lost when a channel is down.

Requests are written to `notification_outbox` in the same transaction as the booking
(or hand-off, or alert). `deliver_pending` sends every due row through the notifier
for its channel: success marks it sent; failure keeps it, counts the attempt and
schedules a retry with exponential backoff (after NOTIFY_MAX_ATTEMPTS it becomes
``failed`` and waits for a person). Delivery is at-least-once: if the process dies
between sending and recording, the row is sent again after its lease, with the same
delivery id so receivers can drop the duplicate.

Run once (cron, systemd timer, the setup script)::

    python -m bot.notify.outbox            # deliver once, print counts
    python -m bot.notify.outbox --every 30 # keep delivering every 30 seconds
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.notify.base import NotificationError, Notifier
from bot.notify.config import email_enabled, enabled_channels, webhook_enabled
from bot.notify.email import EmailNotifier
from bot.notify.webhook import WebhookNotifier
from bot.settings import Settings, SettingsError, get_settings
from bot.storage.database import DatabaseUnavailable
from bot.storage.repository import DEFAULT_LEASE_SECONDS, Repository

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    """What one delivery run did, and what the outbox holds afterwards.

    Attributes:
        sent: Notifications delivered in this run.
        retrying: Failed in this run, will be retried later.
        gave_up: Failed in this run for the last allowed time (now ``failed``).
        skipped: Due, but their channel is not configured in this process.
        pending: Rows still pending in the outbox after the run (due or not).
        failed: Rows in the outbox that gave up and need a person.
        errors: ``(outbox id, error)`` for each failure in this run.
    """

    sent: int = 0
    retrying: int = 0
    gave_up: int = 0
    skipped: int = 0
    pending: int = 0
    failed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"sent={self.sent} pending={self.pending} failed={self.failed} "
            f"(this run: retrying={self.retrying} gave_up={self.gave_up} "
            f"skipped={self.skipped})"
        )


def build_notifiers(settings: Settings) -> dict[str, Notifier]:
    """Return the notifiers switched on in settings, keyed by channel.

    Raises:
        SettingsError: A channel is on but misconfigured (webhook without secret).
    """
    enabled_channels(settings)  # raises on an unsigned webhook
    notifiers: dict[str, Notifier] = {}
    try:
        if email_enabled(settings):
            notifiers["email"] = EmailNotifier.from_settings(settings)
        if webhook_enabled(settings):
            notifiers["webhook"] = WebhookNotifier.from_settings(settings)
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
    return notifiers


def deliver_pending(
    url: str | None = None,
    *,
    repository: Repository | None = None,
    notifiers: Mapping[str, Notifier] | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
    limit: int = 100,
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
) -> DeliveryReport:
    """Send every due pending notification once.

    Args:
        url: Database URL (ignored when `repository` is given; None: settings).
        repository: Repository to use instead of building one from `url`.
        notifiers: Notifiers by channel; None builds them from settings.
        settings: Settings for retry limits and notifiers; None: `get_settings()`.
        now: The current time (tests move it forward to make retries due).
        limit: Most notifications to handle in this run.
        lease_seconds: How long a claimed row is reserved for this run.

    Returns:
        Counts of what happened; see `DeliveryReport`.

    Raises:
        DatabaseUnavailable: The database could not be reached.
        SettingsError: A notifier is misconfigured.
    """
    repo = repository or Repository(url, settings=settings)
    active = dict(build_notifiers(repo.settings) if notifiers is None else notifiers)
    report = DeliveryReport()
    due = repo.pending_notifications(now=now, limit=limit)
    report.skipped = sum(1 for item in due if item.channel not in active)
    claimed = repo.claim_due_notifications(
        now=now, limit=limit, lease_seconds=lease_seconds, channels=list(active)
    )
    for item in claimed:
        try:
            active[item.channel].send(item.kind, item.payload, item.id)
        except Exception as exc:  # noqa: BLE001 - any failure must leave the row for a retry
            message = str(exc) if isinstance(exc, NotificationError) else repr(exc)
            updated = repo.mark_failed(item.id, message, now=now)
            report.errors.append((item.id, message))
            if updated.status == "failed":
                report.gave_up += 1
                log.error(
                    "notification %s gave up after %s attempts: %s",
                    item.id,
                    updated.attempts,
                    message,
                )
            else:
                report.retrying += 1
                log.warning(
                    "notification %s failed (attempt %s), retry at %s: %s",
                    item.id,
                    updated.attempts,
                    updated.next_attempt_at,
                    message,
                )
        else:
            repo.mark_sent(item.id, now=now)
            report.sent += 1
    counts = repo.outbox_counts()
    report.pending = counts["pending"]
    report.failed = counts["failed"]
    return report


async def deliver_pending_async(**kwargs: Any) -> DeliveryReport:
    """Run `deliver_pending` in a worker thread, e.g. right after a booking is saved.

    Args:
        **kwargs: As for `deliver_pending`.

    Returns:
        The delivery report.
    """
    return await asyncio.to_thread(deliver_pending, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description="Deliver pending staff notifications.")
    parser.add_argument(
        "--url", help="database URL (default: DATABASE_URL from settings)"
    )
    parser.add_argument(
        "--limit", type=int, default=100, help="most notifications per run"
    )
    parser.add_argument(
        "--every",
        type=float,
        default=0,
        help="repeat every N seconds until interrupted",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    while True:
        try:
            settings = get_settings()
            report = deliver_pending(args.url, settings=settings, limit=args.limit)
        except (DatabaseUnavailable, SettingsError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            if not args.every:
                return 1
        else:
            print(report.summary(), flush=True)
        if not args.every:
            return 0
        try:
            time.sleep(args.every)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
