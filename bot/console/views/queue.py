"""The work queue: bookings and call-backs through new -> contacted -> booked / no answer / closed."""

from __future__ import annotations

from starlette.responses import Response

from bot.console.web import Ctx, page
from bot.storage import console as store
from bot.storage.models import BOOKING_STATUSES, HANDOFF_STATUSES

STATUS_LABELS = {
    "new": "New", "open": "Open", "taken": "Staff replying", "released": "Back with the bot",
    "contacted": "Contacted", "booked": "Booked", "no_answer": "No answer", "closed": "Closed",
}


@page("queue")
def queue(ctx: Ctx) -> Response:
    """Open bookings and handoffs (or every one with ?show=all)."""
    show_all = ctx.query("show") == "all"
    bookings = store.list_bookings(ctx.db, BOOKING_STATUSES if show_all else store.OPEN_BOOKING_STATUSES)
    handoffs = store.list_handoffs(ctx.db, HANDOFF_STATUSES if show_all else store.OPEN_HANDOFF_STATUSES)
    names = store.user_names(ctx.db, [b.assignee_id for b in bookings]
                             + [h.assignee_id for h in handoffs])
    return ctx.render("queue.html", bookings=bookings, handoffs=handoffs, names=names,
                      show_all=show_all, labels=STATUS_LABELS, nav="queue")


def _update(ctx: Ctx, kind: str, ref_id: int) -> str:
    status = ctx.field("status") or None
    assignee = ctx.field("assignee")
    unassign = assignee == "none"
    assignee_id = None
    if assignee == "me":
        assignee_id = ctx.staff.user.id
    elif assignee.isdigit():
        assignee_id = store.get_user(ctx.db, int(assignee)).id
    try:
        change = store.update_request(ctx.db, kind, ref_id, by=ctx.staff.user, status=status,
                                      assignee_id=assignee_id, note=ctx.field("note"),
                                      unassign=unassign)
    except ValueError as exc:
        return str(exc)
    if change is None:
        return "Nothing changed."
    ctx.audit(f"update_{kind}", kind, ref_id,
              f"{change.from_status} -> {change.to_status}" + (" (note)" if change.note else ""))
    return f"Saved: {STATUS_LABELS.get(change.to_status, change.to_status)}."


def _detail(ctx: Ctx, kind: str) -> Response:
    ref_id = int(ctx.request.path_params["ref_id"])
    if ctx.request.method == "POST":
        message = _update(ctx, kind, ref_id)
        return ctx.redirect(f"/queue/{kind}s/{ref_id}", message)
    row = store.get_booking(ctx.db, ref_id) if kind == "booking" else store.get_handoff(ctx.db, ref_id)
    ctx.audit(f"view_{kind}", kind, ref_id)
    entries = store.history(ctx.db, kind, ref_id)
    users = store.list_users(ctx.db)
    names = store.user_names(ctx.db, [row.assignee_id, *(e.assignee_id for e in entries)])
    return ctx.render(
        "request.html", kind=kind, row=row, history=entries, names=names,
        users=[u for u in users if u.active], labels=STATUS_LABELS,
        statuses=BOOKING_STATUSES if kind == "booking" else HANDOFF_STATUSES,
        notice=ctx.query("notice"), nav="queue",
    )


@page("queue")
def booking(ctx: Ctx) -> Response:
    """One booking request in full, its history, and the form to move it on."""
    return _detail(ctx, "booking")


@page("queue")
def handoff(ctx: Ctx) -> Response:
    """One handoff or call-back request in full, its history, and the form to move it on."""
    return _detail(ctx, "handoff")
