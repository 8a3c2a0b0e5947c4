"""The records layer decides which staff channels get an outbox row, from settings.

Storage writes rows for the channels it is given; `bot.records` gives it those that
`bot.notify.config` says are switched on. Checked on the rows in a real SQLite file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot import records
from bot.settings import SettingsError, get_settings
from bot.storage.database import _databases
from bot.storage.migrate import upgrade
from bot.storage.repository import BookingRecord

Fields = Callable[..., dict[str, Any]]


def outbox_channels(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(text("SELECT channel FROM notification_outbox ORDER BY id")).scalars()
            )
    finally:
        engine.dispose()


def bookings(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM booking_requests")).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture()
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path / "var"))
    for name in ("SMTP_HOST", "NOTIFY_EMAIL_TO", "NOTIFY_WEBHOOK_URL", "NOTIFY_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    _databases.clear()
    yield url
    get_settings.cache_clear()
    _databases.clear()


def _fields(booking_fields: Fields, key: str) -> dict[str, Any]:
    fields = booking_fields(idempotency_key=key)
    del fields["notify_channels"]
    return fields


async def test_no_notifier_configured_means_no_outbox_rows(sqlite_url: str, booking_fields: Fields) -> None:
    saved = await records.save_booking(**_fields(booking_fields, "k1"))

    assert isinstance(saved, BookingRecord)
    assert bookings(sqlite_url) == 1
    assert outbox_channels(sqlite_url) == []


async def test_configured_email_and_webhook_each_get_a_row(
    sqlite_url: str, booking_fields: Fields, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", "9")
    monkeypatch.setenv("NOTIFY_EMAIL_TO", "reception@clinic.test")
    monkeypatch.setenv("NOTIFY_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("NOTIFY_WEBHOOK_SECRET", "a-long-enough-test-secret")
    get_settings.cache_clear()

    await records.save_booking(**_fields(booking_fields, "k2"))

    assert outbox_channels(sqlite_url) == ["email", "webhook"]


async def test_webhook_without_secret_is_refused_before_saving(
    sqlite_url: str, booking_fields: Fields, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_WEBHOOK_URL", "http://127.0.0.1:9/")
    get_settings.cache_clear()

    with pytest.raises(SettingsError):
        await records.save_booking(**_fields(booking_fields, "k3"))
    assert bookings(sqlite_url) == 0
