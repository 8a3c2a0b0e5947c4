"""End-to-end tests of the WhatsApp Cloud API connector over loopback HTTP.

Notifications are signed and posted the way Meta posts them, pass through the connector's
blueprint in a real Sanic server, reach `EchoAgent` through Rasa's own `register` handler,
and the replies are POSTed to the Graph API stand-in, which refuses what Meta would refuse.
"""

from __future__ import annotations

import logging
import time

import pytest
import requests
from rasa.shared.exceptions import RasaException

from bot.channels.whatsapp import WhatsAppCloudInput, choose_layout
from tests.channels.harness import (
    BUTTONS,
    HUGE_PAYLOAD,
    LONG_PAYLOAD,
    LONG_TITLE,
    PATIENT_WA_ID,
    PHONE_NUMBER_ID,
    ChannelServer,
    EchoAgent,
    serve_whatsapp,
)
from tests.standins.whatsapp_graph import (
    WhatsAppGraphStandIn,
    button_reply_notification,
    list_reply_notification,
    status_notification,
    text_notification,
)


def _say(server: ChannelServer, secret: str, text: str) -> requests.Response:
    notification = text_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, text)
    return WhatsAppGraphStandIn.deliver(server.url("/webhook"), notification, secret)


def test_verification_echoes_the_challenge_for_the_right_token(
    whatsapp_server: ChannelServer, whatsapp_credentials: dict[str, str]
) -> None:
    """Meta subscribes the webhook only if it gets `hub.challenge` back."""
    answer = WhatsAppGraphStandIn.verify_webhook(
        whatsapp_server.url("/webhook"),
        whatsapp_credentials["verify_token"],
        "1158201444",
    )
    assert answer.status_code == 200
    assert answer.text == "1158201444"


@pytest.mark.parametrize(
    ("token", "mode"),
    [("wrong-token", "subscribe"), (None, "unsubscribe")],
    ids=["token", "mode"],
)
def test_verification_with_a_wrong_token_or_mode_is_refused(
    whatsapp_server: ChannelServer,
    whatsapp_credentials: dict[str, str],
    token: str | None,
    mode: str,
) -> None:
    """Nobody but the app's owner can subscribe this webhook."""
    answer = WhatsAppGraphStandIn.verify_webhook(
        whatsapp_server.url("/webhook"),
        token or whatsapp_credentials["verify_token"],
        "1158201444",
        mode=mode,
    )
    assert answer.status_code == 403
    assert "1158201444" not in answer.text


def test_signed_text_message_gets_a_reply(
    whatsapp_server: ChannelServer,
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
    agent: EchoAgent,
) -> None:
    """A patient's text reaches Rasa as `whatsapp:<wa_id>`, the reply goes to the Graph API."""
    answer = _say(whatsapp_server, whatsapp_credentials["app_secret"], "My back hurts")

    assert answer.status_code == 200
    [message] = agent.received
    assert (message.text, message.sender_id) == (
        "My back hurts",
        f"whatsapp:{PATIENT_WA_ID}",
    )
    assert message.input_channel == "whatsapp"
    [call] = graph_api.calls
    assert call.status == 200
    assert call.path == f"/v19.0/{PHONE_NUMBER_ID}/messages"
    assert call.headers["Authorization"] == f"Bearer {whatsapp_credentials['access_token']}"
    assert call.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": PATIENT_WA_ID,
        "type": "text",
        "text": {"body": "You said: My back hurts"},
    }


def test_three_buttons_are_sent_as_reply_buttons(
    whatsapp_server: ChannelServer,
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
) -> None:
    """Up to three short buttons become interactive reply buttons, ids = payloads."""
    _say(whatsapp_server, whatsapp_credentials["app_secret"], "menu 3")

    [sent] = graph_api.sent
    interactive = sent["interactive"]
    assert sent["type"] == "interactive" and interactive["type"] == "button"
    assert interactive["body"] == {"text": "Where is the pain?"}
    assert [b["reply"] for b in interactive["action"]["buttons"]] == [
        {"id": b["payload"], "title": b["title"]} for b in BUTTONS[:3]
    ]


