"""Tell clinic staff about bookings, hand-offs and red flags (email and webhook).

Notifiers only send; the outbox (`bot.notify.outbox`, imported separately because it
needs the database) decides what is due and records the outcome. Which channels are
on is decided in `bot.notify.config`. Receivers check webhooks with
`verify_signature`.
"""

from bot.notify.base import NotificationError, Notifier
from bot.notify.config import email_enabled, enabled_channels, webhook_enabled
from bot.notify.email import EmailNotifier
from bot.notify.render import render_text
from bot.notify.webhook import WebhookNotifier, sign, verify_request, verify_signature

__all__ = [
    "EmailNotifier",
    "NotificationError",
    "Notifier",
    "WebhookNotifier",
    "email_enabled",
    "enabled_channels",
    "render_text",
    "sign",
    "verify_request",
    "verify_signature",
    "webhook_enabled",
]
