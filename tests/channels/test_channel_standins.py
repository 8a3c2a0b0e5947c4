"""The stand-ins refuse what the real APIs refuse, so a green channel test means something."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.standins.telegram_api import TelegramBotApiStandIn
from tests.standins.whatsapp_graph import WhatsAppGraphStandIn

TOKEN = "123456:standin-token"
GRAPH_TOKEN = "EAAG-standin-token"
NUMBER_ID = "106540352242922"


@pytest.fixture(scope="module")
def telegram() -> Iterator[TelegramBotApiStandIn]:
    """One Bot API stand-in for this module."""
    stand_in = TelegramBotApiStandIn(TOKEN)
    stand_in.start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def graph() -> Iterator[WhatsAppGraphStandIn]:
    """One Graph API stand-in for this module."""
    stand_in = WhatsAppGraphStandIn(GRAPH_TOKEN, NUMBER_ID)
    stand_in.start()
    yield stand_in
    stand_in.stop()


def _bot(
    stand_in: TelegramBotApiStandIn, method: str, token: str = TOKEN, **params: object
) -> requests.Response:
    return requests.post(f"{stand_in.base_url}/bot{token}/{method}", json=params, timeout=5)


def test_telegram_answers_with_ok_and_result(telegram: TelegramBotApiStandIn) -> None:
    """`{"ok": true, "result": ...}` as api.telegram.org answers."""
    me = _bot(telegram, "getMe").json()
    assert me["ok"] is True and me["result"]["is_bot"] is True
    sent = _bot(telegram, "sendMessage", chat_id=42, text="hi").json()
    assert sent["result"]["chat"]["id"] == 42 and sent["result"]["text"] == "hi"


def test_telegram_accepts_form_encoded_parameters(
    telegram: TelegramBotApiStandIn,
) -> None:
    """The Bot API takes form fields too, with JSON-serialised `reply_markup`."""
    answer = requests.post(
        f"{telegram.base_url}/bot{TOKEN}/sendMessage",
        data={
            "chat_id": "42",
            "text": "hi",
            "reply_markup": '{"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}',
        },
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.json()["result"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "A"


def test_telegram_refuses_a_wrong_token(telegram: TelegramBotApiStandIn) -> None:
    """401 with Telegram's exact body."""
    answer = _bot(telegram, "getMe", token="123456:wrong")
    assert answer.status_code == 401
    assert answer.json() == {
        "ok": False,
        "error_code": 401,
        "description": "Unauthorized",
    }


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"chat_id": 42, "text": ""}, "message text is empty"),
        ({"chat_id": 42, "text": "x" * 4097}, "message is too long"),
        (
            {
                "chat_id": 42,
                "text": "x",
                "reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": "d" * 65}]]},
            },
            "BUTTON_DATA_INVALID",
        ),
    ],
)
def test_telegram_refuses_what_telegram_refuses(
    telegram: TelegramBotApiStandIn, params: dict, description: str
) -> None:
    """400 for empty or long text and callback_data over 64 bytes."""
    answer = _bot(telegram, "sendMessage", **params)
    assert answer.status_code == 400
    assert description in answer.json()["description"]


def test_telegram_refuses_a_bad_secret_token(telegram: TelegramBotApiStandIn) -> None:
    """The `setWebhook` method checks the secret token's alphabet."""
    answer = _bot(
        telegram,
        "setWebhook",
        url="https://example.org/hook",
        secret_token="no spaces!",
    )
    assert answer.status_code == 400


def _graph(stand_in: WhatsAppGraphStandIn, body: dict, token: str = GRAPH_TOKEN) -> requests.Response:
    return requests.post(
        f"{stand_in.base_url}/v19.0/{NUMBER_ID}/messages",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )


def _buttons(*titles: str) -> dict:
    return {
        "messaging_product": "whatsapp",
        "to": "447700900123",
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Pick"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": f"id{n}", "title": t}} for n, t in enumerate(titles)
                ]
            },
        },
    }


def test_graph_accepts_a_text_message(graph: WhatsAppGraphStandIn) -> None:
    """Success body as the Cloud API sends it."""
    answer = _graph(
        graph,
        {
            "messaging_product": "whatsapp",
            "to": "447700900123",
            "type": "text",
            "text": {"body": "hi"},
        },
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "447700900123", "wa_id": "447700900123"}]
    assert body["messages"][0]["id"].startswith("wamid.")


def test_graph_refuses_a_bad_bearer_token(graph: WhatsAppGraphStandIn) -> None:
    """401, OAuthException code 190."""
    answer = _graph(graph, _buttons("A"), token="EAAG-wrong")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == 190


@pytest.mark.parametrize(
    ("titles", "details"),
    [
        (("A", "B", "C", "D"), "Number of buttons"),
        (("Twenty-one characters",), "Button title length"),
        (("Same", "Same"), "Duplicate buttons"),
    ],
)
def test_graph_refuses_malformed_interactive_messages(
    graph: WhatsAppGraphStandIn, titles: tuple[str, ...], details: str
) -> None:
    """400 with code 131009 and Meta's details, e.g. for a title over 20 characters."""
    answer = _graph(graph, _buttons(*titles))
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == 131009
    assert details in error["error_data"]["details"]


def test_graph_refuses_more_than_ten_list_rows(graph: WhatsAppGraphStandIn) -> None:
    """Lists hold at most ten rows in total."""
    rows = [{"id": f"r{n}", "title": f"Row {n}"} for n in range(11)]
    body = {
        "messaging_product": "whatsapp",
        "to": "447700900123",
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": "Pick"},
            "action": {"button": "Options", "sections": [{"rows": rows}]},
        },
    }
    answer = _graph(graph, body)
    assert answer.status_code == 400
    assert "row count" in answer.json()["error"]["error_data"]["details"]
