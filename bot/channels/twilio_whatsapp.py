"""WhatsApp through Twilio, with signed webhooks, non-blocking sends and readable buttons.

Rasa 3.6.21's Twilio channel accepts any POST (no `X-Twilio-Signature` check), sends with
Twilio's blocking HTTP client inside Sanic's event loop, and prints buttons as
`1: Title (/payload)`. This subclass verifies the signature with Twilio's own
`RequestValidator`, sends through the REST API with aiohttp, shows buttons as a numbered
list and turns a typed "2" or the option's words back into the button's payload.

The committed credentials.yml leaves this channel's section empty, and the channel reads
the same variables from settings (bot/channels/enabled.py); spelled out, the section is
(credentials.yml)::

    bot.channels.twilio_whatsapp.TwilioWhatsAppInput:
      account_sid: ${TWILIO_ACCOUNT_SID}
      auth_token: ${TWILIO_AUTH_TOKEN}
      twilio_number: ${TWILIO_WHATSAPP_NUMBER}  # whatsapp:+14155238886
      webhook_url: ${TWILIO_WEBHOOK_URL}  # https://<host>/webhooks/twilio_whatsapp/webhook
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.twilio import TwilioInput
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from twilio.request_validator import RequestValidator

from bot.channels.buttons import ButtonMemory, numbered_message, resolve_reply
from bot.channels.enabled import SwitchedOff, channel_credentials
from bot.channels.intake import BadMessage, deliver, error_response, tracker_store_of
from bot.channels.limits import LimitedBlueprint
from bot.channels.markers import messaging_text
from bot.channels.messaging import DEFAULT_RETRY, ChannelMemory, LoopSession, RetryPolicy, Unreachable
from bot.channels.sender import PREFIXES, InvalidSenderId, sender_id

logger = logging.getLogger(__name__)

CHANNEL_NAME = "twilio_whatsapp"
SIGNATURE_HEADER = "X-Twilio-Signature"
DEFAULT_API_BASE_URL = "https://api.twilio.com"
BODY_MAX_CHARS = 1600
WHATSAPP_PREFIX = "whatsapp:"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class TwilioApiError(Exception):
    """Twilio's REST API was unreachable or refused a message."""


class TwilioWhatsAppOutput(OutputChannel):
    """Sends replies with Twilio's Messages API over aiohttp (never blocking the loop)."""

    @classmethod
    def name(cls) -> str:
        """Same name as the input channel, so Rasa can route proactive messages here."""
        return CHANNEL_NAME

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        twilio_number: str,
        memory: ButtonMemory,
        api_base_url: str = DEFAULT_API_BASE_URL,
        timeout_seconds: float = 15.0,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        """Prepare a sender; the aiohttp session is made in the running loop on first use."""
        self.twilio_number = _whatsapp_address(twilio_number)
        base_url = api_base_url.rstrip("/")
        self.messages_url = f"{base_url}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = aiohttp.BasicAuth(account_sid, auth_token)
        self.http = LoopSession(timeout_seconds, retry)
        self._memory = memory

    async def close(self) -> None:
        """Close the session if it belongs to the running loop."""
        await self.http.close()

    async def _create(self, fields: Mapping[str, str]) -> str | None:
        """POST one message (retried by the shared layer); its SID, or None after logging why not."""
        data = {"From": self.twilio_number, **fields}
        try:
            answer = await self.http.post(self.messages_url, data=data, auth=self._auth)
        except Unreachable as error:
            logger.error("Twilio send failed: %s", error)
            return None
        status, body = answer.status, answer.body
        if status >= 400 or not isinstance(body, dict):
            detail = body.get("message") if isinstance(body, dict) else status
            code = body.get("code") if isinstance(body, dict) else None
            logger.error("Twilio refused a message: %s (code %s)", detail, code)
            return None
        return str(body.get("sid") or "") or None

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Send text, split at Twilio's 1600-character limit (staff replies signed)."""
        text = messaging_text((text or "").strip(), kwargs)
        to = _whatsapp_address(recipient_id)
        for start in range(0, len(text), BODY_MAX_CHARS):
            await self._create({"To": to, "Body": text[start : start + BODY_MAX_CHARS]})

    async def send_text_with_buttons(
        self,
        recipient_id: str,
        text: str,
        buttons: list[dict[str, Any]],
        **kwargs: Any,
    ) -> None:
        """Send buttons as a numbered list and remember them for typed replies."""
        await self._memory.remember(_whatsapp_address(recipient_id), buttons)
        await self.send_text_message(recipient_id, numbered_message(text, buttons))

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        """Send an image by URL."""
        await self._create({"To": _whatsapp_address(recipient_id), "MediaUrl": image})

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        """Send custom Messages API fields (e.g. `ContentSid` for a template)."""
        fields = {str(k): str(v) for k, v in json_message.items()}
        fields.setdefault("To", _whatsapp_address(recipient_id))
        await self._create(fields)


