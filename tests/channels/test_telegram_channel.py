"""End-to-end tests of the Telegram connector over loopback HTTP.

Updates come from the Bot API stand-in (`deliver`, like Telegram's webhook calls), pass
through the connector's blueprint in a real Sanic server, reach `EchoAgent` through Rasa's own
`register` handler, and the replies travel back to the stand-in's `sendMessage`. Each test
reproduces a defect of Rasa 3.6.21's connector and shows it fixed.
"""

from __future__ import annotations

import logging
import time

import pytest
import requests
from rasa.shared.exceptions import RasaException

from bot.channels.telegram import SECRET_HEADER, TelegramInput
from tests.channels.harness import (
    BUTTONS,
    LONG_PAYLOAD,
    LONG_TITLE,
    ChannelServer,
    EchoAgent,
    make_telegram_channel,
)
from tests.standins._server import free_port, wait_until
from tests.standins.telegram_api import (
    TelegramBotApiStandIn,
    callback_query_update,
    edited_message_update,
    my_chat_member_update,
    text_update,
)

CHAT_ID = 5551234


def test_webhook_is_registered_with_secret_token_after_start(
    telegram_server: ChannelServer,
    telegram_api: TelegramBotApiStandIn,
    telegram_secret: str,
) -> None:
    """The pinned aiogram 2.15 cannot send `secret_token`; a raw Bot API call does."""
    registration = telegram_api.calls_to("setWebhook")[-1].params
    assert registration["url"] == telegram_server.url("/webhook")
    assert registration["secret_token"] == telegram_secret
    assert registration["allowed_updates"] == ["message", "callback_query"]
    assert telegram_api.calls_to("getMe"), "the bot username is checked once at start-up"
    health = requests.get(telegram_server.url("/"), timeout=5).json()
    assert health == {"status": "ok", "webhook_set": True}


def test_text_update_is_answered_through_send_message(
    telegram_server: ChannelServer,
    telegram_api: TelegramBotApiStandIn,
    agent: EchoAgent,
) -> None:
    """A patient's text reaches Rasa as `telegram:<chat_id>`, the reply reaches the chat."""
    answer = telegram_api.deliver(text_update(CHAT_ID, "My knee hurts"))

    assert answer.status_code == 200
    [message] = agent.received
    assert message.text == "My knee hurts"
    assert message.sender_id == f"telegram:{CHAT_ID}"
    assert message.input_channel == "telegram"
    [sent] = telegram_api.calls_to("sendMessage")
    assert str(sent.params["chat_id"]) == str(CHAT_ID)
    assert sent.params["text"] == "You said: My knee hurts"


def test_same_chat_continues_the_same_conversation(
    telegram_server: ChannelServer,
    telegram_api: TelegramBotApiStandIn,
    agent: EchoAgent,
) -> None:
    """Two messages from one chat share a sender id; another chat gets its own."""
    telegram_api.deliver(text_update(CHAT_ID, "hello"))
    telegram_api.deliver(text_update(CHAT_ID, "again"))
    telegram_api.deliver(text_update(CHAT_ID + 1, "someone else"))

    senders = [m.sender_id for m in agent.received]
    assert senders == [
        f"telegram:{CHAT_ID}",
        f"telegram:{CHAT_ID}",
        f"telegram:{CHAT_ID + 1}",
    ]


def test_buttons_are_sent_as_inline_keyboard(
    telegram_server: ChannelServer, telegram_api: TelegramBotApiStandIn
) -> None:
    """Buttons become an inline keyboard whose callback_data is each button's payload."""
    telegram_api.deliver(text_update(CHAT_ID, "menu 3"))

    [sent] = telegram_api.calls_to("sendMessage")
    assert sent.params["text"] == "Where is the pain?"
    keyboard = sent.params["reply_markup"]["inline_keyboard"]
    assert [[key["text"] for key in row] for row in keyboard] == [
        ["Sciatica"],
        ["Book a consultation"],
        ["Knee pain"],
    ]
    assert [row[0]["callback_data"] for row in keyboard] == [b["payload"] for b in BUTTONS[:3]]


def test_callback_query_sends_payload_and_answers_the_query(
    telegram_server: ChannelServer,
    telegram_api: TelegramBotApiStandIn,
    agent: EchoAgent,
) -> None:
    """Pressing a button sends its payload to Rasa and stops the button's spinner."""
    telegram_api.deliver(text_update(CHAT_ID, "menu 3"))
    keyboard_message = telegram_api.calls_to("sendMessage")[-1].result
    pressed = keyboard_message["reply_markup"]["inline_keyboard"][1][0]
    update = callback_query_update(CHAT_ID, pressed["callback_data"], keyboard_message)

    answer = telegram_api.deliver(update)

    assert answer.status_code == 200
    assert agent.received[-1].text == "/book_consultation"
    assert agent.received[-1].sender_id == f"telegram:{CHAT_ID}"
    [answered] = telegram_api.calls_to("answerCallbackQuery")
    assert answered.params["callback_query_id"] == update["callback_query"]["id"]
    assert telegram_api.calls_to("sendMessage")[-1].params["text"] == "You said: /book_consultation"


