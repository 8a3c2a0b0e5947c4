"""The home page: what needs a person now, and the live counts in the navigation."""

from __future__ import annotations

import asyncio
import json
from typing import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from bot.console.web import Ctx, page
from bot.storage import console as store

EVENTS_EVERY_SECONDS = 3.0
EVENTS_MAX_SECONDS = 300.0  # the browser reconnects; a session that expired then stops


@page("inbox")
def inbox(ctx: Ctx) -> Response:
    """Open handoffs, call-backs, new bookings and unacknowledged alerts, newest first."""
    return ctx.render("inbox.html", items=store.inbox_items(ctx.db), nav="inbox")


@page("inbox")
def events(ctx: Ctx) -> Response:
    """Server-sent events: inbox counts, and a conversation's newest event id if asked."""
    db = ctx.db
    conversation_id = ctx.query("conversation")[:255]
    watch_conversation = bool(conversation_id) and ctx.staff.can("conversations")
    every = EVENTS_EVERY_SECONDS

    async def stream() -> AsyncIterator[str]:
        last: str | None = None
        waited = 0.0
        yield "retry: 3000\n\n"
        while waited < EVENTS_MAX_SECONDS:
            counts = await run_in_threadpool(store.inbox_counts, db)
            payload = counts.as_dict()
            if watch_conversation:
                payload["conversation_last_event"] = await run_in_threadpool(
                    store.last_event_id, db, conversation_id)
            data = json.dumps(payload, sort_keys=True)
            if data != last:
                yield f"event: counts\ndata: {data}\n\n"
                last = data
            else:
                yield ": still here\n\n"
            await asyncio.sleep(every)
            waited += every

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"X-Accel-Buffering": "no"})