def _whatsapp_address(number: str) -> str:
    """`whatsapp:+<number>`, the address form Twilio uses, from a number or conversation id."""
    number = str(number).strip().removeprefix(PREFIXES[CHANNEL_NAME])
    return number if number.startswith(WHATSAPP_PREFIX) else f"{WHATSAPP_PREFIX}{number}"


def _no_reply() -> HTTPResponse:
    """Empty TwiML: the replies go out through the REST API, not in this response."""
    return response.text(EMPTY_TWIML, content_type="text/xml")


class TwilioWhatsAppInput(TwilioInput):
    """Receives Twilio's WhatsApp webhooks at `/webhooks/twilio_whatsapp/webhook`.

    The conversation id is `twilio:` + Twilio's `From` (`twilio:whatsapp:+<number>`): its own
    namespace, apart from the WhatsApp Cloud channel's `whatsapp:<wa id>`.
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
            account_sid=str(credentials.get("account_sid") or ""),
            auth_token=str(credentials.get("auth_token") or ""),
            twilio_number=str(credentials.get("twilio_number") or ""),
            webhook_url=str(credentials.get("webhook_url") or "") or None,
            api_base_url=str(credentials.get("api_base_url") or "") or DEFAULT_API_BASE_URL,
        )

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        twilio_number: str,
        webhook_url: str | None = None,
        api_base_url: str = DEFAULT_API_BASE_URL,
    ) -> None:
        """Check the configuration; no network I/O happens here.

        Args:
            account_sid: Twilio account SID (`AC...`).
            auth_token: Twilio auth token; signs every webhook.
            twilio_number: The WhatsApp sender, e.g. `whatsapp:+14155238886`.
            webhook_url: The exact public URL configured in Twilio; signatures are computed
                over it, so set it when a proxy changes scheme, host or port.
            api_base_url: Twilio REST API base URL.

        Raises:
            RasaException: A credential is missing.
        """
        for name, value in (
            ("account_sid", account_sid),
            ("auth_token", auth_token),
            ("twilio_number", twilio_number),
        ):
            if not value:
                raise RasaException(f"Twilio WhatsApp {name} is missing")
        super().__init__(account_sid, auth_token, twilio_number, debug_mode=False)
        self.webhook_url = webhook_url
        self.api_base_url = api_base_url
        self._validator = RequestValidator(auth_token)
        self.memory = ChannelMemory.for_channel(CHANNEL_NAME, auth_token)
        self._memory = self.memory.buttons
        self._output: TwilioWhatsAppOutput | None = None
        self._replays = self.memory.replays

    def get_output_channel(self) -> TwilioWhatsAppOutput:
        """One shared output channel (and HTTP session); cheap, no I/O."""
        if self._output is None:
            self._output = TwilioWhatsAppOutput(
                str(self.account_sid),
                str(self.auth_token),
                str(self.twilio_number),
                self._memory,
                self.api_base_url,
            )
        return self._output

    def is_signed(self, request: Request) -> bool:
        """Check `X-Twilio-Signature` over the webhook URL and the form fields."""
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature:
            return False
        params = {key: values[0] for key, values in request.form.items() if values}
        url = self.webhook_url or request.url
        return bool(self._validator.validate(url, params, signature))

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Routes for Twilio: health check and signed message webhooks."""
        twilio_webhook = LimitedBlueprint("twilio_whatsapp_webhook", __name__)

        @twilio_webhook.listener("before_server_stop")
        async def stop(_: object, __: asyncio.AbstractEventLoop) -> None:
            await self.get_output_channel().close()
            await self.memory.close()

        @twilio_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @twilio_webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self.is_signed(request):
                logger.warning("Rejected a Twilio webhook with a bad signature")
                return response.text("Forbidden", status=403)
            sender = str(request.form.get("From") or "")
            text = str(request.form.get("Body") or "")
            if not sender:
                return error_response("missing_sender", "the form needs From")
            try:
                conversation = sender_id(CHANNEL_NAME, sender)
            except InvalidSenderId as error:
                return error_response("invalid_sender", str(error))
            if not await self._replays.first_time(str(request.form.get("MessageSid") or "")):
                return _no_reply()
            resolved = resolve_reply(text.strip(), await self._memory.take(sender))
            try:
                await deliver(
                    on_new_message,
                    resolved or text,
                    self.get_output_channel(),
                    conversation,
                    self.name(),
                    {"twilio": {"message_sid": request.form.get("MessageSid")}},
                    tracker_store=tracker_store_of(request.app),
                    trusted=bool(resolved),
                )
            except BadMessage as error:
                return error_response(error.code, error.message)
            except Exception:
                # Answer anyway: the failure is ours; Twilio would only call the fallback URL.
                logger.exception("Handling a Twilio WhatsApp message failed")
            return _no_reply()

        return twilio_webhook
