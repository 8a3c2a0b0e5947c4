"""The current time, injectable: opening-hours logic is tested at a chosen instant.

`CLINIC_CLOCK` (ISO 8601 with offset, e.g. 2026-11-30T22:00:00+08:00) fixes "now" for a
test run; production leaves it unset and gets the wall clock.
"""

from __future__ import annotations

from datetime import datetime, timezone

from bot.settings import get_settings


def now() -> datetime:
    """Timezone-aware current time (or the injected one)."""
    override = get_settings().clock_override
    if override:
        fixed = datetime.fromisoformat(override)
        return fixed if fixed.tzinfo else fixed.replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc)
