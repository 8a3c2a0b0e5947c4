"""Stand-in for Twilio's Messages REST API (2010-04-01), on loopback.

`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP basic auth and form fields
answers like api.twilio.com: 201 with the message resource (`sid` `SM...`, `status: queued`),
401 (code 20003) for wrong credentials, 400 for a missing `To` (21604), a missing body and
media (21602) or a body over 1600 characters (21617). Every request is recorded. It also plays
Twilio's other half: `deliver` posts an incoming WhatsApp message to a webhook, signed with
`X-Twilio-Signature` exactly as Twilio signs it (Twilio's own `RequestValidator`).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

import requests
from aiohttp import web
from twilio.request_validator import RequestValidator

from tests.standins._server import ThreadedAiohttpServer, wait_until

SIGNATURE_HEADER = "X-Twilio-Signature"


@dataclass(frozen=True)
class TwilioCall:
    """One request the stand-in received."""

    account_sid: str
    fields: dict[str, str]
    status: int


class TwilioApiStandIn(ThreadedAiohttpServer):
    """A Messages API for one account."""

    def __init__(self, account_sid: str, auth_token: str, port: int = 0) -> None:
        """Accept basic auth `account_sid:auth_token`."""
        super().__init__(port)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._calls: list[TwilioCall] = []

    @property
    def calls(self) -> list[TwilioCall]:
        """Every request so far, in arrival order."""
        with self.lock:
            return list(self._calls)

    @property
    def sent(self) -> list[dict[str, str]]:
        """Form fields of messages the API accepted."""
        return [c.fields for c in self.calls if c.status == 201]

    def wait_for_sent(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, str]]:
        """Wait until at least `count` messages were accepted."""

        def enough() -> list[dict[str, str]] | None:
            sent = self.sent
            return sent if len(sent) >= count else None

        return wait_until(enough, timeout)

    @staticmethod
    def deliver(
        webhook_url: str,
        auth_token: str | None,
        from_number: str,
        body: str,
        to_number: str = "whatsapp:+14155238886",
        signature: str | None = None,
    ) -> requests.Response:
        """POST an incoming WhatsApp message as Twilio does.

        Args:
            webhook_url: The bot's webhook (the URL Twilio signs).
            auth_token: Token to sign with; None sends no signature.
            from_number: Patient address, `whatsapp:+<number>`.
            body: The message text.
            to_number: The business's WhatsApp address.
            signature: Exact header value to send instead (to test forged ones).

        Returns:
            The bot's HTTP response.
        """
        params = {
            "SmsMessageSid": "SM" + uuid.uuid4().hex,
            "NumMedia": "0",
            "ProfileName": "Pat",
            "SmsSid": "SM" + uuid.uuid4().hex,
            "WaId": from_number.removeprefix("whatsapp:+"),
            "SmsStatus": "received",
            "Body": body,
            "To": to_number,
            "NumSegments": "1",
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": "AC" + "0" * 32,
            "From": from_number,
            "ApiVersion": "2010-04-01",
        }
        headers = {}
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        elif auth_token is not None:
            validator = RequestValidator(auth_token)
            headers[SIGNATURE_HEADER] = validator.compute_signature(webhook_url, params)
        return requests.post(webhook_url, data=params, headers=headers, timeout=10)

    def build_app(self) -> web.Application:
        """Route the Messages resource."""
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)
        return app

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return header == f"Basic {expected}" and request.match_info["sid"] == self.account_sid

    async def _create(self, request: web.Request) -> web.Response:
        fields = {k: str(v) for k, v in (await request.post()).items()}
        if not self._authorized(request):
            answer = _error(401, 20003, "Authenticate")
        elif not fields.get("To"):
            answer = _error(400, 21604, "A 'To' phone number is required.")
        elif not fields.get("Body") and not fields.get("MediaUrl"):
            answer = _error(400, 21602, "Message body is required.")
        elif len(fields.get("Body", "")) > 1600:
            answer = _error(
                400,
                21617,
                "The concatenated message body exceeds the 1600 character limit.",
            )
        else:
            answer = web.json_response(self._resource(fields), status=201)
        with self.lock:
            self._calls.append(TwilioCall(request.match_info["sid"], fields, answer.status))
        return answer

    def _resource(self, fields: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + uuid.uuid4().hex
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": fields.get("Body", ""),
            "direction": "outbound-api",
            "from": fields.get("From"),
            "to": fields["To"],
            "num_media": "1" if fields.get("MediaUrl") else "0",
            "num_segments": "1",
            "sid": sid,
            "status": "queued",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )
