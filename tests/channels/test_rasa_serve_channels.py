"""Both connectors under Rasa's real server entry point, started offline, in a subprocess.

`tests/channels/rasa_serve_echo.py` runs `rasa.core.run.serve_application` (what `rasa run`
calls) with a credentials file that uses the `${VAR}` entries recommended for credentials.yml,
so this covers the environment expansion, `from_credentials`, `configure_app` and Sanic's
`app.run` with uvloop: the exact place where Rasa 3.6.21's Telegram connector exits with code
1 when the Bot API is unreachable, and otherwise fails with "Event loop is closed".
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.channels.harness import PATIENT_WA_ID, PHONE_NUMBER_ID
from tests.standins._server import free_port
from tests.standins.telegram_api import (
    TelegramBotApiStandIn,
    my_chat_member_update,
    text_update,
)
from tests.standins.whatsapp_graph import WhatsAppGraphStandIn, text_notification

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CREDENTIALS = """\
bot.channels.telegram.TelegramInput:
  access_token: ${TELEGRAM_ACCESS_TOKEN}
  verify: ${TELEGRAM_BOT_USERNAME}
  webhook_url: ${TELEGRAM_WEBHOOK_URL}
  secret_token: ${TELEGRAM_SECRET_TOKEN}
  api_base_url: ${TELEGRAM_API_BASE_URL}
  start_payload: /greet

bot.channels.whatsapp.WhatsAppCloudInput:
  access_token: ${WHATSAPP_ACCESS_TOKEN}
  app_secret: ${WHATSAPP_APP_SECRET}
  verify_token: ${WHATSAPP_VERIFY_TOKEN}
  phone_number_id: ${WHATSAPP_PHONE_NUMBER_ID}
  api_base_url: ${WHATSAPP_API_BASE_URL}
  api_version: ${WHATSAPP_API_VERSION}
"""


@dataclass
class RasaProcess:
    """The server subprocess and what the tests need to talk to it."""

    process: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log_path: Path
    telegram_api_port: int
    graph_api: WhatsAppGraphStandIn

    def url(self, path: str) -> str:
        """URL on the Rasa server."""
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def rasa_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaProcess]:
    """`serve_application` on a free port; the Bot API's port is closed at start-up."""
    folder = tmp_path_factory.mktemp("rasa_serve")
    credentials = folder / "credentials.yml"
    credentials.write_text(CREDENTIALS)
    port, telegram_api_port = free_port(), free_port()
    graph_token = "EAAG" + secrets.token_urlsafe(32)
    graph_api = WhatsAppGraphStandIn(graph_token, PHONE_NUMBER_ID)
    graph_api.start()
    env = {
        **os.environ,
        "RASA_TELEMETRY_ENABLED": "false",
        "TELEGRAM_ACCESS_TOKEN": f"7000000001:{secrets.token_urlsafe(26)}",
        "TELEGRAM_BOT_USERNAME": "clinic_test_bot",
        "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/webhooks/telegram/webhook",
        "TELEGRAM_SECRET_TOKEN": secrets.token_urlsafe(32),
        "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{telegram_api_port}",
        "WHATSAPP_ACCESS_TOKEN": graph_token,
        "WHATSAPP_APP_SECRET": secrets.token_hex(16),
        "WHATSAPP_VERIFY_TOKEN": secrets.token_urlsafe(24),
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "WHATSAPP_API_BASE_URL": graph_api.base_url,
        "WHATSAPP_API_VERSION": "v19.0",
    }
    log_path = folder / "rasa.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.channels.rasa_serve_echo",
                str(credentials),
                str(port),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = RasaProcess(process, port, env, log_path, telegram_api_port, graph_api)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{server.log[-3000:]}")
            try:
                if requests.get(server.url("/webhooks/telegram/"), timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not start:\n{server.log[-3000:]}")
            time.sleep(0.5)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        graph_api.stop()
    assert "Traceback" not in server.log, server.log[-3000:]


def test_telegram_starts_offline_and_answers_once_the_bot_api_is_back(
    rasa_process: RasaProcess,
) -> None:
    """No exit code 1 offline, no "Event loop is closed" afterwards, ignored updates get 200."""
    env = rasa_process.env
    assert rasa_process.process.poll() is None
    health = requests.get(rasa_process.url("/webhooks/telegram/"), timeout=5).json()
    assert health["webhook_set"] is False

    api = TelegramBotApiStandIn(
        env["TELEGRAM_ACCESS_TOKEN"],
        username=env["TELEGRAM_BOT_USERNAME"],
        port=rasa_process.telegram_api_port,
    )
    api.start()
    try:
        api.wait_for("setWebhook", timeout=60)  # the background retry, with back-off
        assert api.webhook["secret_token"] == env["TELEGRAM_SECRET_TOKEN"]

        assert api.deliver(text_update(4242, "hello from Telegram")).status_code == 200
        sent = api.wait_for("sendMessage")
        assert sent[-1].params["text"] == "You said: hello from Telegram"

        assert api.deliver(my_chat_member_update(4242)).status_code == 200
        assert api.deliver(text_update(4242, "no secret"), secret_token="").status_code == 403
        time.sleep(0.3)
        assert len(api.calls_to("sendMessage")) == 1
    finally:
        api.stop()
    assert "Could not set the Telegram webhook" in rasa_process.log
    assert "Event loop is closed" not in rasa_process.log
    assert env["TELEGRAM_ACCESS_TOKEN"] not in rasa_process.log


def test_whatsapp_signed_message_is_answered(rasa_process: RasaProcess) -> None:
    """Meta's handshake, a signed message and a forged one, through `rasa run`'s server."""
    env = rasa_process.env
    webhook = rasa_process.url("/webhooks/whatsapp/webhook")
    handshake = WhatsAppGraphStandIn.verify_webhook(webhook, env["WHATSAPP_VERIFY_TOKEN"], "77")
    assert (handshake.status_code, handshake.text) == (200, "77")

    notification = text_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, "hello from WhatsApp")
    forged = WhatsAppGraphStandIn.deliver(webhook, notification, "not-the-app-secret")
    signed = WhatsAppGraphStandIn.deliver(webhook, notification, env["WHATSAPP_APP_SECRET"])

    assert forged.status_code == 403
    assert signed.status_code == 200
    [sent] = rasa_process.graph_api.wait_for_sent()
    assert sent["to"] == PATIENT_WA_ID
    assert sent["text"]["body"] == "You said: hello from WhatsApp"
    assert rasa_process.process.poll() is None
