"""Telegram and WhatsApp in front of the real assistant: trained model, actions, `rasa run`.

Uses the shared `rasa_stack_factory` (tests/conftest.py) with a credentials file holding the
`${VAR}` entries recommended for credentials.yml, and the stand-ins for Telegram and Meta.
Messages use intent payloads (`/greet`) so the path does not depend on NLU accuracy.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import requests

from bot.channels.telegram import SECRET_HEADER
from tests.channels.harness import PATIENT_WA_ID, PHONE_NUMBER_ID
from tests.standins.telegram_api import TelegramBotApiStandIn, callback_query_update, text_update
from tests.standins.whatsapp_graph import (
    WhatsAppGraphStandIn,
    list_reply_notification,
    text_notification,
)

TELEGRAM_CREDENTIALS = """\
bot.channels.rest.RestInput:
bot.channels.telegram.TelegramInput:
  access_token: ${TELEGRAM_ACCESS_TOKEN}
  verify: ${TELEGRAM_BOT_USERNAME}
  webhook_url: ${TELEGRAM_WEBHOOK_URL}
  secret_token: ${TELEGRAM_SECRET_TOKEN}
  api_base_url: ${TELEGRAM_API_BASE_URL}
  start_payload: /greet
"""
WHATSAPP_CREDENTIALS = """\
bot.channels.rest.RestInput:
bot.channels.whatsapp.WhatsAppCloudInput:
  access_token: ${WHATSAPP_ACCESS_TOKEN}
  app_secret: ${WHATSAPP_APP_SECRET}
  verify_token: ${WHATSAPP_VERIFY_TOKEN}
  phone_number_id: ${WHATSAPP_PHONE_NUMBER_ID}
  api_base_url: ${WHATSAPP_API_BASE_URL}
  api_version: ${WHATSAPP_API_VERSION}
"""
CHAT_ID = 7123456


def _user_texts(tracker: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    return [(e.get("text"), e.get("input_channel")) for e in tracker["events"] if e["event"] == "user"]


def test_telegram_patient_reaches_the_real_assistant(
    rasa_stack_factory: Callable[..., Any],
) -> None:
    """`/start` greets, the keyboard's button books, all under `telegram:<chat_id>`."""
    token, secret = f"7000000002:{secrets.token_urlsafe(26)}", secrets.token_urlsafe(32)
    api = TelegramBotApiStandIn(token, username="clinic_test_bot")
    api.start()
    try:
        stack = rasa_stack_factory(
            credentials=TELEGRAM_CREDENTIALS,
            extra_env={
                "TELEGRAM_ACCESS_TOKEN": token,
                "TELEGRAM_BOT_USERNAME": "clinic_test_bot",
                "TELEGRAM_WEBHOOK_URL": "https://clinic.example/webhooks/telegram/webhook",
                "TELEGRAM_SECRET_TOKEN": secret,
                "TELEGRAM_API_BASE_URL": api.base_url,
            },
        )
        webhook = f"{stack.rasa_url}/webhooks/telegram/webhook"
        api.wait_for("setWebhook", timeout=60)
        assert api.webhook["secret_token"] == secret

        forged = requests.post(webhook, json=text_update(CHAT_ID, "/greet"), timeout=10)
        assert forged.status_code == 403
        assert api.deliver(text_update(CHAT_ID, "/start"), url=webhook, timeout=60).status_code == 200

        greeting = next(c for c in api.wait_for("sendMessage", timeout=30) if "reply_markup" in c.params)
        assert str(greeting.params["chat_id"]) == str(CHAT_ID)
        keys = [row[0] for row in greeting.params["reply_markup"]["inline_keyboard"]]
        booking = next(k for k in keys if k["callback_data"] == "/book_appointment")
        sent_before = len(api.calls_to("sendMessage"))

        press = callback_query_update(CHAT_ID, booking["callback_data"], greeting.result)
        assert api.deliver(press, url=webhook, timeout=60).status_code == 200

        assert api.calls_to("answerCallbackQuery")
        api.wait_for("sendMessage", count=sent_before + 1, timeout=30)
        user_texts = _user_texts(stack.tracker(f"telegram:{CHAT_ID}"))
        assert user_texts == [("/greet", "telegram"), ("/book_appointment", "telegram")]
        assert (
            requests.post(
                f"{stack.rasa_url}/webhooks/telegram/set_webhook", headers={SECRET_HEADER: "x"}, timeout=10
            ).status_code
            == 403
        )
    finally:
        api.stop()


def test_whatsapp_patient_reaches_the_real_assistant(
    rasa_stack_factory: Callable[..., Any],
) -> None:
    """Greeting as a list (a title is over 20 characters), list reply, `whatsapp:<wa_id>`."""
    token, app_secret = "EAAG" + secrets.token_urlsafe(32), secrets.token_hex(16)
    graph = WhatsAppGraphStandIn(token, PHONE_NUMBER_ID)
    graph.start()
    try:
        stack = rasa_stack_factory(
            credentials=WHATSAPP_CREDENTIALS,
            extra_env={
                "WHATSAPP_ACCESS_TOKEN": token,
                "WHATSAPP_APP_SECRET": app_secret,
                "WHATSAPP_VERIFY_TOKEN": secrets.token_urlsafe(24),
                "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
                "WHATSAPP_API_BASE_URL": graph.base_url,
                "WHATSAPP_API_VERSION": "v19.0",
            },
        )
        webhook = f"{stack.rasa_url}/webhooks/whatsapp/webhook"
        greet = text_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, "/greet")
        assert WhatsAppGraphStandIn.deliver(webhook, greet, "forged-secret").status_code == 403
        assert WhatsAppGraphStandIn.deliver(webhook, greet, app_secret, timeout=60).status_code == 200

        graph.wait_for_sent(timeout=30)
        assert [c.status for c in graph.calls] == [200] * len(graph.calls), "Meta would refuse"
        greeting = next(m for m in graph.sent if m["type"] == "interactive")
        assert greeting["to"] == PATIENT_WA_ID
        rows = greeting["interactive"]["action"]["sections"][0]["rows"]
        booking = next(r for r in rows if r["id"] == "/book_appointment")
        sent_before = len(graph.sent)

        choice = list_reply_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, booking["id"], booking["title"])
        assert WhatsAppGraphStandIn.deliver(webhook, choice, app_secret, timeout=60).status_code == 200

        graph.wait_for_sent(count=sent_before + 1, timeout=30)
        user_texts = _user_texts(stack.tracker(f"whatsapp:{PATIENT_WA_ID}"))
        assert user_texts == [("/greet", "whatsapp"), ("/book_appointment", "whatsapp")]
    finally:
        graph.stop()