def test_five_buttons_are_sent_as_a_list(
    whatsapp_server: ChannelServer,
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
) -> None:
    """Four to ten buttons become a list message (WhatsApp allows three reply buttons)."""
    _say(whatsapp_server, whatsapp_credentials["app_secret"], "menu 5")

    [sent] = graph_api.sent
    interactive = sent["interactive"]
    assert interactive["type"] == "list"
    [section] = interactive["action"]["sections"]
    assert [(r["id"], r["title"]) for r in section["rows"]] == [
        (b["payload"], b["title"]) for b in BUTTONS[:5]
    ]
    assert len(interactive["action"]["button"]) <= 20


def test_twelve_buttons_are_sent_as_numbered_text(
    whatsapp_server: ChannelServer,
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
) -> None:
    """Beyond ten options WhatsApp has no widget: a numbered list, without payloads."""
    _say(whatsapp_server, whatsapp_credentials["app_secret"], "menu 12")

    [sent] = graph_api.sent
    assert sent["type"] == "text"
    body = sent["text"]["body"]
    assert body.startswith("How can we help?\n\n1. Sciatica\n2. Book a consultation\n3. Knee pain")
    assert body.endswith("12. Talk to our staff")
    assert "/" not in body, "payloads (intent names) are never shown to patients"


@pytest.mark.parametrize("reply", ["2", "2.", "option 2", " Book a  CONSULTATION "])
def test_typed_reply_to_numbered_options_resolves_to_the_payload(
    whatsapp_server: ChannelServer,
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
    agent: EchoAgent,
    reply: str,
) -> None:
    """Typing 2 (or the option's words) after the numbered list sends the second payload."""
    _say(whatsapp_server, whatsapp_credentials["app_secret"], "menu 12")
    _say(whatsapp_server, whatsapp_credentials["app_secret"], reply)

    assert agent.received[-1].text == "/book_consultation"
    assert graph_api.sent[-1]["text"]["body"] == "You said: /book_consultation"


def test_a_later_number_is_not_mistaken_for_a_choice(
    whatsapp_server: ChannelServer,
    whatsapp_credentials: dict[str, str],
    agent: EchoAgent,
) -> None:
    """Buttons answer only the next message; "2" later in the chat stays "2"."""
    secret = whatsapp_credentials["app_secret"]
    _say(whatsapp_server, secret, "menu 12")
    _say(whatsapp_server, secret, "something else")
    _say(whatsapp_server, secret, "2")

    assert [m.text for m in agent.received] == ["menu 12", "something else", "2"]


def test_button_reply_sends_the_button_payload(
    whatsapp_server: ChannelServer,
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
    agent: EchoAgent,
) -> None:
    """Tapping a reply button sends its id, the payload, to Rasa."""
    secret = whatsapp_credentials["app_secret"]
    _say(whatsapp_server, secret, "menu 3")
    reply = graph_api.sent[-1]["interactive"]["action"]["buttons"][0]["reply"]
    notification = button_reply_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, reply["id"], reply["title"])

    answer = WhatsAppGraphStandIn.deliver(whatsapp_server.url("/webhook"), notification, secret)

    assert answer.status_code == 200
    assert agent.received[-1].text == BUTTONS[0]["payload"]


def test_long_title_goes_to_a_list_row_and_its_reply_sends_the_payload(
    whatsapp_server: ChannelServer,
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
    agent: EchoAgent,
) -> None:
    """Over-long titles go to a list row (with the full title as description)."""
    secret = whatsapp_credentials["app_secret"]
    _say(whatsapp_server, secret, "menu long")
    [sent] = graph_api.sent
    row = sent["interactive"]["action"]["sections"][0]["rows"][0]
    assert sent["interactive"]["type"] == "list", "a 30-character title does not fit a button"
    assert row["description"] == LONG_TITLE
    assert row["id"] == LONG_PAYLOAD

    notification = list_reply_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, row["id"], row["title"])
    WhatsAppGraphStandIn.deliver(whatsapp_server.url("/webhook"), notification, secret)

    assert agent.received[-1].text == LONG_PAYLOAD


def test_payload_over_256_characters_round_trips_through_a_short_id(
    whatsapp_server: ChannelServer,
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
    agent: EchoAgent,
) -> None:
    """Button ids stop at 256 characters; longer payloads travel as short ids."""
    assert len(HUGE_PAYLOAD) > 256
    secret = whatsapp_credentials["app_secret"]
    _say(whatsapp_server, secret, "menu huge")
    [sent] = graph_api.sent
    reply = sent["interactive"]["action"]["buttons"][0]["reply"]
    assert len(reply["id"]) <= 256

    notification = button_reply_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, reply["id"], reply["title"])
    WhatsAppGraphStandIn.deliver(whatsapp_server.url("/webhook"), notification, secret)

    assert agent.received[-1].text == HUGE_PAYLOAD


def test_unknown_reply_id_falls_back_to_the_title(
    whatsapp_server: ChannelServer,
    whatsapp_credentials: dict[str, str],
    agent: EchoAgent,
) -> None:
    """After a restart the short-id map is empty; the button's title goes to NLU instead."""
    notification = button_reply_notification(
        PHONE_NUMBER_ID, PATIENT_WA_ID, "~forgottenshortid00000", "Book a consultation"
    )
    WhatsAppGraphStandIn.deliver(
        whatsapp_server.url("/webhook"),
        notification,
        whatsapp_credentials["app_secret"],
    )

    assert agent.received[-1].text == "Book a consultation"


@pytest.mark.parametrize(
    "signature",
    [None, "sha256=" + "0" * 64, "sha1=abc", "forged"],
    ids=["missing", "wrong-digest", "wrong-algorithm", "garbage"],
)
def test_unsigned_or_forged_notifications_are_refused(
    whatsapp_server: ChannelServer,
    graph_api: WhatsAppGraphStandIn,
    agent: EchoAgent,
    signature: str | None,
) -> None:
    """Anyone can POST to the webhook URL; only Meta can sign with the app secret."""
    notification = text_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, "menu 3")

    answer = WhatsAppGraphStandIn.deliver(
        whatsapp_server.url("/webhook"), notification, None, signature=signature
    )

    assert answer.status_code == 403
    assert agent.received == []
    assert graph_api.calls == []


def test_notification_signed_with_another_secret_is_refused(
    whatsapp_server: ChannelServer, graph_api: WhatsAppGraphStandIn, agent: EchoAgent
) -> None:
    """A valid-looking signature made with the wrong key is still a forgery."""
    answer = _say(whatsapp_server, "an-attackers-own-app-secret", "hello")

    assert answer.status_code == 403
    assert agent.received == []
    assert graph_api.calls == []


def test_status_callbacks_are_acknowledged_and_ignored(
    whatsapp_server: ChannelServer,
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
    agent: EchoAgent,
) -> None:
    """`statuses` (sent, delivered, read) arrive for every reply; they are not messages."""
    for status in ("sent", "delivered", "read"):
        started = time.monotonic()
        answer = WhatsAppGraphStandIn.deliver(
            whatsapp_server.url("/webhook"),
            status_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, status),
            whatsapp_credentials["app_secret"],
        )
        assert answer.status_code == 200
        assert time.monotonic() - started < 1.0
    assert agent.received == []
    assert graph_api.calls == []


def test_redelivered_message_is_processed_once(
    whatsapp_server: ChannelServer,
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
    agent: EchoAgent,
) -> None:
    """Meta redelivers notifications it thinks failed; the patient gets one reply."""
    notification = text_notification(PHONE_NUMBER_ID, PATIENT_WA_ID, "hello")
    url, secret = whatsapp_server.url("/webhook"), whatsapp_credentials["app_secret"]

    assert WhatsAppGraphStandIn.deliver(url, notification, secret).status_code == 200
    assert WhatsAppGraphStandIn.deliver(url, notification, secret).status_code == 200

    assert len(agent.received) == 1
    assert len(graph_api.sent) == 1


