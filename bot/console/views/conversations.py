"""Conversations: the filtered list, the transcript, review, notes, tags and replying."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from bot.console import takeover, transcript
from bot.console.web import Ctx, page
from bot.storage import console as store

PER_PAGE = 50
MAX_REPLY_CHARS = 2000


def parse_day(ctx: Ctx, value: str, end: bool = False) -> datetime | None:
    """A YYYY-MM-DD from a filter, as the start (or the end) of that day in the practice."""
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
    moment = datetime.combine(day, time.min, ctx.console.tz)
    return moment + timedelta(days=1) if end else moment


def filters_from(ctx: Ctx) -> store.ConversationFilter:
    """The list's filters from the query string."""
    return store.ConversationFilter(
        since=parse_day(ctx, ctx.query("from")), until=parse_day(ctx, ctx.query("to"), end=True),
        channel=ctx.query("channel")[:32], flag=ctx.query("flag")[:32],
        topic=ctx.query("topic")[:100], text=ctx.query("q")[:200], tag=ctx.query("tag")[:40],
    )


def page_number(ctx: Ctx) -> int:
    """The requested page, 1 or more."""
    try:
        return max(1, min(100_000, int(ctx.query("page", "1"))))
    except ValueError:
        return 1


@page("conversations")
def conversation_list(ctx: Ctx) -> Response:
    """All conversations, newest first, filtered and paginated."""
    filters = filters_from(ctx)
    result = store.list_conversations(ctx.reports_db, filters, page=page_number(ctx), per_page=PER_PAGE)
    args = {k: v for k, v in ctx.request.query_params.items() if k != "page" and v}
    return ctx.render(
        "conversations.html", result=result, filters=filters, args=args, flags=store.FLAGS,
        channels=store.conversation_channels(ctx.reports_db), nav="conversations",
        page_url=lambda n: "/conversations?" + urlencode({**args, "page": n}),
    )


def _transcript_context(ctx: Ctx, conversation_id: str) -> dict[str, Any]:
    events = store.conversation_events(ctx.db, conversation_id)
    lines = transcript.lines(events, store.feedback_for(ctx.db, conversation_id))
    return {
        "lines": lines, "conversation_id": conversation_id,
        "last_event": events[-1]["id"] if events else 0,
        "labels": store.corrections_of(ctx.db, conversation_id),
        "intents": ctx.console.intents,
    }


@page("conversations")
def conversation_detail(ctx: Ctx) -> Response:
    """One conversation's transcript, with everything staff can do with it."""
    conversation_id = ctx.request.path_params["conversation_id"]
    summary = store.get_summary(ctx.db, conversation_id)
    context = _transcript_context(ctx, conversation_id)
    if summary is None and not context["lines"]:
        raise store.NotFound(conversation_id)
    handoffs = store.handoffs_of(ctx.db, conversation_id)
    live = next((h for h in handoffs if h.status in ("open", "taken")), None)
    taken = transcript.taken_over(context["lines"]) or bool(live and live.status == "taken")
    ctx.audit("view_conversation", "conversation", conversation_id)
    reach = takeover.reachability(ctx.console.handoff, conversation_id) if taken else None
    notes = store.notes_for(ctx.db, conversation_id)
    reviewer = store.user_names(ctx.db, [summary.reviewed_by_id] if summary else [])
    return ctx.render(
        "conversation.html", summary=summary, handoffs=handoffs, live=live, taken=taken,
        bookings=store.bookings_of(ctx.db, conversation_id),
        alerts=store.alerts_of(ctx.db, conversation_id), notes=notes, reach=reach,
        reviewer=reviewer.get(summary.reviewed_by_id) if summary and summary.reviewed_by_id else None,
        flags=store.FLAGS, notice=ctx.query("notice"), max_reply=MAX_REPLY_CHARS,
        nav="conversations", **context,
    )


@page("conversations")
def conversation_messages(ctx: Ctx) -> Response:
    """Only the transcript (the page fetches it when new events arrive)."""
    conversation_id = ctx.request.path_params["conversation_id"]
    return ctx.render("_transcript.html", **_transcript_context(ctx, conversation_id))


def _back(conversation_id: str) -> str:
    return f"/conversations/{conversation_id}"


@page("conversations")
def review(ctx: Ctx) -> Response:
    """Mark reviewed, or not reviewed."""
    conversation_id = ctx.request.path_params["conversation_id"]
    reviewed = ctx.field("reviewed") == "1"
    store.set_reviewed(ctx.db, conversation_id, ctx.staff.user, reviewed)
    ctx.audit("review" if reviewed else "unreview", "conversation", conversation_id)
    return ctx.redirect(_back(conversation_id), "Marked reviewed." if reviewed else "Review cleared.")


