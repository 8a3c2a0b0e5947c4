"""What every staff notifier promises, so the outbox can treat email and webhook alike.

A notifier sends one notification (kind, payload, delivery id) and either returns or
raises `NotificationError`; it never touches the database. Retrying later is the
outbox's job, not the notifier's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


class NotificationError(RuntimeError):
    """A notification could not be delivered; the message says why, without secrets."""


@runtime_checkable
class Notifier(Protocol):
    """Sends one notification on one channel (``email`` or ``webhook``)."""

    channel: str

    def send(
        self, kind: str, payload: Mapping[str, Any], delivery_id: int | str
    ) -> None:
        """Deliver the notification or raise `NotificationError`.

        Args:
            kind: ``booking``, ``handoff`` or ``red_flag``.
            payload: The outbox payload (see `bot.storage.bookings.booking_payload` and the like).
            delivery_id: The outbox row id; receivers use it to drop duplicates.
        """
        ...
