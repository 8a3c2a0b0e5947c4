"""Default start needs no secrets; setting a channel's variables switches it on."""

from __future__ import annotations

from pathlib import Path

import yaml
from cryptography.fernet import Fernet

from bot.channels.enabled import write_credentials


def test_default_start_runs_rest_and_the_widget_only(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    written = yaml.safe_load(write_credentials(tmp_path / "c.yml", env={}).read_text(encoding="utf-8"))
    assert list(written) == ["bot.channels.rest.RestInput", "bot.channels.socketio.SocketIOInput"]
    assert written["bot.channels.socketio.SocketIOInput"]["cors_allowed_origins"] != ["*"]
    assert "channels on: rest, socketio" in capsys.readouterr().out


def test_a_channel_is_on_only_when_all_its_variables_are_set(tmp_path: Path) -> None:
    env = {"TELEGRAM_ACCESS_TOKEN": "123:abc", "TELEGRAM_BOT_USERNAME": "clinic_bot",
           "TELEGRAM_WEBHOOK_URL": "https://example.org/webhooks/telegram/webhook",
           "TELEGRAM_SECRET_TOKEN": "s3cret-s3cret", "WHATSAPP_ACCESS_TOKEN": "only-one-of-four"}
    written = yaml.safe_load(write_credentials(tmp_path / "c.yml", env=env).read_text(encoding="utf-8"))
    assert written["bot.channels.telegram.TelegramInput"]["access_token"] == "${TELEGRAM_ACCESS_TOKEN}"
    assert "bot.channels.whatsapp.WhatsAppCloudInput" not in written
    assert "123:abc" not in (tmp_path / "c.yml").read_text(encoding="utf-8")  # secrets stay in the env


def test_production_turns_rest_off_unless_it_has_a_token(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from bot.settings import get_settings

    for name, value in {"BOT_ENV": "production", "RASA_AUTH_TOKEN": "r" * 32,
                        "ACTION_SERVER_SECRET": "a" * 32, "SPOOL_KEY": Fernet.generate_key().decode()}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    written = yaml.safe_load(write_credentials(tmp_path / "c.yml", env={}).read_text(encoding="utf-8"))
    assert list(written) == ["bot.channels.socketio.SocketIOInput"]

    monkeypatch.setenv("REST_CHANNEL_TOKEN", "t" * 32)
    get_settings.cache_clear()
    written = yaml.safe_load(write_credentials(tmp_path / "c.yml", env={}).read_text(encoding="utf-8"))
    assert "bot.channels.rest.RestInput" in written
