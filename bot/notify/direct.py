"""Tell staff now, without the outbox: for when the outbox's database is unreachable.

The outbox (`bot.notify.outbox`) lives in the database, so it cannot carry the news that
the database is away, nor a red-flag alert that could only be spooled. These go straight
through the configured notifiers, once, best effort: a failure is logged, never raised.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from bot.settings import get_settings

logger = logging.getLogger(__name__)


def send_now(kind: str, payload: Mapping[str, Any], tag: str) -> int:
    """Send one notification on every configured channel; returns how many accepted it."""
    from bot.notify.outbox import build_notifiers

    try:
        notifiers = build_notifiers(get_settings())
    except Exception:  # misconfigured notifiers must not hide the problem being reported
        logger.exception("cannot build notifiers for a direct %s alert", kind)
        return 0
    delivered = 0
    delivery_id = f"{tag}-{uuid.uuid4().hex[:12]}"
    for channel, notifier in notifiers.items():
        try:
            notifier.send(kind, payload, delivery_id)
            delivered += 1
        except Exception:  # noqa: BLE001 - best effort, logged
            logger.exception("direct %s alert via %s failed", kind, channel)
    return delivered
