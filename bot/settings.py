"""The one place that reads the environment.

Everything else imports `get_settings()` so a reader can see every knob in one file,
and so that production refuses to start on a placeholder secret instead of running
with a guessable one. Nothing here does I/O at import time.

The first `get_settings()` of a process also reads `.env` in the project folder
(`load_env_file`), so every entry point (bot.run, the Rasa server's tracker store and
channels, the action server, bot.handoff, bot.storage.migrate, the console) sees the same
variables. Variables already set in the environment win over `.env`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, Mapping, MutableMapping, Optional

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "var"
ENV_FILE = PROJECT_ROOT / ".env"
"""Local variables (never committed; see .env.example), read by `get_settings()`."""
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev-secret", "development-only"}


CHANNEL_VARIABLES = (
    "telegram_access_token", "telegram_bot_username", "telegram_webhook_url",
    "telegram_secret_token", "telegram_api_base_url",
    "whatsapp_access_token", "whatsapp_app_secret", "whatsapp_verify_token",
    "whatsapp_phone_number_id", "whatsapp_api_base_url", "whatsapp_api_version",
    "twilio_account_sid", "twilio_auth_token", "twilio_whatsapp_number", "twilio_webhook_url",
)
"""Settings fields of the messaging channels; each is read from the variable of its name in
upper case (TELEGRAM_ACCESS_TOKEN...)."""


class SettingsError(RuntimeError):
    """Raised when the environment is unsafe or incomplete for the chosen BOT_ENV."""


def _get(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, default).strip()


@dataclass(frozen=True)
class Settings:
    """Typed view of the environment; build it with `Settings.from_env`."""

    env: str = "development"
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_auth_token: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_starttls: bool = True
    notify_email_to: str = ""
    webhook_url: str = ""
    webhook_secret: str = ""
    notify_timeout_seconds: float = 10.0
    notify_webhook_retries: int = 2
    notify_max_attempts: int = 12
    notify_backoff_seconds: int = 60
    notify_backoff_max_seconds: int = 3600
    clock_override: str = ""
    practice_profile: Optional[Path] = None  # another profile file (staging, tests)
    rest_channel_token: str = ""
    action_server_secret: str = ""
    rasa_host: str = "127.0.0.1"
    actions_host: str = "127.0.0.1"
    web_host: str = "127.0.0.1"
    console_host: str = "127.0.0.1"
    console_port: int = 8090
    console_url: str = "http://127.0.0.1:8090"
    console_secure_cookies: bool = False
    console_trusted_proxies: tuple[str, ...] = ()
    console_idle_minutes: int = 30
    console_session_hours: int = 12
    nlu_max_chars: int = 1_000
    full_text_max_chars: int = 20_000
    request_max_bytes: int = 64 * 1024
    message_max_age_hours: float = 24.0
    open_payloads: tuple[str, ...] = ("/greet",)
    db_connect_timeout_seconds: float = 2.0
    db_statement_timeout_seconds: float = 3.0
    db_pool_timeout_seconds: float = 2.0
    db_operation_timeout_seconds: float = 4.0
    # "pgbouncer": DATABASE_URL is a PgBouncer in transaction mode (no startup options)
    db_pooler: str = ""
    # a read replica for the staff console's reports and lists (default: DATABASE_URL)
    reporting_database_url: str = ""
    spool_flush_seconds: float = 30.0
    spool_key: str = ""
    # Several Rasa servers: a redis:// URL shares what each spools during an outage, so the
    # next server to answer a patient continues the conversation (bot/shared_spool.py), and
    # any action server stores the records another kept (bot/shared_records.py).
    # SPOOL_REDIS_URL, else REDIS_URL. Empty: each server keeps its own.
    spool_redis_url: str = ""
    retention_days: int = 365
    allowed_origins: tuple[str, ...] = field(
        default_factory=lambda: ("http://127.0.0.1:8080", "http://localhost:8080")
    )
    # Messaging channels (bot.channels.enabled switches each on when its variables are set)
    telegram_access_token: str = ""
    telegram_bot_username: str = ""
    telegram_webhook_url: str = ""
    telegram_secret_token: str = ""
    telegram_api_base_url: str = ""
    whatsapp_access_token: str = ""
    whatsapp_app_secret: str = ""
    whatsapp_verify_token: str = ""
    whatsapp_phone_number_id: str = ""
    whatsapp_api_base_url: str = ""
    whatsapp_api_version: str = ""
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_whatsapp_number: str = ""
    twilio_webhook_url: str = ""
    # Where the messaging channels keep button memory and seen message ids (bot/channels/store.py):
    # empty keeps them in this process; a redis:// URL shares them between processes
    channel_cache_url: str = ""
    channel_cache_prefix: str = "clinic:channels:"
    # The widget's socket.io servers (bot/channels/socketio.py, presence.py): empty keeps each
    # Rasa server's sockets to itself; a redis:// URL lets any server reach, and report on, a
    # browser connected to another (SOCKETIO_REDIS_URL, else REDIS_URL)
    socketio_redis_url: str = ""
    # Ports the processes bind (python -m bot.run; hosts are RASA_HOST, ACTIONS_HOST, WEB_HOST)
    rasa_port: int = 5005
    actions_port: int = 5055
    web_port: int = 8080
    # Where Rasa calls the action server (endpoints.yml reads ACTION_SERVER_URL; bot.run sets it)
    action_server_url: str = "http://127.0.0.1:5055/webhook"

    @property
    def is_production(self) -> bool:
        """Production refuses placeholder secrets and placeholder practice details."""
        return self.env == "production"

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> Settings:
        """Read settings from `env` (defaults to `os.environ`) and check them."""
        env = os.environ if env is None else env
        data_dir = Path(_get(env, "BOT_DATA_DIR") or DEFAULT_DATA_DIR)
        database_url = _get(env, "DATABASE_URL") or f"sqlite:///{data_dir / 'clinic.db'}"
        origins = _get(env, "ALLOWED_ORIGINS")
        settings = cls(
            env=_get(env, "BOT_ENV", "development").lower(),
            data_dir=data_dir,
            database_url=database_url,
            rasa_url=_get(env, "RASA_URL", "http://127.0.0.1:5005"),
            rasa_auth_token=_get(env, "RASA_AUTH_TOKEN"),
            smtp_host=_get(env, "SMTP_HOST"),
            smtp_port=int(_get(env, "SMTP_PORT", "587") or 587),
            smtp_user=_get(env, "SMTP_USER"),
            smtp_password=_get(env, "SMTP_PASSWORD"),
            smtp_from=_get(env, "SMTP_FROM"),
            smtp_starttls=_get(env, "SMTP_STARTTLS", "true").lower() != "false",
            notify_email_to=_get(env, "NOTIFY_EMAIL_TO"),
            webhook_url=_get(env, "NOTIFY_WEBHOOK_URL"),
            webhook_secret=_get(env, "NOTIFY_WEBHOOK_SECRET"),
            notify_timeout_seconds=float(_get(env, "NOTIFY_TIMEOUT_SECONDS", "10") or 10),
            notify_webhook_retries=int(_get(env, "NOTIFY_WEBHOOK_RETRIES", "2") or 2),
            notify_max_attempts=int(_get(env, "NOTIFY_MAX_ATTEMPTS", "12") or 12),
            notify_backoff_seconds=int(_get(env, "NOTIFY_BACKOFF_SECONDS", "60") or 60),
            notify_backoff_max_seconds=int(
                _get(env, "NOTIFY_BACKOFF_MAX_SECONDS", "3600") or 3600
            ),
            clock_override=_get(env, "CLINIC_CLOCK"),
            practice_profile=Path(_get(env, "PRACTICE_PROFILE")) if _get(env, "PRACTICE_PROFILE") else None,
            rest_channel_token=_get(env, "REST_CHANNEL_TOKEN"),
            action_server_secret=_get(env, "ACTION_SERVER_SECRET"),
            rasa_host=_get(env, "RASA_HOST", "127.0.0.1") or "127.0.0.1",
            actions_host=_get(env, "ACTIONS_HOST", "127.0.0.1") or "127.0.0.1",
            web_host=_get(env, "WEB_HOST", "127.0.0.1") or "127.0.0.1",
            console_host=_get(env, "CONSOLE_HOST", "127.0.0.1") or "127.0.0.1",
            console_port=int(_get(env, "CONSOLE_PORT", "8090") or 8090),
            console_url=(_get(env, "CONSOLE_URL") or "http://127.0.0.1:8090").rstrip("/"),
            console_secure_cookies=_get(env, "CONSOLE_SECURE_COOKIES", "false").lower() == "true",
            console_trusted_proxies=tuple(
                p.strip() for p in _get(env, "CONSOLE_TRUSTED_PROXIES").split(",") if p.strip()
            ),
            console_idle_minutes=int(_get(env, "CONSOLE_IDLE_MINUTES", "30") or 30),
            console_session_hours=int(_get(env, "CONSOLE_SESSION_HOURS", "12") or 12),
            nlu_max_chars=int(_get(env, "NLU_MAX_CHARS", "1000") or 1000),
            full_text_max_chars=int(_get(env, "FULL_TEXT_MAX_CHARS", "20000") or 20000),
            request_max_bytes=int(_get(env, "REQUEST_MAX_BYTES", "65536") or 65536),
            message_max_age_hours=float(_get(env, "MESSAGE_MAX_AGE_HOURS", "24") or 24),
            open_payloads=tuple(p.strip() for p in _get(env, "OPEN_PAYLOADS", "/greet").split(",") if p.strip()),
            db_connect_timeout_seconds=float(_get(env, "DB_CONNECT_TIMEOUT_SECONDS", "2") or 2),
            db_statement_timeout_seconds=float(_get(env, "DB_STATEMENT_TIMEOUT_SECONDS", "3") or 3),
            db_pool_timeout_seconds=float(_get(env, "DB_POOL_TIMEOUT_SECONDS", "2") or 2),
            db_operation_timeout_seconds=float(_get(env, "DB_OPERATION_TIMEOUT_SECONDS", "4") or 4),
            db_pooler=(_get(env, "DB_POOLER") or "").lower(),
            reporting_database_url=_get(env, "REPORTING_DATABASE_URL"),
            spool_flush_seconds=float(_get(env, "SPOOL_FLUSH_SECONDS", "30") or 30),
            spool_key=_get(env, "SPOOL_KEY"),
            spool_redis_url=_get(env, "SPOOL_REDIS_URL") or _get(env, "REDIS_URL"),
            retention_days=int(_get(env, "RETENTION_DAYS", "365") or 365),
            allowed_origins=tuple(o.strip() for o in origins.split(",") if o.strip())
            if origins
            else cls().allowed_origins,
            **{name: _get(env, name.upper()) for name in CHANNEL_VARIABLES},
            channel_cache_url=_get(env, "CHANNEL_CACHE_URL") or _get(env, "REDIS_URL"),
            channel_cache_prefix=_get(env, "CHANNEL_CACHE_PREFIX") or cls.channel_cache_prefix,
            socketio_redis_url=_get(env, "SOCKETIO_REDIS_URL") or _get(env, "REDIS_URL"),
            rasa_port=int(_get(env, "RASA_PORT", "5005") or 5005),
            actions_port=int(_get(env, "ACTIONS_PORT", "5055") or 5055),
            web_port=int(_get(env, "WEB_PORT", "8080") or 8080),
            action_server_url=_get(env, "ACTION_SERVER_URL") or cls.action_server_url,
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse unsafe combinations (placeholder secrets in production)."""
        if self.env not in {"development", "test", "production"}:
            raise SettingsError(f"BOT_ENV must be development, test or production, not {self.env!r}")
        if self.notify_max_attempts < 1 or self.notify_webhook_retries < 0:
            raise SettingsError("NOTIFY_MAX_ATTEMPTS must be 1+ and NOTIFY_WEBHOOK_RETRIES 0+")
        if self.notify_backoff_seconds < 0 or self.notify_timeout_seconds <= 0:
            raise SettingsError("NOTIFY_BACKOFF_SECONDS must be 0+ and NOTIFY_TIMEOUT_SECONDS > 0")
        if not 1 <= self.nlu_max_chars <= self.full_text_max_chars:
            raise SettingsError("NLU_MAX_CHARS must be 1+ and at most FULL_TEXT_MAX_CHARS")
        if self.request_max_bytes < 1024 or self.message_max_age_hours <= 0:
            raise SettingsError("REQUEST_MAX_BYTES must be 1024+ and MESSAGE_MAX_AGE_HOURS > 0")
        timeouts = (
            self.db_connect_timeout_seconds,
            self.db_statement_timeout_seconds,
            self.db_pool_timeout_seconds,
            self.db_operation_timeout_seconds,
            self.spool_flush_seconds,
        )
        if self.console_idle_minutes < 1 or self.console_session_hours < 1:
            raise SettingsError("CONSOLE_IDLE_MINUTES and CONSOLE_SESSION_HOURS must be 1+")
        if min(timeouts) <= 0:
            raise SettingsError("DB_*_TIMEOUT_SECONDS and SPOOL_FLUSH_SECONDS must be > 0")
        if self.db_pooler not in {"", "none", "pgbouncer"}:
            raise SettingsError(f"DB_POOLER must be empty, none or pgbouncer, not {self.db_pooler!r}")
        if self.retention_days < 1:
            raise SettingsError("RETENTION_DAYS must be 1 or more")
        if self.channel_cache_url and not self.channel_cache_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise SettingsError("CHANNEL_CACHE_URL (or REDIS_URL) must be a redis://, rediss:// or unix:// URL")
        if self.socketio_redis_url and not self.socketio_redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise SettingsError("SOCKETIO_REDIS_URL (or REDIS_URL) must be a redis://, rediss:// or unix:// URL")
        if self.spool_redis_url and not self.spool_redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("SPOOL_REDIS_URL (or REDIS_URL) must be a redis://, rediss:// or unix:// URL")
        if self.spool_key:
            from cryptography.fernet import Fernet

            try:
                Fernet(self.spool_key.encode())
            except ValueError as exc:
                raise SettingsError(
                    "SPOOL_KEY must be a Fernet key (python -c 'from cryptography.fernet import "
                    "Fernet; print(Fernet.generate_key().decode())')"
                ) from exc
        if not self.is_production:
            return
        secrets = [
            ("RASA_AUTH_TOKEN", self.rasa_auth_token),
            ("ACTION_SERVER_SECRET", self.action_server_secret),
        ]
        if self.rest_channel_token:
            secrets.append(("REST_CHANNEL_TOKEN", self.rest_channel_token))
        for name, value in secrets:
            if value.lower() in PLACEHOLDER_SECRETS or len(value) < 16:
                raise SettingsError(
                    f"{name} must be set to a real secret (16+ characters) when BOT_ENV=production"
                )
        if not self.spool_key:
            raise SettingsError(
                "SPOOL_KEY must be set when BOT_ENV=production: conversations and bookings kept "
                "during a database outage are encrypted with it"
            )
        if not ((self.smtp_host and self.notify_email_to) or self.webhook_url):
            raise SettingsError(
                "BOT_ENV=production needs a staff notification route besides the console inbox: "
                "email (SMTP_HOST and NOTIFY_EMAIL_TO) or a webhook (NOTIFY_WEBHOOK_URL)"
            )
        if self.webhook_url and len(self.webhook_secret) < 16:
            raise SettingsError("NOTIFY_WEBHOOK_SECRET must be 16+ characters in production")


def load_env_file(
    path: Optional[Path] = None, environ: Optional[MutableMapping[str, str]] = None
) -> Dict[str, str]:
    """Add the variables of a `.env` file to `environ` (default `os.environ`).

    A variable already set in `environ` is kept, so the shell, systemd's EnvironmentFile
    or compose's env_file always win. No file, nothing added.

    Returns:
        The variables added, by name.
    """
    path = ENV_FILE if path is None else path
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    target = os.environ if environ is None else environ
    added = {
        name: value
        for name, value in dotenv_values(path, interpolate=False).items()
        if value is not None and name not in target
    }
    target.update(added)
    return added


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once on first use (after loading `.env`)."""
    load_env_file()
    return Settings.from_env()


def rasa_api_token(settings: Optional[Settings] = None) -> str:
    """Rasa's HTTP API token: `RASA_AUTH_TOKEN`, or the development one under var/.

    `bot.run` writes the development one (`var/rasa-auth-token`); empty when neither
    exists, and then nothing may call the API.
    """
    settings = settings or get_settings()
    if settings.rasa_auth_token:
        return settings.rasa_auth_token
    path = settings.data_dir / "rasa-auth-token"
    return path.read_text(encoding="utf-8").strip() if path.exists() else ""
