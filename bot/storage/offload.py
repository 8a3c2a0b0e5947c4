"""Blocking database work off the event loop, with a time budget, in daemon threads.

`asyncio.to_thread` uses the loop's shared executor, a handful of threads on a 2-core
machine: a database that hangs would fill it, and every other `to_thread` in the process
would queue behind it. One daemon thread per call is cheap at a clinic's message rate,
starves nobody, cannot delay shutdown, and the number stuck on a silent database is
bounded by the connection pool (its timeout fails the others fast).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class DatabaseStalled(TimeoutError):
    """The database did not answer within the time budget (DB_OPERATION_TIMEOUT_SECONDS)."""


async def run_blocking(function: Callable[[threading.Event], T], budget: float) -> T:
    """Run `function(abandoned)` in a daemon thread; give up after `budget` seconds.

    `abandoned` is set when the budget runs out, so work that wakes up later can refrain
    from committing (see `bot.storage.database.abandon_when`).

    Raises:
        DatabaseStalled: No result within `budget`.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    abandoned = threading.Event()

    def deliver(setter: Callable[[Any], None], value: Any) -> None:
        if not future.done():
            setter(value)

    def work() -> None:
        try:
            result = function(abandoned)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            outcome: tuple[Callable[[Any], None], Any] = (future.set_exception, exc)
        else:
            outcome = (future.set_result, result)
        with contextlib.suppress(RuntimeError):  # the loop may be closed by now
            loop.call_soon_threadsafe(deliver, *outcome)

    threading.Thread(target=work, name="database-work", daemon=True).start()
    try:
        return await asyncio.wait_for(future, budget)
    except asyncio.TimeoutError as exc:
        abandoned.set()
        raise DatabaseStalled(f"the database did not answer within {budget:g} s") from exc
