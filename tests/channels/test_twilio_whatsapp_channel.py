"""End-to-end tests of the Twilio WhatsApp connector over loopback HTTP.

Incoming messages are form posts signed the way Twilio signs them; replies go to the Messages
API stand-in through aiohttp. Rasa 3.6.21's Twilio channel checks no signature, blocks the
event loop while sending and shows buttons as `1: Title (/payload)`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from rasa.shared.exceptions import RasaException

from bot.channels.twilio_whatsapp import TwilioWhatsAppInput
from tests.channels.harness import BUTTONS, ChannelServer, EchoAgent
from tests.standins._server import free_port
from tests.standins.twilio_api import TwilioApiStandIn

ACCOUNT_SID = "AC" + "1" * 32
PATIENT = "whatsapp:+447700900123"


@pytest.fixture
def twilio_token() -> str:
    """A fresh auth token."""
    return secrets.token_hex(16)


@pytest.fixture
def twilio_api(twilio_token: str) -> Iterator[TwilioApiStandIn]:
    """The Messages API stand-in."""
    stand_in = TwilioApiStandIn(ACCOUNT_SID, twilio_token)
    stand_in.start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def twilio_server(
    twilio_api: TwilioApiStandIn, twilio_token: str, agent: EchoAgent
) -> Iterator[ChannelServer]:
    """The connector served by Sanic, signing over its public URL."""
    port = free_port()
    channel = TwilioWhatsAppInput.from_credentials(
        {
            "account_sid": ACCOUNT_SID,
            "auth_token": twilio_token,
            "twilio_number": "whatsapp:+14155238886",
            "webhook_url": f"http://127.0.0.1:{port}/webhooks/twilio_whatsapp/webhook",
            "api_base_url": twilio_api.base_url,
        }
    )
    server = ChannelServer(channel, agent, port)
    server.start()
    yield server
    server.stop()


def test_signed_message_gets_a_reply(
    twilio_server: ChannelServer,
    twilio_api: TwilioApiStandIn,
    twilio_token: str,
    agent: EchoAgent,
) -> None:
    """The conversation id is `twilio:` + Twilio's `From`; the reply goes from the clinic's number."""
    answer = TwilioApiStandIn.deliver(twilio_server.url("/webhook"), twilio_token, PATIENT, "hi")

    assert answer.status_code == 200
    assert "<Response>" in answer.text
    assert agent.received[-1].sender_id == f"twilio:{PATIENT}"
    assert agent.received[-1].input_channel == "twilio_whatsapp"
    [sent] = twilio_api.sent
    assert sent == {
        "From": "whatsapp:+14155238886",
        "To": PATIENT,
        "Body": "You said: hi",
    }


def test_buttons_are_numbered_and_a_typed_number_picks_one(
    twilio_server: ChannelServer,
    twilio_api: TwilioApiStandIn,
    twilio_token: str,
    agent: EchoAgent,
) -> None:
    """`1. Sciatica` instead of `1: Sciatica (/inform...)`; "2" sends the second payload."""
    url = twilio_server.url("/webhook")
    TwilioApiStandIn.deliver(url, twilio_token, PATIENT, "menu 3")
    TwilioApiStandIn.deliver(url, twilio_token, PATIENT, "2")

    assert twilio_api.sent[0]["Body"] == (
        "Where is the pain?\n\n1. Sciatica\n2. Book a consultation\n3. Knee pain"
    )
    assert agent.received[-1].text == BUTTONS[1]["payload"]


@pytest.mark.parametrize("signature", [None, "forged"], ids=["missing", "forged"])
def test_unsigned_or_forged_webhooks_are_refused(
    twilio_server: ChannelServer,
    twilio_api: TwilioApiStandIn,
    agent: EchoAgent,
    signature: str | None,
) -> None:
    """Anyone can POST to the webhook; only Twilio can sign with the auth token."""
    answer = TwilioApiStandIn.deliver(
        twilio_server.url("/webhook"), None, PATIENT, "menu 3", signature=signature
    )

    assert answer.status_code == 403
    assert agent.received == []
    assert twilio_api.calls == []


def test_signature_made_with_another_token_is_refused(
    twilio_server: ChannelServer, twilio_api: TwilioApiStandIn, agent: EchoAgent
) -> None:
    """A well-formed signature with the wrong key is still a forgery."""
    answer = TwilioApiStandIn.deliver(twilio_server.url("/webhook"), "someone-elses-token", PATIENT, "hi")

    assert answer.status_code == 403
    assert agent.received == []


def test_missing_credentials_are_refused() -> None:
    """Without the auth token nothing can be verified, so the channel will not start."""
    with pytest.raises(RasaException, match="auth_token"):
        TwilioWhatsAppInput.from_credentials(
            {"account_sid": ACCOUNT_SID, "twilio_number": "whatsapp:+14155238886"}
        )
