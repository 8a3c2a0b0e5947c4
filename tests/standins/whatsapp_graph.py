"""Stand-in for the WhatsApp Business Cloud API on Meta's Graph API, on loopback.

`POST /{version}/{phone_number_id}/messages` answers like graph.facebook.com: the
`{"messaging_product": "whatsapp", "contacts": [...], "messages": [{"id": "wamid..."}]}`
success body, 401 (`OAuthException`, code 190) for a bad bearer token, 400 (code 100 or
131009 with `error_data.details`) for what Meta refuses: unknown phone number id, missing
`messaging_product`, empty text, more than 3 reply buttons, a button title over 20 characters,
duplicate ids, more than 10 list rows, list titles over 24 characters... Every request is
recorded. It also plays Meta's other half: `deliver` POSTs a webhook notification signed with
`X-Hub-Signature-256`, and `verify_webhook` performs the `hub.challenge` handshake.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
from aiohttp import web

from tests.standins._server import ThreadedAiohttpServer, wait_until

SIGNATURE_HEADER = "X-Hub-Signature-256"
_VERSION = re.compile(r"^v\d+\.\d+$")


@dataclass(frozen=True)
class GraphCall:
    """One request the stand-in received."""

    path: str
    phone_number_id: str
    body: Any
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class GraphError(Exception):
    """A Graph error, raised inside handlers and turned into Graph's JSON."""

    def __init__(self, status: int, code: int, message: str, details: str | None = None) -> None:
        """Keep what Graph reports: HTTP status, error code, message and details."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def _invalid(details: str) -> GraphError:
    return GraphError(400, 131009, "(#131009) Parameter value is not valid", details)


def validate_message(body: Any) -> None:
    """Check a message object the way the Cloud API does, raising `GraphError` if refused."""
    if not isinstance(body, dict):
        raise GraphError(400, 100, "(#100) Invalid parameter")
    if body.get("messaging_product") != "whatsapp":
        raise GraphError(400, 100, "(#100) The parameter messaging_product is required.")
    if not str(body.get("to") or "").strip():
        raise GraphError(400, 100, "(#100) The parameter to is required.")
    kind = body.get("type", "text")
    if kind == "text":
        text = (body.get("text") or {}).get("body")
        if not isinstance(text, str) or not text.strip():
            raise GraphError(400, 100, "(#100) The parameter text['body'] is required.")
        if len(text) > 4096:
            raise _invalid("Text body length invalid. Max length: 4096")
    elif kind == "image":
        image = body.get("image") or {}
        if not image.get("link") and not image.get("id"):
            raise GraphError(400, 100, "(#100) The parameter image['link'] is required.")
    elif kind == "interactive":
        _validate_interactive(body.get("interactive"))
    elif kind != "template":
        raise GraphError(
            400,
            100,
            f'(#100) Param type must be one of {{text, image, interactive, template}} - got "{kind}".',
        )


def _validate_interactive(interactive: Any) -> None:
    if not isinstance(interactive, dict):
        raise GraphError(400, 100, "(#100) The parameter interactive is required.")
    body_text = (interactive.get("body") or {}).get("text")
    if not isinstance(body_text, str) or not body_text.strip():
        raise GraphError(400, 100, "(#100) The parameter interactive['body']['text'] is required.")
    if len(body_text) > 1024:
        raise _invalid("Body text length invalid. Max length: 1024")
    action = interactive.get("action") or {}
    kind = interactive.get("type")
    if kind == "button":
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise _invalid("Number of buttons invalid. Min: 1, Max: 3")
        ids, titles = [], []
        for button in buttons:
            reply = (button or {}).get("reply") or {}
            if (button or {}).get("type") != "reply":
                raise _invalid("Button type invalid. Expected: reply")
            title, button_id = str(reply.get("title") or ""), str(reply.get("id") or "")
            if not 1 <= len(title) <= 20:
                raise _invalid("Button title length invalid. Min length: 1, Max length: 20")
            if not 1 <= len(button_id) <= 256:
                raise _invalid("Button id length invalid. Min length: 1, Max length: 256")
            ids.append(button_id)
            titles.append(title)
        if len(set(ids)) != len(ids) or len(set(titles)) != len(titles):
            raise _invalid("Duplicate buttons: button ids and titles must be unique")
    elif kind == "list":
        label = str(action.get("button") or "")
        if not 1 <= len(label) <= 20:
            raise _invalid("Button label length invalid. Min length: 1, Max length: 20")
        sections = action.get("sections")
        if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
            raise _invalid("Number of sections invalid. Min: 1, Max: 10")
        rows = [row for section in sections for row in (section or {}).get("rows") or []]
        if not 1 <= len(rows) <= 10:
            raise _invalid("Total row count exceed max allowed count: 10")
        if len(sections) > 1 and not all((s or {}).get("title") for s in sections):
            raise _invalid("Section title is required when there are multiple sections")
        ids = []
        for row in rows:
            row_id, title = str(row.get("id") or ""), str(row.get("title") or "")
            if not 1 <= len(row_id) <= 200:
                raise _invalid("Row id length invalid. Min length: 1, Max length: 200")
            if not 1 <= len(title) <= 24:
                raise _invalid("Row title length invalid. Min length: 1, Max length: 24")
            if len(str(row.get("description") or "")) > 72:
                raise _invalid("Row description length invalid. Max length: 72")
            ids.append(row_id)
        if len(set(ids)) != len(ids):
            raise _invalid("Row ids must be unique")
    else:
        raise _invalid(f"Interactive type invalid: {kind!r}")


class WhatsAppGraphStandIn(ThreadedAiohttpServer):
    """A Graph API server for one business phone number and one access token."""

    def __init__(self, access_token: str, phone_number_id: str, port: int = 0) -> None:
        """Accept `Bearer <access_token>` for messages sent from `phone_number_id`."""
        super().__init__(port)
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self._calls: list[GraphCall] = []

    # -- what tests read -------------------------------------------------------------------

    @property
    def calls(self) -> list[GraphCall]:
        """Every request so far, in arrival order."""
        with self.lock:
            return list(self._calls)

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Bodies of messages the API accepted."""
        return [c.body for c in self.calls if c.status == 200]

    def wait_for_sent(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least `count` messages were accepted."""

        def enough() -> list[dict[str, Any]] | None:
            sent = self.sent
            return sent if len(sent) >= count else None

        return wait_until(enough, timeout)

    def clear(self) -> None:
        """Forget recorded requests."""
        with self.lock:
            self._calls.clear()

    # -- Meta's side of the webhook ---------------------------------------------------------

    @staticmethod
    def deliver(
        webhook_url: str,
        notification: dict[str, Any],
        app_secret: str | None,
        signature: str | None = None,
        timeout: float = 10.0,
    ) -> requests.Response:
        """POST a notification as Meta does, signed with `app_secret`.

        Args:
            webhook_url: The bot's webhook.
            notification: The webhook body.
            app_secret: Secret to sign with; None sends no signature at all.
            signature: Exact header value to send instead (to test forged ones).
            timeout: Seconds to wait for the bot's answer.

        Returns:
            The bot's HTTP response.
        """
        raw = json.dumps(notification, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        elif app_secret is not None:
            digest = hmac.new(app_secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        return requests.post(webhook_url, data=raw, headers=headers, timeout=timeout)

    @staticmethod
    def verify_webhook(
        webhook_url: str, verify_token: str, challenge: str, mode: str = "subscribe"
    ) -> requests.Response:
        """Perform Meta's verification request (`GET ?hub.mode&hub.verify_token&hub.challenge`)."""
        params = {
            "hub.mode": mode,
            "hub.verify_token": verify_token,
            "hub.challenge": challenge,
        }
        return requests.get(webhook_url, params=params, timeout=10)

    # -- the API --------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        """Route `/{version}/{phone_number_id}/messages`."""
        app = web.Application()
        app.router.add_post("/{version}/{phone_number_id}/messages", self._messages)
        return app

    async def _messages(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: Any = json.loads(raw or b"null")
        except ValueError:
            body = raw.decode("utf-8", "replace")
        try:
            self._authorize(request)
            validate_message(body)
            answer = web.json_response(self._accepted(body))
        except GraphError as error:
            payload: dict[str, Any] = {
                "message": error.message,
                "type": "OAuthException",
                "code": error.code,
                "fbtrace_id": base64.urlsafe_b64encode(uuid.uuid4().bytes[:12]).decode(),
            }
            if error.details:
                payload["error_data"] = {
                    "messaging_product": "whatsapp",
                    "details": error.details,
                }
            answer = web.json_response({"error": payload}, status=error.status)
        with self.lock:
            self._calls.append(
                GraphCall(
                    request.path,
                    request.match_info["phone_number_id"],
                    body,
                    answer.status,
                    dict(request.headers),
                )
            )
        return answer

    def _authorize(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        if header != f"Bearer {self.access_token}":
            raise GraphError(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if not _VERSION.match(request.match_info["version"]):
            raise GraphError(400, 2500, "Unknown path components")
        number_id = request.match_info["phone_number_id"]
        if number_id != self.phone_number_id:
            raise GraphError(
                400,
                100,
                f"Unsupported post request. Object with ID '{number_id}' "
                "does not exist, cannot be loaded due to missing permissions, or does not support "
                "this operation.",
            )

    @staticmethod
    def _accepted(body: dict[str, Any]) -> dict[str, Any]:
        to = str(body["to"])
        wamid = "wamid." + base64.b64encode(f"{to}:{uuid.uuid4().hex}".encode()).decode()
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid}],
        }


# -- webhook notifications as Meta sends them ------------------------------------------------

_ids = itertools.count(1)


def _notification(phone_number_id: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": phone_number_id,
                            },
                            **value,
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def _inbound(phone_number_id: str, wa_id: str, message: dict[str, Any]) -> dict[str, Any]:
    return _notification(
        phone_number_id,
        {
            "contacts": [{"profile": {"name": "Pat Example"}, "wa_id": wa_id}],
            "messages": [
                {
                    "from": wa_id,
                    "id": f"wamid.HBgL{next(_ids):08d}{uuid.uuid4().hex[:12].upper()}",
                    "timestamp": str(int(time.time())),
                    **message,
                }
            ],
        },
    )


def text_notification(phone_number_id: str, wa_id: str, text: str) -> dict[str, Any]:
    """A patient's text message."""
    return _inbound(phone_number_id, wa_id, {"type": "text", "text": {"body": text}})


def button_reply_notification(phone_number_id: str, wa_id: str, button_id: str, title: str) -> dict[str, Any]:
    """A patient's tap on a reply button."""
    return _inbound(
        phone_number_id,
        wa_id,
        {
            "type": "interactive",
            "interactive": {
                "type": "button_reply",
                "button_reply": {"id": button_id, "title": title},
            },
        },
    )


def list_reply_notification(phone_number_id: str, wa_id: str, row_id: str, title: str) -> dict[str, Any]:
    """A patient's choice of a list row."""
    return _inbound(
        phone_number_id,
        wa_id,
        {
            "type": "interactive",
            "interactive": {
                "type": "list_reply",
                "list_reply": {"id": row_id, "title": title},
            },
        },
    )


def status_notification(phone_number_id: str, wa_id: str, status: str = "delivered") -> dict[str, Any]:
    """A delivery status callback for a message the bot sent."""
    return _notification(
        phone_number_id,
        {
            "statuses": [
                {
                    "id": f"wamid.HBgL{next(_ids):08d}",
                    "status": status,
                    "timestamp": str(int(time.time())),
                    "recipient_id": wa_id,
                    "conversation": {
                        "id": uuid.uuid4().hex,
                        "origin": {"type": "service"},
                    },
                    "pricing": {
                        "billable": True,
                        "pricing_model": "CBP",
                        "category": "service",
                    },
                }
            ]
        },
    )
