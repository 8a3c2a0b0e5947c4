"""Telegram connector that starts offline, authenticates every update and never loops on 500s.

Rasa 3.6.21's connector sets the webhook with `asyncio.run` while its blueprint is built, so
`rasa run` exits when the Bot API is unreachable and, when it is reachable, keeps an aiohttp
session bound to that closed loop ("Event loop is closed" on every reply). It also raises on
updates without `message` (Telegram then redelivers them forever) and its `verify` is a name
check, not authentication. This connector talks to the Bot API with its own aiohttp session
created inside Sanic's loop, sets the webhook with a `secret_token` after the server started
(retrying in the background, or on demand through an authenticated route), rejects any update
without the matching `X-Telegram-Bot-Api-Secret-Token`, and answers 200 to whatever it ignores.

The committed credentials.yml leaves this channel's section empty, and the channel reads
the same variables from settings (bot/channels/enabled.py); spelled out, the section is
(credentials.yml)::

    bot.channels.telegram.TelegramInput:
      access_token: ${TELEGRAM_ACCESS_TOKEN}
      verify: ${TELEGRAM_BOT_USERNAME}
      webhook_url: ${TELEGRAM_WEBHOOK_URL}   # https://<host>/webhooks/telegram/webhook
      secret_token: ${TELEGRAM_SECRET_TOKEN}
      api_base_url: ${TELEGRAM_API_BASE_URL} # https://api.telegram.org unless self-hosted
      start_payload: /greet                  # optional: what Telegram's `/start` becomes
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
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
    resolve_reply,
)
from bot.channels.enabled import SwitchedOff, channel_credentials
from bot.channels.intake import BadMessage, deliver, error_response, tracker_store_of
from bot.channels.limits import LimitedBlueprint
from bot.channels.markers import messaging_text
from bot.channels.messaging import (
    DEFAULT_RETRY,
    SINGLE_TRY,
    ChannelMemory,
    LoopSession,
    RetryPolicy,
    Unreachable,
    check_secret_strength,
    same_secret,
)
from bot.channels.sender import PREFIXES, InvalidSenderId, sender_id

logger = logging.getLogger(__name__)

CHANNEL_NAME = "telegram"
SENDER_PREFIX = PREFIXES[CHANNEL_NAME]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_API_BASE_URL = "https://api.telegram.org"
CALLBACK_DATA_MAX_BYTES = 64
MESSAGE_MAX_CHARS = 4096
ALLOWED_UPDATES = ("message", "callback_query")
DEFAULT_BUTTON_PROMPT = "Please choose an option:"
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_METHOD_NAME = re.compile(r"^[A-Za-z]{1,64}$")
_COMMAND_MENTION = re.compile(r"^(/\w+)@\w+")


class TelegramApiError(Exception):
    """A Bot API call failed: unreachable, or answered `ok: false`."""

    def __init__(
        self,
        method: str,
        description: str,
        error_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Describe a failed call without the access token (it is part of the URL)."""
        super().__init__(f"{method}: {description}")
        self.method = method
        self.description = description
        self.error_code = error_code
        self.retry_after = retry_after

    @property
    def is_transient(self) -> bool:
        """Network errors, rate limits and server errors may succeed later; 4xx will not."""
        return self.error_code is None or self.error_code == 429 or self.error_code >= 500


