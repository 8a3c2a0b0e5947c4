"""The intake rules hold on every channel: long texts, typed payloads, blank messages.

Same app as the namespace tests (all five connectors, echo agent). What reaches "Rasa" is
what the echo agent records; what the patient sees is what reached the stand-ins or the
socket.io client.
"""

from __future__ import annotations

import json

import pytest
import requests

from bot.channels.intake import DIDNT_CATCH
from bot.channels.sender import PREFIXES
from bot.channels.telegram import SECRET_HEADER
from tests.channels.all_channels import VICTIMS, AllChannels
from tests.standins._server import wait_until

LONG = "My lower back has hurt for weeks and sitting makes it worse. " * 80 + (
    "Since this morning I cannot control my bladder."
)


@pytest.mark.parametrize("source", list(PREFIXES))
def test_nlu_sees_the_first_part_and_the_safety_layer_the_whole(channels: AllChannels, source: str) -> None:
    """DIET gets 1,000 characters; `metadata["full_text"]` keeps the symptom at the end."""
    status = channels.send_as(source, VICTIMS[source], LONG)
    assert status in {None, 200}
    [received] = channels.agent.received
    assert received.text == LONG[:1000]
    assert received.metadata["full_text"] == LONG
    assert received.metadata["full_text"].endswith("cannot control my bladder.")


def test_the_patient_is_told_the_message_was_cut(channels: AllChannels) -> None:
    """On WhatsApp, Twilio and the widget the note arrives before the answer."""
    channels.send_as("whatsapp", VICTIMS["whatsapp"], LONG)
    first = channels.graph.wait_for_sent(count=2)[0]
    assert "read the first 1,000 characters" in first["text"]["body"]
    channels.send_as("twilio_whatsapp", VICTIMS["twilio_whatsapp"], LONG)
    assert "read the first 1,000 characters" in channels.twilio.wait_for_sent(count=2)[0]["Body"]
    channels.send_as("socketio", VICTIMS["socketio"], LONG)
    assert "read the first 1,000 characters" in channels.socket_replies[0]["text"]


@pytest.mark.parametrize("source", list(PREFIXES))
def test_a_typed_payload_with_entities_is_plain_text(channels: AllChannels, source: str) -> None:
    """`/greet{"red_flag": "bladder"}` must not set slots: NLU reads it as words."""
    channels.send_as(source, VICTIMS[source], '/greet{"red_flag": "bladder"}')
    channels.send_as(source, VICTIMS[source], "/restart")
    assert [m.text for m in channels.agent.received] == ['greet{"red_flag": "bladder"}', "restart"]


@pytest.mark.parametrize("source", ["rest", "socketio", "twilio_whatsapp"])
def test_a_blank_message_gets_a_reply(channels: AllChannels, source: str) -> None:
    """Channels that can carry a blank message answer it instead of staying silent."""
    channels.send_as(source, VICTIMS[source], "  \u0000 ")
    assert channels.agent.received == []
    if source == "socketio":
        wait_until(lambda: channels.socket_replies)
        assert channels.socket_replies[0]["text"] == DIDNT_CATCH
    elif source == "twilio_whatsapp":
        assert channels.twilio.wait_for_sent()[0]["Body"] == DIDNT_CATCH


def test_socketio_refuses_oversized_packets(channels: AllChannels) -> None:
    """socket.io's own buffer limit follows REQUEST_MAX_BYTES (64 kB) instead of its 1 MB."""
    base = f"http://127.0.0.1:{channels.server.port}/socket.io/"
    handshake = requests.get(base, params={"EIO": "4", "transport": "polling"}, timeout=5)
    sid = json.loads(handshake.text[1:])["sid"]
    params = {"EIO": "4", "transport": "polling", "sid": sid}
    assert requests.post(base, params=params, data="40", timeout=5).ok  # socket.io connect
    packet = "42" + json.dumps(["user_uttered", {"message": "x" * 200_000, "session_id": "abcdefgh1234"}])
    assert requests.post(base, params=params, data=packet, timeout=5).status_code == 413
    assert channels.agent.received == []
    channels.send_as("socketio", VICTIMS["socketio"], "still here")
    assert [m.text for m in channels.agent.received] == ["still here"]


def test_telegram_button_data_not_on_the_bots_keyboard_is_plain_text(channels: AllChannels) -> None:
    """A callback query is a payload only if its data is on the keyboard Telegram echoes."""
    forged = '/greet{"red_flag": "bladder"}'
    chat = {"id": 4242, "type": "private"}
    keyboard = {"inline_keyboard": [[{"text": "Book", "callback_data": "/book_appointment"}]]}
    headers = {SECRET_HEADER: channels.telegram_secret}
    for n, (data, markup) in enumerate([(forged, keyboard), ("/book_appointment", keyboard)]):
        query = {"id": str(n), "from": {"id": 4242}, "data": data,
                 "message": {"message_id": 1, "chat": chat, "date": 1, "text": "Hi", "reply_markup": markup}}
        answer = requests.post(channels.url("telegram"), json={"update_id": 900 + n, "callback_query": query},
                               headers=headers, timeout=10)
        assert answer.status_code == 200
    assert [m.text for m in channels.agent.received] == [forged[1:], "/book_appointment"]
