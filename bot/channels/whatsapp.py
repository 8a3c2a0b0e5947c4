"""WhatsApp Business Cloud API connector (Meta's Graph API), which Rasa 3.6 does not ship.

Patients reach the clinic on WhatsApp far more than on any other messenger, and Rasa's only
WhatsApp route goes through Twilio with its blocking client and raw `1: Title (/payload)`
buttons. This connector verifies Meta's webhook handshake, checks `X-Hub-Signature-256`
(HMAC-SHA256 of the raw body with the app secret) in constant time before reading anything,
turns text and interactive replies into Rasa messages, ignores delivery statuses, and sends
replies with aiohttp: up to 3 buttons as reply buttons, up to 10 as a list, more as a numbered
text that a typed "2" or the option's words resolve back to the payload.

The committed credentials.yml leaves this channel's section empty, and the channel reads
the same variables from settings (bot/channels/enabled.py); spelled out, the section is
(credentials.yml)::

    bot.channels.whatsapp.WhatsAppCloudInput:
      access_token: ${WHATSAPP_ACCESS_TOKEN}
      app_secret: ${WHATSAPP_APP_SECRET}
      verify_token: ${WHATSAPP_VERIFY_TOKEN}
      phone_number_id: ${WHATSAPP_PHONE_NUMBER_ID}
      api_base_url: ${WHATSAPP_API_BASE_URL}  # https://graph.facebook.com
      api_version: ${WHATSAPP_API_VERSION}    # v19.0
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.buttons import (
    Button,
    ButtonMemory,
    ShortIds,
    button_payload,
    button_title,
    numbered_message,
    resolve_reply,
)
from bot.channels.enabled import SwitchedOff, channel_credentials
from bot.channels.intake import BadMessage, deliver, error_response, tracker_store_of
from bot.channels.limits import LimitedBlueprint
from bot.channels.markers import messaging_text
from bot.channels.messaging import (
    DEFAULT_RETRY,
    ChannelMemory,
    LoopSession,
    RetryPolicy,
    Unreachable,
    check_secret_strength,
    same_secret,
)
from bot.channels.sender import PREFIXES, InvalidSenderId, sender_id

logger = logging.getLogger(__name__)

CHANNEL_NAME = "whatsapp"
SENDER_PREFIX = PREFIXES[CHANNEL_NAME]
SIGNATURE_HEADER = "X-Hub-Signature-256"
DEFAULT_API_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v19.0"
TEXT_MAX_CHARS = 4096
INTERACTIVE_BODY_MAX_CHARS = 1024
REPLY_BUTTONS_MAX = 3
REPLY_TITLE_MAX_CHARS = 20
REPLY_ID_MAX_CHARS = 256
LIST_ROWS_MAX = 10
LIST_TITLE_MAX_CHARS = 24
LIST_DESCRIPTION_MAX_CHARS = 72
LIST_ID_MAX_CHARS = 200
LIST_BUTTON_MAX_CHARS = 20
DEFAULT_BUTTON_PROMPT = "Please choose an option:"
_TRUE = {"1", "true", "yes", "on"}


class GraphApiError(Exception):
    """The Graph API was unreachable or refused a message."""

    def __init__(self, status: int | None, message: str, code: int | None = None) -> None:
        """Keep Graph's error message and code for the log."""
        super().__init__(f"HTTP {status}: {message} (code {code})")
        self.status = status
        self.message = message
        self.code = code