class BotApiClient:
    """Minimal async Bot API client whose aiohttp session lives in the running loop.

    The session is created on first use inside whichever loop calls it (Sanic's), and
    recreated if that loop changes, so nothing built before `app.run` can leak a dead loop.
    Calls are retried by the shared layer (`bot.channels.messaging.LoopSession.post`).
    """

    def __init__(
        self,
        access_token: str,
        api_base_url: str = DEFAULT_API_BASE_URL,
        timeout_seconds: float = 15.0,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        """Create a client; no I/O happens until the first call.

        Args:
            access_token: The bot's token from @BotFather.
            api_base_url: https://api.telegram.org, or a self-hosted Bot API server.
            timeout_seconds: Total time allowed for one try.
            retry: How often a call is tried (connection errors, 429 and 5xx only).
        """
        self._token = access_token
        self._base_url = api_base_url.rstrip("/")
        self.http = LoopSession(timeout_seconds, retry)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text

    async def call(
        self, method: str, params: Mapping[str, Any] | None = None, retry: RetryPolicy | None = None
    ) -> Any:
        """Call a Bot API method and return its `result`.

        Connection errors, 5xx and a 429 asking for a short wait are retried (the shared
        `RetryPolicy`); the last failure is raised.

        Args:
            method: Bot API method name, e.g. `sendMessage`.
            params: JSON parameters of the method.
            retry: This call's policy instead of the client's.

        Returns:
            The `result` field of the answer.

        Raises:
            TelegramApiError: The API was unreachable or answered `ok: false`.
        """
        url = f"{self._base_url}/bot{self._token}/{method}"
        try:
            answer = await self.http.post(url, retry=retry, json=dict(params or {}))
        except Unreachable as error:
            raise TelegramApiError(method, f"Bot API unreachable ({self._redact(str(error))})") from None
        status, body = answer.status, answer.body
        if not isinstance(body, dict):
            raise TelegramApiError(method, f"HTTP {status} without a JSON body", status)
        if not body.get("ok"):
            parameters = body.get("parameters") or {}
            raise TelegramApiError(
                method,
                str(body.get("description") or f"HTTP {status}"),
                int(body.get("error_code") or status),
                parameters.get("retry_after") if isinstance(parameters, dict) else None,
            )
        return body.get("result")

    async def close(self) -> None:
        """Close the session if it belongs to the running loop."""
        await self.http.close()


def sender_id_for(chat_id: int | str) -> str:
    """Conversation id for a chat: `telegram:<chat_id>`, checked against the sender rule.

    Raises:
        InvalidSenderId: The chat id breaks the rule (Telegram's are integers).
    """
    return sender_id(CHANNEL_NAME, chat_id)


def chat_id_from(recipient_id: str) -> str:
    """Chat id from `telegram:<chat_id>` (bare chat ids pass through)."""
    text = str(recipient_id)
    return text.removeprefix(SENDER_PREFIX)


def _chunks(text: str, size: int) -> list[str]:
    text = text.strip()
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class TelegramOutput(OutputChannel):
    """Sends Rasa's responses through the Bot API (plain text, inline keyboards, photos)."""

    @classmethod
    def name(cls) -> str:
        """Same name as the input channel, so Rasa can route proactive messages here."""
        return CHANNEL_NAME

    def __init__(self, api: BotApiClient, short_ids: ShortIds, memory: ButtonMemory) -> None:
        """Share the input channel's client, button-id map and last-buttons memory."""
        self.api = api
        self._short_ids = short_ids
        self._memory = memory

    async def _send(self, method: str, params: Mapping[str, Any]) -> Any:
        try:
            return await self.api.call(method, params)
        except TelegramApiError as error:
            logger.error("Telegram %s failed: %s", method, error.description)
            return None

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Send text, split at Telegram's 4096-character limit (staff replies signed)."""
        chat_id = chat_id_from(recipient_id)
        for chunk in _chunks(messaging_text(text, kwargs), MESSAGE_MAX_CHARS):
            if chunk:
                await self._send("sendMessage", {"chat_id": chat_id, "text": chunk})

    async def reply_markup(self, buttons: Sequence[Button], button_type: str | None = None) -> dict[str, Any]:
        """Build a keyboard: `vertical` (default, one button per row), `inline` or `reply`.

        Inline buttons carry the payload as callback_data, or a short id when the payload is
        over Telegram's 64-byte limit.
        """
        if button_type == "reply":
            return {
                "keyboard": [[{"text": button_title(b)}] for b in buttons],
                "one_time_keyboard": True,
                "resize_keyboard": True,
            }
        data = await self._short_ids.encode_all([button_payload(b) for b in buttons], CALLBACK_DATA_MAX_BYTES)
        keys = [{"text": button_title(b), "callback_data": d} for b, d in zip(buttons, data, strict=True)]
        rows = [keys] if button_type == "inline" else [[key] for key in keys]
        return {"inline_keyboard": rows}

    async def send_text_with_buttons(
        self,
        recipient_id: str,
        text: str,
        buttons: list[dict[str, Any]],
        **kwargs: Any,
    ) -> None:
        """Send text with a keyboard and remember the buttons for typed replies."""
        chat_id = chat_id_from(recipient_id)
        markup = await self.reply_markup(buttons, kwargs.get("button_type"))
        await self._memory.remember(sender_id_for(chat_id), buttons)
        chunks = _chunks(text or DEFAULT_BUTTON_PROMPT, MESSAGE_MAX_CHARS)
        for chunk in chunks[:-1]:
            await self._send("sendMessage", {"chat_id": chat_id, "text": chunk})
        await self._send(
            "sendMessage",
            {
                "chat_id": chat_id,
                "text": chunks[-1] or DEFAULT_BUTTON_PROMPT,
                "reply_markup": markup,
            },
        )

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        """Send a photo by URL."""
        await self._send("sendPhoto", {"chat_id": chat_id_from(recipient_id), "photo": image})

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        """Call a Bot API method from a custom payload (`method`, default `sendMessage`)."""
        params = dict(json_message)
        method = str(params.pop("method", "sendMessage"))
        if not _METHOD_NAME.match(method):
            logger.error("Ignoring custom Telegram payload with invalid method %r", method)
            return
        params.setdefault("chat_id", chat_id_from(recipient_id))
        await self._send(method, params)


def _keyboard_title(message: Mapping[str, Any], data: str) -> str | None:
    """Title of the inline button with `data`, from the message Telegram echoes back."""
    markup = message.get("reply_markup") or {}
    for row in markup.get("inline_keyboard") or []:
        for key in row or []:
            if isinstance(key, dict) and key.get("callback_data") == data:
                return str(key.get("text") or "") or None
    return None


class TelegramInput(InputChannel):
    """Receives Telegram webhook updates at `/webhooks/telegram/webhook`.

    Routes: `GET /` (health), `POST /webhook` (updates, secret header required),
    `POST /set_webhook` (sets the webhook now; same secret header required).
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
            secret_token=str(credentials.get("secret_token") or ""),
            verify=str(credentials.get("verify") or "") or None,
            webhook_url=str(credentials.get("webhook_url") or "") or None,
            api_base_url=str(credentials.get("api_base_url") or "") or DEFAULT_API_BASE_URL,
            start_payload=str(credentials.get("start_payload") or "") or None,
        )

    def __init__(
        self,
        access_token: str,
        secret_token: str,
        verify: str | None = None,
        webhook_url: str | None = None,
        api_base_url: str = DEFAULT_API_BASE_URL,
        retry_initial_seconds: float = 2.0,
        retry_max_seconds: float = 300.0,
        start_payload: str | None = None,
    ) -> None:
        """Check the configuration; no network I/O happens here.

        Args:
            access_token: The bot's token from @BotFather.
            secret_token: Sent by Telegram in `X-Telegram-Bot-Api-Secret-Token` with every
                update (1-256 of `A-Z a-z 0-9 _ -`).
            verify: The bot's username; checked against `getMe` at start-up (a sanity
                check, not authentication).
            webhook_url: Public HTTPS URL of `/webhooks/telegram/webhook`; if unset, the
                webhook is not registered automatically.
            api_base_url: Bot API server (https://api.telegram.org or self-hosted).
            retry_initial_seconds: First delay between failed webhook registrations.
            retry_max_seconds: Longest delay between them (the delay doubles each time).
            start_payload: What Rasa receives instead of `/start`, the command Telegram
                sends when a patient first opens the bot (e.g. `/greet`); unset passes
                `/start` on unchanged.

        Raises:
            RasaException: A credential is missing or invalid.
        """
        if not access_token:
            raise RasaException("Telegram access_token is missing")
        if not _SECRET_TOKEN.match(secret_token or ""):
            raise RasaException(
                "Telegram secret_token is required: 1-256 characters of A-Z, a-z, 0-9, _ and -"
            )
        check_secret_strength("Telegram", "secret_token", secret_token)
        self.access_token = access_token
        self.secret_token = secret_token
        self.verify = verify
        self.webhook_url = webhook_url
        self.api_base_url = api_base_url.rstrip("/")
        self.retry_initial_seconds = retry_initial_seconds
        self.retry_max_seconds = retry_max_seconds
        self.start_payload = start_payload
        self.webhook_is_set = False
        self.api = BotApiClient(access_token, self.api_base_url)
        self.memory = ChannelMemory.for_channel(CHANNEL_NAME, secret_token)
        self._short_ids = self.memory.short_ids
        self._memory = self.memory.buttons
        self._replays = self.memory.replays
        self._webhook_task: asyncio.Task[None] | None = None

    def get_output_channel(self) -> TelegramOutput:
        """Output channel sharing this channel's client; cheap, no I/O."""
        return TelegramOutput(self.api, self._short_ids, self._memory)

    def is_authentic(self, request: Request) -> bool:
        """Constant-time check of the secret header Telegram sends with every update."""
        supplied = request.headers.get(SECRET_HEADER, "")
        return same_secret(supplied, self.secret_token)

    async def set_webhook(self, retry: RetryPolicy | None = None) -> None:
        """Check the bot's username, then register the webhook with the secret token.

        Args:
            retry: Policy of these calls (default: the client's).

        Raises:
            TelegramApiError: The Bot API was unreachable or refused.
            RasaException: No `webhook_url` is configured.
        """
        if not self.webhook_url:
            raise RasaException("Telegram webhook_url is not configured")
        if self.verify:
            me = await self.api.call("getMe", retry=retry)
            username = me.get("username") if isinstance(me, dict) else None
            if username != self.verify:
                logger.error(
                    "Telegram token belongs to @%s, but verify is @%s",
                    username,
                    self.verify,
                )
        await self.api.call(
            "setWebhook",
            {
                "url": self.webhook_url,
                "secret_token": self.secret_token,
                "allowed_updates": list(ALLOWED_UPDATES),
            },
            retry=retry,
        )
        self.webhook_is_set = True
        logger.info("Telegram webhook set to %s", self.webhook_url)

    async def keep_setting_webhook(self) -> None:
        """Retry `set_webhook` with exponential back-off until it succeeds or is refused.

        This loop is the retry (for minutes, at start-up), so each try is a single call.
        """
        delay = self.retry_initial_seconds
        while True:
            try:
                await self.set_webhook(retry=SINGLE_TRY)
                return
            except TelegramApiError as error:
                if not error.is_transient:
                    logger.error(
                        "Telegram refused the webhook (%s); fix the configuration and POST "
                        "/webhooks/telegram/set_webhook",
                        error,
                    )
                    return
                logger.warning(
                    "Could not set the Telegram webhook (%s); retrying in %gs",
                    error,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max_seconds)

    async def _inbound(self, update: Mapping[str, Any]) -> tuple[str, str, dict[str, Any], bool] | None:
        """(chat id, text, metadata, trusted) of an update worth processing, None to ignore it.

        `trusted` marks text that is a payload this channel vouches for: a pressed inline
        button, a typed reply resolved to one of the buttons just sent, or `start_payload`.
        """
        message = update.get("message")
        if isinstance(message, dict):
            chat = message.get("chat") or {}
            text = message.get("text")
            if chat.get("type") != "private" or chat.get("id") is None:
                logger.info("Ignoring Telegram message outside a private chat")
                return None
            if not isinstance(text, str) or not text.strip():
                logger.debug("Ignoring Telegram message without text")
                return None
            text = _COMMAND_MENTION.sub(r"\1", text.strip())
            chat_id = str(chat["id"])
            if self.start_payload and (text == "/start" or text.startswith("/start ")):
                return chat_id, self.start_payload, self._metadata(update, message), True
            last_buttons = await self._memory.take(sender_id_for(chat_id))
            resolved = resolve_reply(text, last_buttons)
            return chat_id, resolved or text, self._metadata(update, message), bool(resolved)
        query = update.get("callback_query")
        if isinstance(query, dict):
            data = query.get("data")
            raw_source = query.get("message")
            source: dict[str, Any] = raw_source if isinstance(raw_source, dict) else {}
            chat = source.get("chat") or {"id": (query.get("from") or {}).get("id")}
            if chat.get("type", "private") != "private" or chat.get("id") is None:
                return None
            if not isinstance(data, str) or not data:
                return None
            payload = await self._short_ids.decode(data) or _keyboard_title(source, data)
            if not payload:
                logger.warning("Ignoring Telegram button press with unknown data")
                return None
            chat_id = str(chat["id"])
            await self._memory.take(sender_id_for(chat_id))
            # `source` is the bot's own message; the patient is the query's `from`.
            pressed = {**source, "from": query.get("from") or {}}
            # Trusted only if the data is on the keyboard of the bot's message, which
            # Telegram echoes; any other data is checked like typed text.
            offered = _keyboard_title(source, data) is not None
            return chat_id, payload, self._metadata(update, pressed), offered
        return None

    @staticmethod
    def _metadata(update: Mapping[str, Any], message: Mapping[str, Any]) -> dict[str, Any]:
        sender = message.get("from") or {}
        return {
            "telegram": {
                "update_id": update.get("update_id"),
                "message_id": message.get("message_id"),
                "language_code": sender.get("language_code"),
            }
        }

    async def _answer_callback(self, update: Mapping[str, Any]) -> None:
        query = update.get("callback_query")
        if not isinstance(query, dict) or not query.get("id"):
            return
        try:
            await self.api.call("answerCallbackQuery", {"callback_query_id": query["id"]})
        except TelegramApiError as error:
            logger.warning("Telegram answerCallbackQuery failed: %s", error.description)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Routes for Telegram; registration of the webhook starts after the server does."""
        telegram_webhook = LimitedBlueprint("telegram_webhook", __name__)

        @telegram_webhook.listener("after_server_start")
        async def start_webhook_registration(_: Any, loop: asyncio.AbstractEventLoop) -> None:
            if not self.webhook_url:
                logger.warning("Telegram webhook_url is not set; register the webhook yourself")
                return
            self._webhook_task = loop.create_task(self.keep_setting_webhook())

        @telegram_webhook.listener("before_server_stop")
        async def stop(_: Any, __: asyncio.AbstractEventLoop) -> None:
            if self._webhook_task is not None:
                self._webhook_task.cancel()
                self._webhook_task = None
            await self.api.close()
            await self.memory.close()

        @telegram_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok", "webhook_set": self.webhook_is_set})

        @telegram_webhook.route("/set_webhook", methods=["POST"])
        async def set_webhook(request: Request) -> HTTPResponse:
            if not self.is_authentic(request):
                return response.json({"ok": False, "description": "Forbidden"}, status=403)
            try:
                await self.set_webhook()
            except (TelegramApiError, RasaException) as error:
                logger.warning("Setting the Telegram webhook failed: %s", error)
                return response.json({"ok": False, "description": str(error)}, status=502)
            return response.json({"ok": True, "webhook_url": self.webhook_url})

        @telegram_webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self.is_authentic(request):
                logger.warning("Rejected a Telegram update without the right secret token")
                return response.json({"ok": False}, status=403)
            try:
                update = json.loads(request.body or b"")
            except (ValueError, RecursionError):
                update = None
            if not isinstance(update, dict):
                return error_response("invalid_json", "the body must be a JSON object (a Telegram Update)")
            message = update.get("message")
            if isinstance(message, dict) and self._replays.is_too_old(message.get("date")):
                logger.warning("Ignoring a Telegram message older than the replay window")
                return response.json({"ok": True, "status": "too_old"})
            update_id = update.get("update_id")
            if isinstance(update_id, int) and not await self._replays.first_time(update_id):
                return response.json({"ok": True, "status": "duplicate"})
            await self._answer_callback(update)
            try:
                inbound = await self._inbound(update)
                if inbound is not None:
                    conversation = sender_id_for(inbound[0])
            except InvalidSenderId as error:
                return error_response("invalid_sender", str(error))
            except (AttributeError, TypeError, ValueError) as error:
                # Authentic but not shaped as documented: acknowledge, or Telegram resends it.
                # One line, no traceback: hostile input must not flood the log.
                logger.warning("Ignoring a malformed Telegram update: %s: %s", type(error).__name__, error)
                inbound = None
            if inbound is None:
                return response.json({"ok": True, "status": "ignored"})
            _, text, metadata, trusted = inbound
            try:
                await deliver(
                    on_new_message,
                    text,
                    self.get_output_channel(),
                    conversation,
                    self.name(),
                    metadata,
                    tracker_store=tracker_store_of(request.app),
                    trusted=trusted,
                )
            except BadMessage as error:
                return error_response(error.code, error.message)
            except Exception:
                # Answer 200 anyway: Telegram would redeliver this update forever.
                logger.exception("Handling a Telegram update failed")
            return response.json({"ok": True, "status": "processed"})

        return telegram_webhook
