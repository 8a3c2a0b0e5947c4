"""Which channels are on: the widget always, REST unless off in production, others when set.

REST is off with `BOT_ENV=production` unless `REST_CHANNEL_TOKEN` is set.

Rasa refuses a credentials.yml whose `${VAR}` is unset, so the committed credentials.yml
holds only the channels that need no secrets. At start-up this module writes the
credentials Rasa actually runs with (var/credentials.yml, not committed): the committed
file plus each messaging channel whose environment variables are all set. Values stay
`${VAR}` references, so secrets are never written to disk. One log line says what is on.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import yaml

from bot.settings import PROJECT_ROOT, get_settings

logger = logging.getLogger(__name__)
BASE_CREDENTIALS = PROJECT_ROOT / "credentials.yml"

# channel class -> (credential key -> environment variable, the variables that must be set)
OPTIONAL_CHANNELS: Dict[str, Tuple[Dict[str, str], Tuple[str, ...]]] = {
    "bot.channels.telegram.TelegramInput": (
        {
            "access_token": "TELEGRAM_ACCESS_TOKEN",
            "verify": "TELEGRAM_BOT_USERNAME",
            "webhook_url": "TELEGRAM_WEBHOOK_URL",
            "secret_token": "TELEGRAM_SECRET_TOKEN",
            "api_base_url": "TELEGRAM_API_BASE_URL",
        },
        ("TELEGRAM_ACCESS_TOKEN", "TELEGRAM_BOT_USERNAME", "TELEGRAM_WEBHOOK_URL", "TELEGRAM_SECRET_TOKEN"),
    ),
    "bot.channels.whatsapp.WhatsAppCloudInput": (
        {
            "access_token": "WHATSAPP_ACCESS_TOKEN",
            "app_secret": "WHATSAPP_APP_SECRET",
            "verify_token": "WHATSAPP_VERIFY_TOKEN",
            "phone_number_id": "WHATSAPP_PHONE_NUMBER_ID",
            "api_base_url": "WHATSAPP_API_BASE_URL",
            "api_version": "WHATSAPP_API_VERSION",
        },
        ("WHATSAPP_ACCESS_TOKEN", "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN",
         "WHATSAPP_PHONE_NUMBER_ID"),
    ),
    "bot.channels.twilio_whatsapp.TwilioWhatsAppInput": (
        {
            "account_sid": "TWILIO_ACCOUNT_SID",
            "auth_token": "TWILIO_AUTH_TOKEN",
            "twilio_number": "TWILIO_WHATSAPP_NUMBER",
            "webhook_url": "TWILIO_WEBHOOK_URL",
        },
        ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_WHATSAPP_NUMBER", "TWILIO_WEBHOOK_URL"),
    ),
}


def credentials_for(env: Mapping[str, str], base: Optional[Dict[str, object]] = None) -> Dict[str, object]:
    """The base channels plus every optional channel whose required variables are set."""
    credentials: Dict[str, object] = dict(base or {})
    for channel, (keys, required) in OPTIONAL_CHANNELS.items():
        if all(env.get(name, "").strip() for name in required):
            credentials[channel] = {
                key: f"${{{var}}}" for key, var in keys.items() if env.get(var, "").strip()
            }
    settings = get_settings()
    if settings.is_production and not settings.rest_channel_token:
        # Off in production unless integrations authenticate (see bot.channels.rest).
        for rest in ("rest", "bot.channels.rest.RestInput"):
            credentials.pop(rest, None)
    socketio = "bot.channels.socketio.SocketIOInput"
    if socketio in credentials:
        entry = dict(credentials[socketio] or {})  # type: ignore[call-overload]
        entry.setdefault("cors_allowed_origins", list(settings.allowed_origins))
        credentials[socketio] = entry
    return credentials


def channel_names(credentials: Mapping[str, object]) -> List[str]:
    """Short names of the channels in a credentials mapping, for the log line."""
    return [name.rsplit(".", 1)[-1].replace("Input", "").lower() for name in credentials]


def write_credentials(target: Path, env: Optional[Mapping[str, str]] = None) -> Path:
    """Write the credentials Rasa runs with and log which channels are on."""
    base = yaml.safe_load(BASE_CREDENTIALS.read_text(encoding="utf-8")) or {}
    credentials = credentials_for(os.environ if env is None else env, base)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(credentials, sort_keys=False), encoding="utf-8")
    message = "channels on: " + ", ".join(channel_names(credentials))
    logger.warning(message)
    print(message, flush=True)
    return target
