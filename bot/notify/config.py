"""Which staff notification channels are switched on, decided in one place.

Email is on when both SMTP_HOST and NOTIFY_EMAIL_TO are set; the webhook is on when
NOTIFY_WEBHOOK_URL is set. `bot.records` asks this for the outbox rows it has storage write, and
the outbox asks it when it builds notifiers, so the two can never disagree. No I/O.
"""

from __future__ import annotations

from bot.settings import Settings, SettingsError

EMAIL = "email"
WEBHOOK = "webhook"


def email_enabled(settings: Settings) -> bool:
    """Return whether booking and alert emails go out (SMTP host and recipient set)."""
    return bool(settings.smtp_host and settings.notify_email_to)


def webhook_enabled(settings: Settings) -> bool:
    """Return whether notifications are POSTed to a webhook (its URL is set)."""
    return bool(settings.webhook_url)


def enabled_channels(settings: Settings) -> tuple[str, ...]:
    """Return the outbox channels to write a row for, in a stable order.

    Args:
        settings: The process settings.

    Returns:
        A subset of ``("email", "webhook")``; empty when nothing is configured (the
        requests are still stored and visible to staff, just not pushed anywhere).

    Raises:
        SettingsError: The webhook is on but has no signing secret; sending patient
            data unsigned is refused rather than done quietly.
    """
    channels: list[str] = []
    if email_enabled(settings):
        channels.append(EMAIL)
    if webhook_enabled(settings):
        if not settings.webhook_secret:
            raise SettingsError(
                "NOTIFY_WEBHOOK_SECRET must be set when NOTIFY_WEBHOOK_URL is"
            )
        channels.append(WEBHOOK)
    return tuple(channels)


def email_recipients(settings: Settings) -> list[str]:
    """Return the NOTIFY_EMAIL_TO addresses (comma-separated in the environment)."""
    return [
        address.strip()
        for address in settings.notify_email_to.split(",")
        if address.strip()
    ]
