"""Which messaging channels are on: each switches itself on from settings, or off with a log line.

credentials.yml lists every channel the product has, without values, so a plain `rasa run`
in the project folder and `make run` start the same channels. A messaging channel whose
section is empty (Telegram, WhatsApp Cloud, Twilio WhatsApp) takes its credentials from
settings (TELEGRAM_*, WHATSAPP_*, TWILIO_*, from the environment or `.env`): all required
variables set, it is on; none or some of them unset, it is off, mounted as `SwitchedOff` (no
routes), and one log line says which variables would switch it on. A section with values
(tests, a hand-written credentials file) is used as it is. Secrets never go to disk.

The REST channel switches itself off in production without REST_CHANNEL_TOKEN
(bot.channels.rest); the website widget (socket.io) is always on.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint

from bot.settings import Settings, get_settings

logger = logging.getLogger(__name__)

# channel name -> (credential key -> settings field, the credential keys that must be set)
CHANNEL_SETTINGS: Dict[str, Tuple[Dict[str, str], Tuple[str, ...]]] = {
    "telegram": (
        {
            "access_token": "telegram_access_token",
            "verify": "telegram_bot_username",
            "webhook_url": "telegram_webhook_url",
            "secret_token": "telegram_secret_token",
            "api_base_url": "telegram_api_base_url",
        },
        ("access_token", "verify", "webhook_url", "secret_token"),
    ),
    "whatsapp": (
        {
            "access_token": "whatsapp_access_token",
            "app_secret": "whatsapp_app_secret",
            "verify_token": "whatsapp_verify_token",
            "phone_number_id": "whatsapp_phone_number_id",
            "api_base_url": "whatsapp_api_base_url",
            "api_version": "whatsapp_api_version",
        },
        ("access_token", "app_secret", "verify_token", "phone_number_id"),
    ),
    "twilio_whatsapp": (
        {
            "account_sid": "twilio_account_sid",
            "auth_token": "twilio_auth_token",
            "twilio_number": "twilio_whatsapp_number",
            "webhook_url": "twilio_webhook_url",
        },
        ("account_sid", "auth_token", "twilio_number", "webhook_url"),
    ),
}


def channel_credentials(
    channel: str, credentials: Optional[Dict[str, Any]], settings: Optional[Settings] = None
) -> Optional[Dict[str, Any]]:
    """The credentials `channel` runs with, or None when it is off (logged once, here).

    Args:
        channel: A key of `CHANNEL_SETTINGS` (the channel's URL name).
        credentials: Its credentials.yml section; non-empty is used as it is.
        settings: Settings to read (default: this process's).
    """
    if credentials:
        return dict(credentials)
    keys, required = CHANNEL_SETTINGS[channel]
    settings = settings or get_settings()
    values = {key: getattr(settings, field) for key, field in keys.items() if getattr(settings, field)}
    missing = [keys[key].upper() for key in required if key not in values]
    if not missing:
        logger.warning("%s channel on (credentials from settings)", channel)
        return values
    if len(missing) == len(required):
        logger.warning("%s channel off: set %s to switch it on", channel, ", ".join(missing))
    else:
        logger.warning("%s channel off: %s not set (the others are)", channel, ", ".join(missing))
    return None


class SwitchedOff(InputChannel):
    """A channel left off for lack of credentials: mounted with no routes (404)."""

    def __init__(self, channel: str) -> None:
        """`channel` is the name of the channel that is off (for its URL prefix)."""
        self.channel = channel

    def url_prefix(self) -> str:
        """The prefix the channel would have had."""
        return self.channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """An empty blueprint: the channel's webhook answers 404."""
        return Blueprint(f"clinic_{self.channel}_switched_off", __name__)
