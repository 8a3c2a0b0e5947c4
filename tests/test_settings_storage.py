"""Storage settings: what production refuses, and what a bad value says."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from bot.settings import Settings, SettingsError

PRODUCTION = {
    "BOT_ENV": "production", "RASA_AUTH_TOKEN": "a" * 32, "ACTION_SERVER_SECRET": "c" * 32,
    "SMTP_HOST": "smtp.clinic.test", "NOTIFY_EMAIL_TO": "reception@clinic.test",
}


def test_production_refuses_to_keep_an_outage_spool_unencrypted() -> None:
    with pytest.raises(SettingsError, match="SPOOL_KEY"):
        Settings.from_env(PRODUCTION)
    assert Settings.from_env({**PRODUCTION, "SPOOL_KEY": Fernet.generate_key().decode()}).spool_key


def test_production_refuses_to_start_until_staff_are_notified_by_email_or_webhook() -> None:
    key = Fernet.generate_key().decode()
    console_only = {k: v for k, v in PRODUCTION.items() if k not in {"SMTP_HOST", "NOTIFY_EMAIL_TO"}}
    with pytest.raises(SettingsError, match="NOTIFY_WEBHOOK_URL"):
        Settings.from_env({**console_only, "SPOOL_KEY": key})
    with pytest.raises(SettingsError, match="SMTP_HOST and NOTIFY_EMAIL_TO"):
        Settings.from_env({**console_only, "SPOOL_KEY": key, "SMTP_HOST": "smtp.clinic.test"})
    assert Settings.from_env({**console_only, "SPOOL_KEY": key, "SMTP_HOST": "smtp.clinic.test",
                              "NOTIFY_EMAIL_TO": "reception@clinic.test"}).is_production
    hooked = Settings.from_env({**console_only, "SPOOL_KEY": key, "NOTIFY_WEBHOOK_URL": "https://hooks.clinic.test/x",
                                "NOTIFY_WEBHOOK_SECRET": "w" * 32})
    assert hooked.is_production


def test_console_url_and_retention_have_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.console_url, settings.retention_days) == ("http://127.0.0.1:8090", 365)
    assert Settings.from_env({"CONSOLE_URL": "https://console.clinic.test/"}).console_url == (
        "https://console.clinic.test"
    )
    with pytest.raises(SettingsError, match="RETENTION_DAYS"):
        Settings.from_env({"RETENTION_DAYS": "0"})


def test_a_spool_key_that_is_not_a_fernet_key_is_refused() -> None:
    with pytest.raises(SettingsError, match="Fernet"):
        Settings.from_env({"SPOOL_KEY": "not-a-key"})


def test_database_time_limits_have_defaults_and_must_be_positive() -> None:
    settings = Settings.from_env({})
    assert 0 < settings.db_connect_timeout_seconds <= settings.db_operation_timeout_seconds
    with pytest.raises(SettingsError):
        Settings.from_env({"DB_OPERATION_TIMEOUT_SECONDS": "0"})
