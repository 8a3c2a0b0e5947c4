"""Fixtures for the channel tests: stand-ins, an echo agent and each connector served by Sanic.

See `harness.py` for how the connectors are mounted (the way `rasa run` mounts them).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.channels.all_channels import AllChannels, serve_all_channels
from tests.channels.harness import (
    PHONE_NUMBER_ID,
    ChannelServer,
    EchoAgent,
    make_telegram_channel,
    serve_whatsapp,
)
from tests.standins._server import free_port
from tests.standins.telegram_api import TelegramBotApiStandIn
from tests.standins.whatsapp_graph import WhatsAppGraphStandIn


@pytest.fixture
def agent() -> EchoAgent:
    """A fresh echo agent."""
    return EchoAgent()


# -- Telegram ------------------------------------------------------------------------------


@pytest.fixture
def telegram_token() -> str:
    """A bot token shaped like BotFather's."""
    return f"{secrets.randbelow(10**9) + 10**9}:{secrets.token_urlsafe(26)}"


@pytest.fixture
def telegram_secret() -> str:
    """The webhook secret token (allowed characters only)."""
    return secrets.token_urlsafe(32)


@pytest.fixture
def telegram_api(telegram_token: str) -> Iterator[TelegramBotApiStandIn]:
    """The Bot API stand-in, serving the test bot."""
    stand_in = TelegramBotApiStandIn(telegram_token, username="clinic_test_bot")
    stand_in.start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def telegram_server(
    telegram_api: TelegramBotApiStandIn,
    telegram_token: str,
    telegram_secret: str,
    agent: EchoAgent,
) -> Iterator[ChannelServer]:
    """The Telegram connector served by Sanic, with its webhook registered at the stand-in."""
    port = free_port()
    channel = make_telegram_channel(telegram_token, telegram_secret, telegram_api.base_url, port)
    server = ChannelServer(channel, agent, port).start()
    telegram_api.wait_for("setWebhook")
    yield server
    server.stop()


# -- WhatsApp ------------------------------------------------------------------------------


@pytest.fixture
def whatsapp_credentials() -> dict[str, str]:
    """Fresh secrets for the WhatsApp app."""
    return {
        "access_token": "EAAG" + secrets.token_urlsafe(48),
        "app_secret": secrets.token_hex(16),
        "verify_token": secrets.token_urlsafe(24),
        "phone_number_id": PHONE_NUMBER_ID,
    }


@pytest.fixture
def graph_api(whatsapp_credentials: dict[str, str]) -> Iterator[WhatsAppGraphStandIn]:
    """The Graph API stand-in for the clinic's number."""
    stand_in = WhatsAppGraphStandIn(
        whatsapp_credentials["access_token"], whatsapp_credentials["phone_number_id"]
    )
    stand_in.start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def whatsapp_server(
    whatsapp_credentials: dict[str, str],
    graph_api: WhatsAppGraphStandIn,
    agent: EchoAgent,
) -> Iterator[ChannelServer]:
    """The WhatsApp connector served by Sanic."""
    server = serve_whatsapp(whatsapp_credentials, graph_api, agent)
    yield server
    server.stop()


# -- All channels in one app ----------------------------------------------------------------


@pytest.fixture
def channels(agent: EchoAgent) -> Iterator[AllChannels]:
    """Every connector mounted in one app, as `rasa run` mounts them (see all_channels.py)."""
    yield from serve_all_channels(agent)
