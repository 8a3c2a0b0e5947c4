"""The REST channel (`POST /webhooks/rest/webhook`), strict about what it accepts.

Rasa 3.6's REST channel answers 500 to a JSON array, a scalar or an empty body, `200 []`
to a missing or non-string message, and records whatever `sender` the client names, so a
REST client could read and continue a WhatsApp or Telegram patient's conversation. This
one answers every malformed request with 400 and a JSON error, keeps REST conversations in
their own namespace (`rest:<sender>`, see `bot.channels.sender`), passes text through the
shared intake rules (`bot.channels.intake`), and needs `Authorization: Bearer
<REST_CHANNEL_TOKEN>` when that token is set. With `BOT_ENV=production` and no token it is
off (403): the website widget uses socket.io, and other integrations must authenticate.

A client that sends a `message_id` (1-64 letters, digits, `-` or `_`) may re-send the message
when it got no answer (a timeout, or a 502 from the proxy because the server answering it
was killed), to any server: it is answered once (`bot.channels.claims`, shared through
Redis with CHANNEL_CACHE_URL/REDIS_URL). A re-send of a message already answered gets
`200 []` with `X-Message-Status: duplicate`; one that another server is still answering
gets `409 {"error": "in_progress"}` with `Retry-After`; one whose server died before
answering is answered.
"""

from __future__ import annotations

import hmac
import json
import logging
from asyncio import CancelledError
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.claims import ANSWERED_TTL_SECONDS, MESSAGE_ID, RETRY_AFTER_SECONDS, Claim, MessageClaims
from bot.channels.intake import BadMessage, deliver, error_response, tracker_store_of
from bot.channels.limits import LimitedBlueprint
from bot.channels.sender import InvalidSenderId, rest_sender_id
from bot.channels.store import ChannelCache, channel_store
from bot.settings import get_settings

logger = logging.getLogger(__name__)

CHANNEL_NAME = "rest"


def parse_body(body: bytes) -> dict[str, Any]:
    """The request's JSON object, or `BadMessage` saying what is wrong with it."""
    if not body or not body.strip():
        raise BadMessage("empty_body", 'send a JSON object: {"sender": "...", "message": "..."}')
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadMessage("invalid_json", "the body is not valid UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise BadMessage("invalid_json", 'the body must be a JSON object: {"sender": "...", "message": "..."}')
    return data


class RestInput(InputChannel):
    """REST channel; see the module docstring. Mounted as `rest` like Rasa's own."""

    @classmethod
    def name(cls) -> str:
        """Same name and URL as Rasa's REST channel."""
        return CHANNEL_NAME

    def _refusal(self, request: Request) -> HTTPResponse | None:
        """403 when the channel is off, 401 without the right token, else None."""
        settings = get_settings()
        token = settings.rest_channel_token
        if not token:
            if settings.is_production:
                return error_response(
                    "rest_channel_disabled",
                    "the REST channel is off in production unless REST_CHANNEL_TOKEN is set",
                    403,
                )
            return None
        supplied = request.headers.get("Authorization", "")
        expected = f"Bearer {token}"
        if not hmac.compare_digest(supplied.encode("utf-8"), expected.encode("utf-8")):
            return error_response("unauthorized", "send Authorization: Bearer <REST_CHANNEL_TOKEN>", 401)
        return None

    @staticmethod
    def message_of(data: dict[str, Any]) -> tuple[str, object, dict[str, Any]]:
        """(conversation id, message, metadata) from a request body, or `BadMessage`."""
        if "message" not in data:
            raise BadMessage("missing_message", "the body needs a string field 'message'")
        if "sender" not in data:
            raise BadMessage("missing_sender", "the body needs a string field 'sender'")
        try:
            sender_id = rest_sender_id(data["sender"])
        except InvalidSenderId as error:
            raise BadMessage("invalid_sender", str(error)) from None
        metadata = data.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise BadMessage("invalid_metadata", "metadata must be a JSON object")
        if not isinstance(data["message"], str):
            raise BadMessage("invalid_message", "message must be a string")
        message_id = data.get("message_id")
        if message_id is not None and not (isinstance(message_id, str) and MESSAGE_ID.match(message_id)):
            raise BadMessage("invalid_message_id", "message_id must be 1-64 letters, digits, '-' or '_'")
        return sender_id, data["message"], dict(metadata or {})

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> LimitedBlueprint:
        """`GET /` health and `POST /webhook`."""
        rest_webhook = LimitedBlueprint("clinic_rest_webhook", __name__)
        claims = MessageClaims(ChannelCache(channel_store(), "rest:message-ids", ANSWERED_TTL_SECONDS, ""))

        @rest_webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return self._refusal(request) or response.json({"status": "ok"})

        @rest_webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal
            collector = CollectingOutputChannel()
            try:
                data = parse_body(request.body)
                sender_id, text, metadata = self.message_of(data)
                async with claims.for_message(sender_id, data.get("message_id")) as claim:
                    if claim is Claim.DUPLICATE:
                        return response.json([], headers={"X-Message-Status": "duplicate"})
                    if claim is Claim.IN_PROGRESS:
                        refused = error_response(
                            "in_progress", "this message is being answered; send it again later", 409
                        )
                        refused.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
                        return refused
                    await deliver(
                        on_new_message,
                        text,
                        collector,
                        sender_id,
                        self.name(),
                        metadata,
                        tracker_store=tracker_store_of(request.app),
                    )
            except BadMessage as error:
                return error_response(error.code, error.message)
            except CancelledError:
                logger.error("Handling a REST message timed out")
            except Exception:
                logger.exception("Handling a REST message failed")
            return response.json(collector.messages)

        return rest_webhook