def test_notification_for_another_number_is_ignored(
    whatsapp_server: ChannelServer,
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
    agent: EchoAgent,
) -> None:
    """One Meta app can own several numbers; this connector answers for its own only."""
    notification = text_notification("999999999999999", PATIENT_WA_ID, "hello")

    answer = WhatsAppGraphStandIn.deliver(
        whatsapp_server.url("/webhook"),
        notification,
        whatsapp_credentials["app_secret"],
    )

    assert answer.status_code == 200
    assert agent.received == []


def test_text_only_mode_sends_numbered_text(
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
    agent: EchoAgent,
) -> None:
    """`interactive: "false"` (credentials values are strings) never sends widgets."""
    server = serve_whatsapp({**whatsapp_credentials, "interactive": "false"}, graph_api, agent)
    try:
        _say(server, whatsapp_credentials["app_secret"], "menu 3")
    finally:
        server.stop()

    [sent] = graph_api.sent
    assert sent["text"]["body"] == ("Where is the pain?\n\n1. Sciatica\n2. Book a consultation\n3. Knee pain")


def test_refused_access_token_is_logged_and_the_webhook_still_answers(
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
    agent: EchoAgent,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An expired token must not turn into 500s that make Meta redeliver for days."""
    caplog.set_level(logging.ERROR)
    credentials = {**whatsapp_credentials, "access_token": "EAAG-expired"}
    server = serve_whatsapp(credentials, graph_api, agent)
    try:
        answer = _say(server, whatsapp_credentials["app_secret"], "hello")
    finally:
        server.stop()

    assert answer.status_code == 200
    assert [c.status for c in graph_api.calls] == [401]
    assert "Invalid OAuth access token" in caplog.text
    assert "EAAG-expired" not in caplog.text


def test_layout_rules() -> None:
    """Which widget WhatsApp can show, without cutting titles or leaking payloads."""
    three, five = BUTTONS[:3], BUTTONS[:5]
    assert choose_layout("Pick", three) == "buttons"
    assert choose_layout("Pick", five) == "list"
    assert choose_layout("Pick", BUTTONS[:10]) == "list"
    assert choose_layout("Pick", BUTTONS[:11]) == "text"
    assert choose_layout("Pick", three, interactive=False) == "text"
    assert choose_layout("x" * 1025, three) == "text", "interactive bodies stop at 1024"
    duplicated = [*three, dict(three[0])]
    assert choose_layout("Pick", duplicated) == "text", "WhatsApp refuses duplicate buttons"
    assert choose_layout("Pick", [{"title": "t" * 73, "payload": "/x"}]) == "text"


@pytest.mark.parametrize("missing", ["access_token", "app_secret", "verify_token", "phone_number_id"])
def test_incomplete_credentials_are_refused(whatsapp_credentials: dict[str, str], missing: str) -> None:
    """Without the app secret there is no authentication, so the channel will not start."""
    with pytest.raises(RasaException, match=missing):
        WhatsAppCloudInput.from_credentials({**whatsapp_credentials, missing: ""})


def test_credentials_default_to_graph_v19(whatsapp_credentials: dict[str, str]) -> None:
    """Without `api_base_url`/`api_version`, messages go to graph.facebook.com/v19.0."""
    channel = WhatsAppCloudInput.from_credentials(whatsapp_credentials)
    assert isinstance(channel, WhatsAppCloudInput)
    assert channel.client.messages_url == (f"https://graph.facebook.com/v19.0/{PHONE_NUMBER_ID}/messages")


def test_malformed_signed_notification_is_acknowledged(
    whatsapp_server: ChannelServer,
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
    agent: EchoAgent,
) -> None:
    """A 500 would make Meta redeliver the notification for days."""
    notification = {"object": "whatsapp_business_account", "entry": ["oops"]}

    answer = WhatsAppGraphStandIn.deliver(
        whatsapp_server.url("/webhook"), notification, whatsapp_credentials["app_secret"]
    )

    assert answer.status_code == 200
    assert agent.received == []
    assert graph_api.calls == []