class GraphClient:
    """Sends messages for one phone number; its aiohttp session lives in the running loop."""

    def __init__(
        self,
        access_token: str,
        phone_number_id: str,
        api_base_url: str = DEFAULT_API_BASE_URL,
        api_version: str = DEFAULT_API_VERSION,
        timeout_seconds: float = 15.0,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        """Create a client; no I/O happens until the first send.

        Args:
            access_token: System-user access token of the WhatsApp Business app.
            phone_number_id: Id of the sending phone number (not the number itself).
            api_base_url: https://graph.facebook.com (or a local stand-in in tests).
            api_version: Graph API version, e.g. `v19.0`.
            timeout_seconds: Total time allowed for one try.
            retry: How often a send is tried (connection errors, 429 and 5xx only).
        """
        self._token = access_token
        base_url, version = api_base_url.rstrip("/"), api_version.strip("/")
        self.messages_url = f"{base_url}/{version}/{phone_number_id}/messages"
        self.http = LoopSession(timeout_seconds, retry)

    async def send(self, message: Mapping[str, Any]) -> str | None:
        """POST one message object (retried by the shared layer); return its `wamid`.

        Raises:
            GraphApiError: Unreachable, or Graph answered an error (after the retries).
        """
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            answer = await self.http.post(self.messages_url, json=dict(message), headers=headers)
        except Unreachable as error:
            raise GraphApiError(None, f"Graph API unreachable ({error})") from None
        status, body = answer.status, answer.body
        if status >= 400 or not isinstance(body, dict):
            error_body = body.get("error") if isinstance(body, dict) else None
            error_body = error_body if isinstance(error_body, dict) else {}
            details = (error_body.get("error_data") or {}).get("details")
            text = str(error_body.get("message") or "no error message")
            raise GraphApiError(
                status,
                f"{text}: {details}" if details else text,
                error_body.get("code"),
            )
        messages = body.get("messages") or [{}]
        return messages[0].get("id") if isinstance(messages[0], dict) else None

    async def close(self) -> None:
        """Close the session if it belongs to the running loop."""
        await self.http.close()


def sender_id_for(wa_id: str) -> str:
    """Conversation id for a WhatsApp user: `whatsapp:<wa_id>`, checked against the sender rule.

    Raises:
        InvalidSenderId: The wa id breaks the rule.
    """
    return sender_id(CHANNEL_NAME, wa_id)


def wa_id_from(recipient_id: str) -> str:
    """WhatsApp id from `whatsapp:<wa_id>` (bare ids pass through)."""
    text = str(recipient_id)
    return text.removeprefix(SENDER_PREFIX)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def choose_layout(text: str, buttons: Sequence[Button], interactive: bool = True) -> str:
    """Pick how buttons can be shown without losing anything WhatsApp would cut or refuse.

    Args:
        text: The message body sent with the buttons.
        buttons: Rasa buttons.
        interactive: False forces the numbered text (e.g. for a text-only number).

    Returns:
        `"buttons"` (reply buttons), `"list"` (list message) or `"text"` (numbered text).
    """
    titles = [button_title(b) for b in buttons]
    if not interactive or not buttons or len(buttons) > LIST_ROWS_MAX:
        return "text"
    if len((text or "").strip()) > INTERACTIVE_BODY_MAX_CHARS or not all(titles):
        return "text"
    payloads = {button_payload(b) for b in buttons}
    if len(set(titles)) != len(titles) or len(payloads) != len(buttons):
        return "text"  # WhatsApp refuses duplicate buttons
    if len(buttons) <= REPLY_BUTTONS_MAX and all(len(t) <= REPLY_TITLE_MAX_CHARS for t in titles):
        return "buttons"
    if all(len(t) <= LIST_DESCRIPTION_MAX_CHARS for t in titles):
        return "list"
    return "text"


class WhatsAppCloudOutput(OutputChannel):
    """Sends Rasa's responses as WhatsApp text, reply buttons, lists or images."""

    @classmethod
    def name(cls) -> str:
        """Same name as the input channel, so Rasa can route proactive messages here."""
        return CHANNEL_NAME

    def __init__(
        self,
        client: GraphClient,
        short_ids: ShortIds,
        memory: ButtonMemory,
        interactive: bool = True,
        list_button_label: str = "Choose an option",
    ) -> None:
        """Share the input channel's client, button-id map and last-buttons memory."""
        self.client = client
        self._short_ids = short_ids
        self._memory = memory
        self.interactive = interactive
        self.list_button_label = _shorten(list_button_label, LIST_BUTTON_MAX_CHARS)

    async def _send(self, recipient_id: str, content: Mapping[str, Any]) -> str | None:
        message = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": wa_id_from(recipient_id),
            **content,
        }
        try:
            return await self.client.send(message)
        except GraphApiError as error:
            logger.error("WhatsApp send failed: %s", error)
            return None

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Send text, split at WhatsApp's 4096-character limit (staff replies signed)."""
        text = messaging_text((text or "").strip(), kwargs)
        for start in range(0, len(text), TEXT_MAX_CHARS):
            body = text[start : start + TEXT_MAX_CHARS]
            await self._send(recipient_id, {"type": "text", "text": {"body": body}})

    async def interactive_content(self, text: str, buttons: Sequence[Button], layout: str) -> dict[str, Any]:
        """Interactive message content for `layout` `"buttons"` or `"list"`."""
        body = {"text": (text or "").strip() or DEFAULT_BUTTON_PROMPT}
        limit = REPLY_ID_MAX_CHARS if layout == "buttons" else LIST_ID_MAX_CHARS
        ids = await self._short_ids.encode_all([button_payload(b) for b in buttons], limit)
        if layout == "buttons":
            return {
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "body": body,
                    "action": {
                        "buttons": [
                            {
                                "type": "reply",
                                "reply": {
                                    "id": short_id,
                                    "title": button_title(b),
                                },
                            }
                            for b, short_id in zip(buttons, ids, strict=True)
                        ]
                    },
                },
            }
        rows = []
        for b, short_id in zip(buttons, ids, strict=True):
            title = button_title(b)
            row = {
                "id": short_id,
                "title": _shorten(title, LIST_TITLE_MAX_CHARS),
            }
            if len(title) > LIST_TITLE_MAX_CHARS:
                row["description"] = title
            rows.append(row)
        return {
            "type": "interactive",
            "interactive": {
                "type": "list",
                "body": body,
                "action": {
                    "button": self.list_button_label,
                    "sections": [{"rows": rows}],
                },
            },
        }

    async def send_text_with_buttons(
        self,
        recipient_id: str,
        text: str,
        buttons: list[dict[str, Any]],
        **kwargs: Any,
    ) -> None:
        """Send buttons in the richest form WhatsApp accepts and remember them.

        Remembering them lets a typed "2" or "book a consultation" pick a button.
        """
        await self._memory.remember(sender_id_for(wa_id_from(recipient_id)), buttons)
        layout = choose_layout(text, buttons, self.interactive)
        if layout == "text":
            await self.send_text_message(recipient_id, numbered_message(text, buttons))
            return
        await self._send(recipient_id, await self.interactive_content(text, buttons, layout))

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        """Send an image by link."""
        await self._send(recipient_id, {"type": "image", "image": {"link": image}})

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        """Send a custom payload as a Cloud API message object (e.g. a template)."""
        content = {k: v for k, v in json_message.items() if k not in {"to", "messaging_product"}}
        await self._send(recipient_id, content)


