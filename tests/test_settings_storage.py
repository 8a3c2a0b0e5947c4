"""Storage settings: what production refuses, and what a bad value says."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from bot.settings import Settings, SettingsError

PRODUCTION = {
    "BOT_ENV": "production", "RASA_AUTH_TOKEN": "a" * 32, "ACTION_SERVER_SECRET": "c" * 32,
}


def test_production_refuses_to_keep_an_outage_spool_unencrypted() -> None:
    with pytest.raises(SettingsError, match="SPOOL_KEY"):
        Settings.from_env(PRODUCTION)
    assert Settings.from_env({**PRODUCTION, "SPOOL_KEY": Fernet.generate_key().decode()}).spool_key


def test_a_spool_key_that_is_not_a_fernet_key_is_refused() -> None:
    with pytest.raises(SettingsError, match="Fernet"):
        Settings.from_env({"SPOOL_KEY": "not-a-key"})


def test_database_time_limits_have_defaults_and_must_be_positive() -> None:
    settings = Settings.from_env({})
    assert 0 < settings.db_connect_timeout_seconds <= settings.db_operation_timeout_seconds
    with pytest.raises(SettingsError):
        Settings.from_env({"DB_OPERATION_TIMEOUT_SECONDS": "0"})