@page("conversations")
def tags(ctx: Ctx) -> Response:
    """Replace the conversation's tags."""
    conversation_id = ctx.request.path_params["conversation_id"]
    stored = store.set_tags(ctx.db, conversation_id, ctx.field("tags"))
    ctx.audit("tag", "conversation", conversation_id, stored)
    return ctx.redirect(_back(conversation_id), "Tags saved.")


@page("notes")
def note(ctx: Ctx) -> Response:
    """Add a note (clinicians and admins)."""
    conversation_id = ctx.request.path_params["conversation_id"]
    body = ctx.field("body")
    if not body:
        return ctx.redirect(_back(conversation_id), "A note needs some text.")
    store.add_note(ctx.db, conversation_id, ctx.staff.user, body)
    ctx.audit("note", "conversation", conversation_id)
    return ctx.redirect(_back(conversation_id) + "#notes", "Note added.")


@page("reply")
def take(ctx: Ctx) -> Response:
    """Take the conversation over: the bot pauses, staff reply."""
    conversation_id = ctx.request.path_params["conversation_id"]
    outcome = takeover.take(ctx.console.handoff, conversation_id, by=ctx.staff.user.display_name)
    ctx.audit("take_over", "conversation", conversation_id,
              None if outcome.delivered else outcome.reason)
    message = ("You are now replying; the assistant is paused." if outcome.delivered
               else f"Taken over, but: {outcome.reason}")
    return ctx.redirect(_back(conversation_id) + "#reply", message)


@page("reply")
def release(ctx: Ctx) -> Response:
    """Give the conversation back to the bot."""
    conversation_id = ctx.request.path_params["conversation_id"]
    outcome = takeover.release(ctx.console.handoff, conversation_id,
                               by=ctx.staff.user.display_name)
    ctx.audit("release", "conversation", conversation_id,
              None if outcome.delivered else outcome.reason)
    message = ("The assistant answers this conversation again." if outcome.delivered
               else f"Released, but: {outcome.reason}")
    return ctx.redirect(_back(conversation_id), message)


@page("reply")
def reply(ctx: Ctx) -> Response:
    """Send a staff reply to the patient on their channel."""
    conversation_id = ctx.request.path_params["conversation_id"]
    text = ctx.field("text")
    if not text:
        return ctx.redirect(_back(conversation_id) + "#reply", "Type a reply first.")
    if len(text) > MAX_REPLY_CHARS:
        return ctx.redirect(_back(conversation_id) + "#reply",
                            f"Replies can have at most {MAX_REPLY_CHARS} characters.")
    outcome = takeover.reply(ctx.console.handoff, conversation_id, text,
                             ctx.staff.user.display_name)
    ctx.audit("reply", "conversation", conversation_id,
              "delivered" if outcome.delivered else f"not delivered: {outcome.reason}")
    message = ("Reply sent." if outcome.delivered
               else f"Not delivered: {outcome.reason}")
    return ctx.redirect(_back(conversation_id) + "#reply", message)


@page("improve")
def label(ctx: Ctx) -> Response:
    """"The bot got this wrong": the right intent, or a new topic, for one user message."""
    conversation_id = ctx.request.path_params["conversation_id"]
    stamp = ctx.field("timestamp")[:32]
    message = next((line for line in transcript.lines(store.conversation_events(ctx.db, conversation_id))
                    if line.kind == "user" and line.stamp == stamp), None)
    if message is None:
        raise store.NotFound(f"{conversation_id} message {stamp}")
    intent = ctx.field("intent")
    new_topic = ctx.field("new_topic")
    if intent and intent not in ctx.console.intents:
        return ctx.redirect(_back(conversation_id), "Choose an intent from the list.")
    if not intent and not new_topic:
        return ctx.redirect(_back(conversation_id), "Choose the right intent or name the new topic.")
    store.add_correction(
        ctx.db, conversation_id=conversation_id, message_timestamp=stamp, text=message.text,
        predicted_intent=message.intent,
        predicted_confidence=f"{message.confidence:.3f}" if message.confidence is not None else None,
        corrected_intent=intent or None, new_topic=None if intent else new_topic,
        by=ctx.staff.user,
    )
    ctx.audit("label_message", "conversation", conversation_id, intent or f"new topic: {new_topic}")
    return ctx.redirect(_back(conversation_id) + f"#m{message.event_id}", "Thanks: label saved.")