def signature_for(body: bytes, app_secret: str) -> str:
    """`X-Hub-Signature-256` value Meta sends: `sha256=` + hex HMAC of the raw body."""
    digest = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _as_bool(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def _check_secret(name: str, value: str) -> None:
    """Refuse missing secrets always, and weak ones in production."""
    if not value:
        raise RasaException(f"WhatsApp {name} is missing")
    check_secret_strength("WhatsApp", name, value)


class WhatsAppCloudInput(InputChannel):
    """Receives WhatsApp Cloud API webhooks at `/webhooks/whatsapp/webhook`.

    `GET /webhook` answers Meta's verification handshake; `POST /webhook` takes signed
    notifications; `GET /` is a health check.
    """

    @classmethod
    def name(cls) -> str:
        """Channel name: URL prefix, `input_channel` of messages and output routing."""
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Build the channel from its credentials.yml section, else from settings.

        An empty section takes the credentials from settings; without them the channel
        is off (`SwitchedOff`, one log line; see bot.channels.enabled).
        """
        credentials = channel_credentials(CHANNEL_NAME, credentials)
        if credentials is None:
            return SwitchedOff(CHANNEL_NAME)
        return cls(
            access_token=str(credentials.get("access_token") or ""),
            app_secret=str(credentials.get("app_secret") or ""),
            verify_token=str(credentials.get("verify_token") or ""),
            phone_number_id=str(credentials.get("phone_number_id") or ""),
            api_base_url=str(credentials.get("api_base_url") or "") or DEFAULT_API_BASE_URL,
            api_version=str(credentials.get("api_version") or "") or DEFAULT_API_VERSION,
            interactive=_as_bool(credentials.get("interactive"), True),
        )

    def __init__(
        self,
        access_token: str,
        app_secret: str,
        verify_token: str,
        phone_number_id: str,
        api_base_url: str = DEFAULT_API_BASE_URL,
        api_version: str = DEFAULT_API_VERSION,
        interactive: bool = True,
    ) -> None:
        """Check the configuration; no network I/O happens here.

        Args:
            access_token: Bearer token for the Graph API.
            app_secret: The Meta app's secret; signs every webhook body.
            verify_token: Token you typed into Meta's webhook settings.
            phone_number_id: Id of the sending phone number.
            api_base_url: Graph API base URL.
            api_version: Graph API version.
            interactive: False sends every set of buttons as numbered text.

        Raises:
            RasaException: A credential is missing or weak in production.
        """
        if not access_token:
            raise RasaException("WhatsApp access_token is missing")
        if not phone_number_id:
            raise RasaException("WhatsApp phone_number_id is missing")
        _check_secret("app_secret", app_secret)
        _check_secret("verify_token", verify_token)
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.phone_number_id = phone_number_id
        self.interactive = interactive
        self.client = GraphClient(access_token, phone_number_id, api_base_url, api_version)
        self.memory = ChannelMemory.for_channel(CHANNEL_NAME, app_secret)
        self._short_ids = self.memory.short_ids
        self._memory = self.memory.buttons
        self._replays = self.memory.replays

    def get_output_channel(self) -> WhatsAppCloudOutput:
        """Output channel sharing this channel's client; cheap, no I/O."""
        return WhatsAppCloudOutput(self.client, self._short_ids, self._memory, interactive=self.interactive)

    def is_signed(self, request: Request) -> bool:
        """Constant-time check of `X-Hub-Signature-256` over the raw body."""
        supplied = request.headers.get(SIGNATURE_HEADER, "")
        expected = signature_for(request.body or b"", self.app_secret)
        return same_secret(supplied, expected)

    async def _text_of(self, message: Mapping[str, Any], sender_id: str) -> tuple[str, bool] | None:
        """(text, trusted) Rasa should receive for one message, None for types it cannot handle.

        `trusted` marks a payload this channel vouches for: a tapped button or list row, or a
        typed reply resolved to one of the buttons just sent.
        """
        kind = message.get("type")
        if kind == "text":
            body = str((message.get("text") or {}).get("body") or "").strip()
            if not body:
                return None
            resolved = resolve_reply(body, await self._memory.take(sender_id))
            return (resolved, True) if resolved else (body, False)
        if kind == "interactive":
            interactive = message.get("interactive") or {}
            reply = interactive.get(str(interactive.get("type"))) or {}
            await self._memory.take(sender_id)
            if not isinstance(reply, dict):
                return None
            payload = await self._short_ids.decode(str(reply.get("id") or ""))
            text = payload or str(reply.get("title") or "").strip()
            return (text, True) if text else None
        if kind == "button":  # quick-reply button of a template message
            button = message.get("button") or {}
            await self._memory.take(sender_id)
            text = str(button.get("payload") or button.get("text") or "").strip()
            return (text, True) if text else None
        logger.info("Ignoring WhatsApp message of type %s", kind)
        return None

    async def _messages(self, notification: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any], bool]]:
        """(sender id, text, metadata, trusted) for each new message in a notification.

        Raises:
            InvalidSenderId: A sender's wa id breaks the sender rule.
        """
        found: list[tuple[str, str, dict[str, Any], bool]] = []
        if notification.get("object") != "whatsapp_business_account":
            return found
        for entry in notification.get("entry") or []:
            for change in (entry or {}).get("changes") or []:
                value = (change or {}).get("value") or {}
                if change.get("field") != "messages" or not isinstance(value, dict):
                    continue
                number_id = (value.get("metadata") or {}).get("phone_number_id")
                if number_id and str(number_id) != self.phone_number_id:
                    logger.warning("Ignoring WhatsApp notification for another phone number")
                    continue
                for status in value.get("statuses") or []:
                    if isinstance(status, dict) and status.get("status") == "failed":
                        logger.warning("WhatsApp message not delivered: %s", status.get("errors"))
                for message in value.get("messages") or []:
                    if not isinstance(message, dict) or not message.get("from"):
                        continue
                    message_id = str(message.get("id") or "")
                    conversation = sender_id_for(str(message["from"]))
                    inbound = await self._text_of(message, conversation)
                    if inbound:
                        metadata = {
                            "whatsapp": {
                                "message_id": message_id,
                                "timestamp": message.get("timestamp"),
                                "phone_number_id": number_id,
                            }
                        }
                        found.append((conversation, inbound[0], metadata, inbound[1]))
        return found

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Routes for Meta's webhook: verification handshake and signed notifications."""
        whatsapp_webhook = LimitedBlueprint("whatsapp_cloud_webhook", __name__)

        @whatsapp_webhook.listener("before_server_stop")
        async def stop(_: Any, __: asyncio.AbstractEventLoop) -> None:
            await self.client.close()
            await self.memory.close()

        @whatsapp_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @whatsapp_webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            mode = request.args.get("hub.mode", "")
            token = request.args.get("hub.verify_token", "")
            challenge = request.args.get("hub.challenge", "")
            if mode == "subscribe" and same_secret(token, self.verify_token):
                return response.text(challenge)
            logger.warning("Rejected a WhatsApp webhook verification with a wrong token")
            return response.text("Forbidden", status=403)

        @whatsapp_webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self.is_signed(request):
                logger.warning("Rejected a WhatsApp notification with a bad signature")
                return response.json({"ok": False}, status=403)
            try:
                notification = json.loads(request.body or b"")
            except (ValueError, RecursionError):
                notification = None
            if not isinstance(notification, dict):
                return error_response("invalid_json", "the body must be a JSON object (a webhook notification)")
            try:
                messages = await self._messages(notification)
            except InvalidSenderId as error:
                return error_response("invalid_sender", str(error))
            except (AttributeError, TypeError, ValueError) as error:
                # Signed but not shaped as documented: acknowledge, or Meta resends it.
                # One line, no traceback: hostile input must not flood the log.
                logger.warning("Ignoring a malformed WhatsApp notification: %s: %s", type(error).__name__, error)
                messages = []
            out_channel = self.get_output_channel()
            tracker_store = tracker_store_of(request.app)
            for conversation, text, metadata, trusted in messages:
                sent = metadata["whatsapp"]
                if self._replays.is_too_old(sent["timestamp"]):
                    logger.warning("Ignoring a WhatsApp message older than the replay window")
                    continue
                if sent["message_id"] and not await self._replays.first_time(sent["message_id"]):
                    continue
                try:
                    await deliver(
                        on_new_message,
                        text,
                        out_channel,
                        conversation,
                        self.name(),
                        metadata,
                        tracker_store=tracker_store,
                        trusted=trusted,
                    )
                except BadMessage:
                    logger.warning("Ignoring a WhatsApp message that is not text")
                except Exception:
                    # Answer 200 anyway: Meta would redeliver the whole batch for days.
                    logger.exception("Handling a WhatsApp message failed")
            return response.json({"ok": True})

        return whatsapp_webhook
