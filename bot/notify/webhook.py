"""POST staff notifications as signed JSON to the clinic's own endpoint.

The receiver must be able to trust that a booking came from this assistant, so every
request carries ``X-Clinic-Signature: sha256=<hex HMAC-SHA256 of the raw body>``
keyed with NOTIFY_WEBHOOK_SECRET. The same Unix time is sent in
``X-Clinic-Timestamp`` and inside the signed body, so receivers can refuse replays
(`verify_request`). ``X-Clinic-Delivery`` (the outbox id) repeats on retries so a
receiver can drop duplicates. Redirects are not followed: signed patient data goes
only to the configured URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from bot.notify.base import NotificationError
from bot.notify.config import WEBHOOK
from bot.notify.render import console_link
from bot.settings import Settings

SIGNATURE_HEADER = "X-Clinic-Signature"
TIMESTAMP_HEADER = "X-Clinic-Timestamp"
DELIVERY_HEADER = "X-Clinic-Delivery"
USER_AGENT = "clinic-assistant-notify/1"
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def sign(body: bytes, secret: str) -> str:
    """Return the ``sha256=<hex>`` signature of `body` under `secret`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(body: bytes | str, header: str | None, secret: str) -> bool:
    """Check an ``X-Clinic-Signature`` header against the raw request body.

    Args:
        body: The raw body exactly as received (bytes; str is UTF-8 encoded).
        header: The ``X-Clinic-Signature`` value, e.g. ``sha256=ab12...``.
        secret: The shared NOTIFY_WEBHOOK_SECRET.

    Returns:
        True only for a matching signature; compared in constant time. An empty
        secret or a missing header never verifies.
    """
    if not header or not secret:
        return False
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return hmac.compare_digest(sign(raw, secret), header.strip())


def verify_request(
    body: bytes,
    signature_header: str | None,
    timestamp_header: str | None,
    secret: str,
    *,
    max_age_seconds: int = 300,
    now: float | None = None,
) -> bool:
    """Check signature, and that the signed timestamp is the header's and is recent.

    Args:
        body: Raw request body.
        signature_header: ``X-Clinic-Signature`` value.
        timestamp_header: ``X-Clinic-Timestamp`` value.
        secret: The shared secret.
        max_age_seconds: Oldest acceptable request (replay window).
        now: Current Unix time (tests).

    Returns:
        True when the request is authentic and fresh.
    """
    if not verify_signature(body, signature_header, secret) or not timestamp_header:
        return False
    try:
        signed = json.loads(body.decode("utf-8")).get("timestamp")
        stamp = int(timestamp_header)
    except (ValueError, AttributeError, UnicodeDecodeError):
        return False
    current = time.time() if now is None else now
    return signed == stamp and abs(current - stamp) <= max_age_seconds


def encode_body(
    kind: str,
    payload: Mapping[str, Any],
    delivery_id: int | str,
    timestamp: int,
    console_url: str = "",
) -> bytes:
    """Return the exact bytes that are POSTed (and signed) for one notification.

    ``console_link`` is the item's page in the staff console (null without one).
    """
    envelope = {
        "console_link": console_link(kind, payload, console_url),
        "event": f"{kind}.created",
        "kind": kind,
        "delivery_id": delivery_id,
        "timestamp": timestamp,
        "data": dict(payload),
    }
    return json.dumps(
        envelope, ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode("utf-8")


class WebhookNotifier:
    """POSTs signed JSON notifications, retrying briefly on transient failures.

    Connection errors, timeouts, 408/425/429 and 5xx are retried `retries` times
    with doubling pauses; other 4xx answers fail at once (the outbox tries again
    later in any case).

    Args:
        url: Receiver URL.
        secret: HMAC key (NOTIFY_WEBHOOK_SECRET); must not be empty.
        timeout: Seconds per request.
        retries: Extra attempts within one `send`.
        backoff_seconds: Pause before the first retry; doubles each time.
        sleep: Pause function (tests may pass a no-op).
        console_url: The staff console's base URL, for the link in each body.
    """

    channel = WEBHOOK

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        console_url: str = "",
    ):
        """Check and keep the endpoint settings; nothing is sent until `send`."""
        if not url:
            raise ValueError("webhook URL is required")
        if not secret:
            raise ValueError(
                "webhook secret is required; unsigned notifications are refused"
            )
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.retries = max(retries, 0)
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep
        self.console_url = console_url

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookNotifier:
        """Build the notifier from NOTIFY_WEBHOOK_* settings."""
        return cls(
            settings.webhook_url,
            settings.webhook_secret,
            timeout=settings.notify_timeout_seconds,
            retries=settings.notify_webhook_retries,
            console_url=settings.console_url,
        )

    def send(
        self, kind: str, payload: Mapping[str, Any], delivery_id: int | str
    ) -> None:
        """POST one notification.

        Raises:
            NotificationError: Every attempt failed, or the receiver refused it.
        """
        timestamp = int(time.time())
        body = encode_body(kind, payload, delivery_id, timestamp, self.console_url)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(body, self.secret),
            TIMESTAMP_HEADER: str(timestamp),
            DELIVERY_HEADER: str(delivery_id),
        }
        error = "not attempted"
        with requests.Session() as session:
            for attempt in range(self.retries + 1):
                if attempt:
                    self._sleep(self.backoff_seconds * (2 ** (attempt - 1)))
                try:
                    response = session.post(
                        self.url,
                        data=body,
                        headers=headers,
                        timeout=self.timeout,
                        allow_redirects=False,
                    )
                except requests.RequestException as exc:
                    error = f"webhook request failed: {type(exc).__name__}"
                    continue
                if 200 <= response.status_code < 300:
                    return
                error = f"webhook answered HTTP {response.status_code}"
                if response.status_code not in RETRYABLE_STATUS:
                    break
        raise NotificationError(f"{error} (after {attempt + 1} attempt(s))")

    async def send_async(
        self, kind: str, payload: Mapping[str, Any], delivery_id: int | str
    ) -> None:
        """Like `send`, in a worker thread so the event loop keeps serving patients."""
        await asyncio.to_thread(self.send, kind, payload, delivery_id)
