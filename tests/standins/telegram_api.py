"""Stand-in for the Telegram Bot API (https://core.telegram.org/bots/api), on loopback.

Answers the way api.telegram.org does: `{"ok": true, "result": ...}` for `getMe`,
`setWebhook`, `getWebhookInfo`, `deleteWebhook`, `sendMessage`, `sendPhoto` and
`answerCallbackQuery`; `{"ok": false, "error_code": 401, "description": "Unauthorized"}` for a
wrong token; 400s for what Telegram refuses (empty text, callback_data over 64 bytes, a bad
secret token). It accepts JSON, form and query parameters like the real API and records every
request. It also plays Telegram's other half: `deliver` POSTs an update to the registered
webhook with the `X-Telegram-Bot-Api-Secret-Token` header. Unlike Telegram it accepts plain
http webhook URLs, since tests serve on 127.0.0.1 without TLS.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from aiohttp import web

from tests.standins._server import ThreadedAiohttpServer, wait_until

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_JSON_FIELDS = {"reply_markup", "allowed_updates", "entities"}
BOT_USER_ID = 7000000001


@dataclass(frozen=True)
class BotApiCall:
    """One request the stand-in received."""

    method: str
    params: dict[str, Any]
    authorized: bool
    status: int
    result: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class TelegramApiError(Exception):
    """An `ok: false` answer, raised inside handlers and turned into Telegram's JSON."""

    def __init__(self, code: int, description: str) -> None:
        """Keep Telegram's error code and description."""
        super().__init__(description)
        self.code = code
        self.description = description


class TelegramBotApiStandIn(ThreadedAiohttpServer):
    """A Bot API server for one bot token."""

    def __init__(self, token: str, username: str = "clinic_test_bot", port: int = 0) -> None:
        """Serve the bot identified by `token` (the one in `/bot<token>/<method>`)."""
        super().__init__(port)
        self.token = token
        self.username = username
        self.webhook: dict[str, Any] = {}
        self._calls: list[BotApiCall] = []
        self._message_ids = itertools.count(1)

    # -- what tests read -------------------------------------------------------------------

    @property
    def calls(self) -> list[BotApiCall]:
        """Every request so far, in arrival order."""
        with self.lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[BotApiCall]:
        """Authorized, successful calls of one method."""
        return [c for c in self.calls if c.method == method and c.status == 200]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[BotApiCall]:
        """Wait until `method` was called successfully at least `count` times."""

        def enough() -> list[BotApiCall] | None:
            calls = self.calls_to(method)
            return calls if len(calls) >= count else None

        return wait_until(enough, timeout)

    def clear(self) -> None:
        """Forget recorded calls (the webhook registration stays)."""
        with self.lock:
            self._calls.clear()

    # -- Telegram's side of the webhook -----------------------------------------------------

    def deliver(
        self,
        update: dict[str, Any],
        secret_token: str | None = None,
        timeout: float = 10.0,
        url: str | None = None,
    ) -> requests.Response:
        """POST `update` to the registered webhook as Telegram does.

        Args:
            update: The Update object.
            secret_token: Header value to send; defaults to the one given to `setWebhook`
                (no header if none was given, like Telegram).
            timeout: Seconds to wait for the bot's answer.
            url: Where to post instead of the registered URL (the address a reverse proxy
                would forward the public webhook URL to).

        Returns:
            The bot's HTTP response.
        """
        url = url or self.webhook.get("url")
        if not url:
            raise AssertionError("no webhook registered with setWebhook")
        secret = self.webhook.get("secret_token") if secret_token is None else secret_token
        headers = {SECRET_HEADER: secret} if secret else {}
        return requests.post(url, json=update, headers=headers, timeout=timeout)

    # -- the API --------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        """Route `/bot<token>/<method>` for GET and POST, like the real API."""
        app = web.Application()
        app.router.add_route("*", r"/bot{token}/{method}", self._handle)
        return app

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if not isinstance(body, dict):
                    raise TelegramApiError(400, "Bad Request: invalid JSON body")
                params.update(body)
            else:
                params.update(dict(await request.post()))
        for name in _JSON_FIELDS & params.keys():
            if isinstance(params[name], str):
                try:
                    params[name] = json.loads(params[name])
                except ValueError:
                    raise TelegramApiError(400, f"Bad Request: can't parse {name} JSON object") from None
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        authorized = request.match_info["token"] == self.token
        try:
            params = await self._params(request)
        except (TelegramApiError, ValueError) as error:
            params = {}
            answer = self._error(
                error if isinstance(error, TelegramApiError) else TelegramApiError(400, str(error))
            )
        else:
            if not authorized:
                answer = self._error(TelegramApiError(401, "Unauthorized"))
            else:
                answer = self._dispatch(method, params)
        result = json.loads(answer.text or "{}").get("result") if answer.status == 200 else None
        with self.lock:
            self._calls.append(
                BotApiCall(
                    method,
                    params,
                    authorized,
                    answer.status,
                    result,
                    dict(request.headers),
                )
            )
        return answer

    @staticmethod
    def _error(error: TelegramApiError) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": error.code, "description": error.description},
            status=error.code,
        )

    def _dispatch(self, method: str, params: dict[str, Any]) -> web.Response:
        handlers = {
            "getme": self._get_me,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "answercallbackquery": self._answer_callback_query,
        }
        handler = handlers.get(method.lower())
        if handler is None:
            return self._error(TelegramApiError(404, "Not Found"))
        try:
            return web.json_response({"ok": True, "result": handler(params)})
        except TelegramApiError as error:
            return self._error(error)

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": BOT_USER_ID,
            "is_bot": True,
            "first_name": "Clinic Assistant",
            "username": self.username,
        }

    def _get_me(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if url and not url.startswith(("https://", "http://")):
            raise TelegramApiError(
                400,
                "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
            )
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.match(str(secret)):
            raise TelegramApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": params.get("allowed_updates"),
        }
        return True

    def _delete_webhook(self, _: dict[str, Any]) -> bool:
        self.webhook = {}
        return True

    def _get_webhook_info(self, _: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if self.webhook.get("allowed_updates"):
            info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    def _message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            raise TelegramApiError(400, "Bad Request: chat_id is empty")
        try:
            numeric_chat_id = int(chat_id)
        except (TypeError, ValueError):
            raise TelegramApiError(400, "Bad Request: chat not found") from None
        markup = params.get("reply_markup")
        if markup is not None:
            self._check_markup(markup)
            content["reply_markup"] = markup
        return {
            "message_id": next(self._message_ids),
            "from": self._bot_user(),
            "chat": {
                "id": numeric_chat_id,
                "type": "private" if numeric_chat_id > 0 else "group",
            },
            "date": int(time.time()),
            **content,
        }

    @staticmethod
    def _check_markup(markup: Any) -> None:
        if not isinstance(markup, dict):
            raise TelegramApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise TelegramApiError(400, 'Bad Request: field "inline_keyboard" must be an Array')
            for row in rows:
                for key in row:
                    if not isinstance(key, dict) or not key.get("text"):
                        raise TelegramApiError(
                            400,
                            "Bad Request: text buttons are unallowed in the inline keyboard",
                        )
                    data = key.get("callback_data")
                    if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
                        raise TelegramApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        elif "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise TelegramApiError(400, 'Bad Request: field "keyboard" must be an Array')

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        text = str(params.get("text") or "")
        if not text.strip():
            raise TelegramApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise TelegramApiError(400, "Bad Request: message is too long")
        return self._message(params, text=text)

    def _send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        photo = params.get("photo")
        if not photo:
            raise TelegramApiError(400, "Bad Request: there is no photo in the request")
        file_id = f"AgAC{abs(hash(str(photo))) % 10**12:012d}"
        return self._message(
            params,
            photo=[
                {
                    "file_id": file_id,
                    "file_unique_id": file_id[-8:],
                    "width": 320,
                    "height": 240,
                }
            ],
        )

    @staticmethod
    def _answer_callback_query(params: dict[str, Any]) -> bool:
        if not params.get("callback_query_id"):
            raise TelegramApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        return True


# -- Update objects as Telegram sends them ---------------------------------------------------

_update_ids = itertools.count(100_000)


def _user(user_id: int, first_name: str = "Pat") -> dict[str, Any]:
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": first_name,
        "language_code": "en",
    }


def _private_chat(chat_id: int, first_name: str = "Pat") -> dict[str, Any]:
    return {"id": chat_id, "first_name": first_name, "type": "private"}


def text_update(chat_id: int, text: str, update_id: int | None = None) -> dict[str, Any]:
    """A `message` update with text from a private chat."""
    return {
        "update_id": next(_update_ids) if update_id is None else update_id,
        "message": {
            "message_id": next(_update_ids),
            "from": _user(chat_id),
            "chat": _private_chat(chat_id),
            "date": int(time.time()),
            "text": text,
        },
    }


def edited_message_update(chat_id: int, text: str) -> dict[str, Any]:
    """An `edited_message` update (the patient edited something they had sent)."""
    message = text_update(chat_id, text)["message"]
    message["edit_date"] = message["date"] + 5
    return {"update_id": next(_update_ids), "edited_message": message}


def my_chat_member_update(chat_id: int, status: str = "kicked") -> dict[str, Any]:
    """A `my_chat_member` update (the patient blocked or restarted the bot)."""
    return {
        "update_id": next(_update_ids),
        "my_chat_member": {
            "chat": _private_chat(chat_id),
            "from": _user(chat_id),
            "date": int(time.time()),
            "old_chat_member": {
                "user": {
                    "id": BOT_USER_ID,
                    "is_bot": True,
                    "first_name": "Clinic Assistant",
                },
                "status": "member",
            },
            "new_chat_member": {
                "user": {
                    "id": BOT_USER_ID,
                    "is_bot": True,
                    "first_name": "Clinic Assistant",
                },
                "status": status,
            },
        },
    }


def callback_query_update(chat_id: int, data: str, sent_message: dict[str, Any]) -> dict[str, Any]:
    """A `callback_query` update: the patient pressed an inline button of `sent_message`.

    Args:
        chat_id: The patient's private chat.
        data: The pressed button's `callback_data`.
        sent_message: The bot's message carrying the keyboard (as `sendMessage` returned it).
    """
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": str(next(_update_ids) * 1000 + 7),
            "from": _user(chat_id),
            "message": sent_message,
            "chat_instance": "-4211337",
            "data": data,
        },
    }
