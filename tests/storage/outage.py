"""Helpers for the outage tests: rows counted in the real database, waits without sleeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sqlalchemy import create_engine, text


def count(url: str, table: str, conversation_id: str) -> int:
    """Rows of `table` for one conversation."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text(f"SELECT count(*) FROM {table} WHERE conversation_id = :c"), {"c": conversation_id}
                ).scalar_one()
            )
    finally:
        engine.dispose()


async def eventually(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait (without blocking the loop) until `condition()` is true, at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.05)
