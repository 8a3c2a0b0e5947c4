"""The clinic's endpoint receives signed JSON it can verify; forgeries fail."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from bot.notify import verify_request, verify_signature
from bot.notify.base import NotificationError
from bot.notify.webhook import WebhookNotifier

if TYPE_CHECKING:
    from conftest import WebhookReceiver

PAYLOAD = {
    "reference": "BK-7Q4M2",
    "full_name": "Zoë O'Connor 🦵",
    "description": "'); DROP TABLE booking_requests;-- <script>",
}


def notifier(
    receiver: WebhookReceiver, secret: str, **options: float
) -> WebhookNotifier:
    return WebhookNotifier(
        receiver.url,
        secret,
        timeout=5,
        backoff_seconds=options.pop("backoff_seconds", 0.01),
        **options,  # type: ignore[arg-type]
    )


def test_webhook_arrives_with_a_valid_signature(
    webhook_receiver: WebhookReceiver, webhook_secret: str
) -> None:
    notifier(webhook_receiver, webhook_secret).send("booking", PAYLOAD, delivery_id=7)

    [request] = webhook_receiver.requests
    assert request.path == "/hooks/clinic"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.headers["X-Clinic-Delivery"] == "7"
    signature = request.headers["X-Clinic-Signature"]
    assert signature.startswith("sha256=")
    assert verify_signature(request.body, signature, webhook_secret)
    assert verify_request(
        request.body, signature, request.headers["X-Clinic-Timestamp"], webhook_secret
    )
    envelope = json.loads(request.body)
    assert envelope["event"] == "booking.created"
    assert envelope["delivery_id"] == 7
    assert envelope["data"] == PAYLOAD
    assert str(envelope["timestamp"]) == request.headers["X-Clinic-Timestamp"]


def test_tampered_or_forged_requests_fail_verification(
    webhook_receiver: WebhookReceiver, webhook_secret: str
) -> None:
    notifier(webhook_receiver, webhook_secret).send("booking", PAYLOAD, delivery_id=8)
    [request] = webhook_receiver.requests
    signature = request.headers["X-Clinic-Signature"]
    timestamp = request.headers["X-Clinic-Timestamp"]

    tampered = request.body.replace(b"BK-7Q4M2", b"BK-7Q4M3")
    assert tampered != request.body
    assert not verify_signature(tampered, signature, webhook_secret)
    assert not verify_signature(request.body + b" ", signature, webhook_secret)
    assert not verify_signature(request.body, signature, "another-secret-entirely")
    assert not verify_signature(request.body, None, webhook_secret)
    assert not verify_signature(request.body, "sha256=" + "0" * 64, webhook_secret)
    assert not verify_signature(request.body, signature, "")
    # A captured request replayed later, or with a swapped timestamp header, is refused.
    assert not verify_request(
        request.body, signature, timestamp, webhook_secret, now=int(timestamp) + 3600
    )
    assert not verify_request(
        request.body, signature, str(int(timestamp) + 1), webhook_secret
    )


def test_a_transient_server_error_is_retried_with_the_same_delivery_id(
    webhook_receiver: WebhookReceiver, webhook_secret: str
) -> None:
    webhook_receiver.statuses = [503, 502]
    notifier(webhook_receiver, webhook_secret, retries=2).send(
        "handoff", {"handoff_id": 1}, 3
    )

    assert len(webhook_receiver.requests) == 3
    assert {r.headers["X-Clinic-Delivery"] for r in webhook_receiver.requests} == {"3"}


def test_a_rejected_request_is_not_retried_in_a_loop(
    webhook_receiver: WebhookReceiver, webhook_secret: str
) -> None:
    webhook_receiver.statuses = [400]
    with pytest.raises(NotificationError, match="HTTP 400"):
        notifier(webhook_receiver, webhook_secret, retries=3).send("handoff", {}, 4)
    assert len(webhook_receiver.requests) == 1


def test_redirects_are_not_followed(
    webhook_receiver: WebhookReceiver, webhook_secret: str
) -> None:
    webhook_receiver.statuses = [302]
    with pytest.raises(NotificationError, match="HTTP 302"):
        notifier(webhook_receiver, webhook_secret).send("booking", PAYLOAD, 5)
    assert len(webhook_receiver.requests) == 1


def test_unreachable_receiver_raises_after_retries(
    stopped_receiver: WebhookReceiver, webhook_secret: str
) -> None:
    with pytest.raises(NotificationError, match="after 3 attempt"):
        notifier(stopped_receiver, webhook_secret, retries=2).send(
            "booking", PAYLOAD, 6
        )


def test_unsigned_webhooks_are_refused() -> None:
    with pytest.raises(ValueError):
        WebhookNotifier("http://127.0.0.1:9/", "")