def test_payload_over_64_bytes_is_sent_as_short_id_and_resolved(
    telegram_server: ChannelServer,
    telegram_api: TelegramBotApiStandIn,
    agent: EchoAgent,
) -> None:
    """Telegram refuses callback_data over 64 bytes (BUTTON_DATA_INVALID); map and resolve."""
    assert len(LONG_PAYLOAD.encode()) > 64
    telegram_api.deliver(text_update(CHAT_ID, "menu long"))
    [sent] = telegram_api.calls_to("sendMessage")
    data = sent.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert len(data.encode()) <= 64

    telegram_api.deliver(callback_query_update(CHAT_ID, data, sent.result))

    assert agent.received[-1].text == LONG_PAYLOAD


def test_unknown_short_id_falls_back_to_the_button_title(
    telegram_server: ChannelServer,
    telegram_api: TelegramBotApiStandIn,
    agent: EchoAgent,
) -> None:
    """After a restart the short-id map is empty; the pressed button's title goes to NLU."""
    stale = {
        "message_id": 99,
        "chat": {"id": CHAT_ID, "type": "private"},
        "date": int(time.time()),
        "text": "Which describes it best?",
        "reply_markup": {
            "inline_keyboard": [[{"text": LONG_TITLE, "callback_data": "~unknownshortid000000"}]]
        },
    }
    telegram_api.deliver(callback_query_update(CHAT_ID, "~unknownshortid000000", stale))

    assert agent.received[-1].text == LONG_TITLE
    assert telegram_api.calls_to("answerCallbackQuery")


def test_typed_option_number_resolves_to_the_payload(
    telegram_server: ChannelServer,
    telegram_api: TelegramBotApiStandIn,
    agent: EchoAgent,
) -> None:
    """Typing "2" instead of tapping picks the second of the buttons just sent."""
    telegram_api.deliver(text_update(CHAT_ID, "menu 3"))
    telegram_api.deliver(text_update(CHAT_ID, "2"))

    assert agent.received[-1].text == BUTTONS[1]["payload"]


@pytest.mark.parametrize(
    "update",
    [my_chat_member_update(CHAT_ID), edited_message_update(CHAT_ID, "edited text")],
    ids=["my_chat_member", "edited_message"],
)
def test_updates_without_a_message_are_acknowledged_and_ignored(
    telegram_server: ChannelServer,
    telegram_api: TelegramBotApiStandIn,
    agent: EchoAgent,
    update: dict,
) -> None:
    """Rasa 3.6.21 answers 500 here, so Telegram redelivers them forever."""
    started = time.monotonic()
    answer = telegram_api.deliver(update)

    assert answer.status_code == 200
    assert time.monotonic() - started < 1.0
    assert agent.received == []
    assert telegram_api.calls_to("sendMessage") == []


def test_group_messages_are_ignored(
    telegram_server: ChannelServer,
    telegram_api: TelegramBotApiStandIn,
    agent: EchoAgent,
) -> None:
    """Health questions are answered only in private chats, never in a group."""
    update = text_update(CHAT_ID, "hello")
    update["message"]["chat"] = {
        "id": -1001234,
        "title": "Family",
        "type": "supergroup",
    }

    assert telegram_api.deliver(update).status_code == 200
    assert agent.received == []
    assert telegram_api.calls_to("sendMessage") == []


def test_redelivered_update_is_processed_once(
    telegram_server: ChannelServer,
    telegram_api: TelegramBotApiStandIn,
    agent: EchoAgent,
) -> None:
    """Telegram redelivers an update it thinks timed out; the patient gets one reply."""
    update = text_update(CHAT_ID, "hello")
    assert telegram_api.deliver(update).status_code == 200
    assert telegram_api.deliver(update).status_code == 200

    assert len(agent.received) == 1
    assert len(telegram_api.calls_to("sendMessage")) == 1


@pytest.mark.parametrize("secret", ["", "not-the-secret"], ids=["missing", "wrong"])
def test_update_without_the_secret_token_is_refused(
    telegram_server: ChannelServer,
    telegram_api: TelegramBotApiStandIn,
    agent: EchoAgent,
    secret: str,
) -> None:
    """Anyone can POST to the webhook URL; only Telegram knows the secret token."""
    answer = telegram_api.deliver(text_update(CHAT_ID, "menu 3"), secret_token=secret)

    assert answer.status_code == 403
    assert agent.received == []
    assert telegram_api.calls_to("sendMessage") == []
    assert telegram_api.calls_to("answerCallbackQuery") == []


def test_set_webhook_route_requires_the_secret_token(
    telegram_server: ChannelServer,
    telegram_api: TelegramBotApiStandIn,
    telegram_secret: str,
) -> None:
    """Rasa's `/set_webhook` lets anyone re-point the bot; this one needs the secret."""
    before = len(telegram_api.calls_to("setWebhook"))

    refused = requests.post(telegram_server.url("/set_webhook"), timeout=5)
    accepted = requests.post(
        telegram_server.url("/set_webhook"),
        headers={SECRET_HEADER: telegram_secret},
        timeout=5,
    )

    assert refused.status_code == 403
    assert accepted.status_code == 200
    assert accepted.json()["ok"] is True
    assert len(telegram_api.calls_to("setWebhook")) == before + 1


def test_start_up_offline_then_updates_work_once_the_api_is_back(
    telegram_token: str,
    telegram_secret: str,
    agent: EchoAgent,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Rasa 3.6.21 exits when the Bot API is unreachable, and after that reuses a dead loop.

    Here the server starts with the API's port closed, keeps retrying `setWebhook` in its
    own loop, and once the API answers, registers the webhook and replies to updates.
    """
    caplog.set_level(logging.INFO)
    api_port = free_port()  # nothing listens here yet: connection refused
    port = free_port()
    channel = make_telegram_channel(telegram_token, telegram_secret, f"http://127.0.0.1:{api_port}", port)
    server = ChannelServer(channel, agent, port).start()
    api = TelegramBotApiStandIn(telegram_token, username="clinic_test_bot", port=api_port)
    try:
        assert requests.get(server.url("/"), timeout=5).json()["webhook_set"] is False
        wait_until(lambda: "Could not set the Telegram webhook" in caplog.text)

        api.start()
        api.wait_for("setWebhook")
        wait_until(lambda: requests.get(server.url("/"), timeout=5).json()["webhook_set"])
        answer = api.deliver(text_update(CHAT_ID, "are you there?"))

        assert answer.status_code == 200
        assert api.calls_to("sendMessage")[-1].params["text"] == "You said: are you there?"
    finally:
        server.stop()
        api.stop()
    assert "Event loop is closed" not in caplog.text
    assert telegram_token not in caplog.text, "the token is part of the URL; never log it"


def test_wrong_token_is_logged_and_not_retried(
    telegram_api: TelegramBotApiStandIn,
    telegram_secret: str,
    agent: EchoAgent,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 401 will not heal by retrying: the server keeps running and says what is wrong."""
    port = free_port()
    channel = make_telegram_channel("123456:wrong-token", telegram_secret, telegram_api.base_url, port)
    server = ChannelServer(channel, agent, port).start()
    try:
        wait_until(lambda: "Telegram refused the webhook" in caplog.text)
        time.sleep(0.3)
        assert [c.status for c in telegram_api.calls] == [401]
        assert requests.get(server.url("/"), timeout=5).status_code == 200
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("credentials", "problem"),
    [
        ({"access_token": "1:x"}, "secret_token is required"),
        (
            {"access_token": "1:x", "secret_token": "has spaces!"},
            "secret_token is required",
        ),
        ({"secret_token": "s" * 32}, "access_token is missing"),
    ],
)
def test_incomplete_credentials_are_refused(credentials: dict, problem: str) -> None:
    """Without a secret token there is no authentication, so the channel will not start."""
    with pytest.raises(RasaException, match=problem):
        TelegramInput.from_credentials(credentials)


def test_credentials_default_to_the_public_bot_api() -> None:
    """Without `api_base_url` the connector talks to api.telegram.org."""
    channel = TelegramInput.from_credentials({"access_token": "1:x", "secret_token": "s" * 32})
    assert isinstance(channel, TelegramInput)
    assert channel.api_base_url == "https://api.telegram.org"
    assert channel.get_output_channel().name() == "telegram"


def test_malformed_authentic_update_is_acknowledged(
    telegram_server: ChannelServer, telegram_api: TelegramBotApiStandIn, agent: EchoAgent
) -> None:
    """A 500 would make Telegram redeliver it forever and hold back later updates."""
    update = {"update_id": 1, "message": {"message_id": 1, "chat": "oops", "text": "hi"}}

    assert telegram_api.deliver(update).status_code == 200
    assert telegram_api.deliver(text_update(CHAT_ID, "still here")).status_code == 200
    assert [m.text for m in agent.received] == ["still here"]


@pytest.mark.parametrize("command", ["/start", "/start@clinic_test_bot", "/start campaign-42"])
def test_start_command_becomes_the_configured_payload(
    telegram_server: ChannelServer, telegram_api: TelegramBotApiStandIn, agent: EchoAgent, command: str
) -> None:
    """Telegram sends `/start` when a patient first opens the bot; Rasa gets `/greet`."""
    telegram_api.deliver(text_update(CHAT_ID, command))

    assert agent.received[-1].text == "/greet"
