"""The committed credentials.yml starts every channel whose settings are set, under Rasa itself.

A plain `rasa run` in the project folder and `make run` read the same credentials.yml; each
messaging channel takes its credentials from settings and is off, with one log line naming
the variables, while they are unset. These tests run Rasa's own `serve_application` (what
`rasa run` calls; tests/channels/rasa_serve_echo.py) on the project's credentials.yml.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

import pytest
import requests

from bot.channels.enabled import SwitchedOff, channel_credentials
from bot.channels.telegram import TelegramInput
from bot.settings import Settings
from tests.standins._server import free_port

ROOT = Path(__file__).resolve().parent.parent
CHANNEL_PREFIXES = ("TELEGRAM_", "WHATSAPP_", "TWILIO_")


def serve(tmp_path: Path, env: Dict[str, str]) -> tuple[subprocess.Popen[bytes], int, Path]:
    """Rasa's serve_application on the project's credentials.yml, on a free port."""
    port = free_port()
    log = tmp_path / "rasa.log"
    base = {k: v for k, v in os.environ.items() if not k.startswith(CHANNEL_PREFIXES)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.channels.rasa_serve_echo", str(ROOT / "credentials.yml"), str(port)],
        cwd=ROOT, env={**base, "RASA_TELEMETRY_ENABLED": "false", **env},
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/webhooks/rest/", timeout=2).ok:
                return proc, port, log
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_without_channel_variables_only_rest_and_the_widget_answer(tmp_path: Path) -> None:
    proc, port, log = serve(tmp_path, {})
    try:
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/socket.io/?EIO=4&transport=polling", timeout=5).ok
        for channel in ("telegram", "whatsapp", "twilio_whatsapp"):
            assert requests.post(f"{base}/webhooks/{channel}/webhook", json={}, timeout=5).status_code == 404
    finally:
        stop(proc)
    text = log.read_text()
    assert "telegram channel off: set TELEGRAM_ACCESS_TOKEN, TELEGRAM_BOT_USERNAME" in text
    assert "whatsapp channel off: set WHATSAPP_ACCESS_TOKEN" in text
    assert "twilio_whatsapp channel off: set TWILIO_ACCOUNT_SID" in text
    assert "Traceback" not in text


def test_setting_a_channels_variables_switches_it_on_under_rasa(tmp_path: Path) -> None:
    verify_token = secrets.token_urlsafe(24)
    proc, port, log = serve(tmp_path, {
        "WHATSAPP_ACCESS_TOKEN": "EAAG" + secrets.token_urlsafe(32),
        "WHATSAPP_APP_SECRET": secrets.token_hex(16),
        "WHATSAPP_VERIFY_TOKEN": verify_token,
        "WHATSAPP_PHONE_NUMBER_ID": "123456789012345",
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,  # one of four: stays off, with a warning
    })
    try:
        base = f"http://127.0.0.1:{port}/webhooks"
        answer = requests.get(f"{base}/whatsapp/webhook", timeout=5, params={
            "hub.mode": "subscribe", "hub.verify_token": verify_token, "hub.challenge": "4711"})
        assert (answer.status_code, answer.text) == (200, "4711")
        assert requests.post(f"{base}/twilio_whatsapp/webhook", timeout=5).status_code == 404
    finally:
        stop(proc)
    text = log.read_text()
    assert "whatsapp channel on" in text
    assert "twilio_whatsapp channel off: TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_NUMBER, TWILIO_WEBHOOK_URL not set" in text


def test_a_credentials_section_with_values_wins_over_settings() -> None:
    settings = Settings.from_env({"TELEGRAM_ACCESS_TOKEN": "from-settings"})
    given = {"access_token": "from-file", "secret_token": "s" * 32}
    assert channel_credentials("telegram", given, settings) == given
    assert channel_credentials("telegram", None, settings) is None  # three of four unset


def test_an_empty_section_reads_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import get_settings

    for name, value in {"TELEGRAM_ACCESS_TOKEN": "7000000001:" + "a" * 35, "TELEGRAM_BOT_USERNAME": "clinic_bot",
                        "TELEGRAM_WEBHOOK_URL": "https://clinic.example/webhooks/telegram/webhook",
                        "TELEGRAM_SECRET_TOKEN": "s" * 32}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    channel = TelegramInput.from_credentials(None)
    assert isinstance(channel, TelegramInput) and not isinstance(channel, SwitchedOff)
    monkeypatch.delenv("TELEGRAM_SECRET_TOKEN")
    get_settings.cache_clear()
    assert isinstance(TelegramInput.from_credentials(None), SwitchedOff)
