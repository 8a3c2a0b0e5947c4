"""Red-flag and crisis alerts, acknowledged by a named clinician with an outcome."""

from __future__ import annotations

from starlette.responses import Response

from bot.console.web import Ctx, page
from bot.storage import console as store

OUTCOMES = (
    "Called the patient: advised emergency care",
    "Called the patient: booked urgent appointment",
    "Could not reach the patient: left a message",
    "Reviewed: no action needed",
)


@page("alerts")
def alert_list(ctx: Ctx) -> Response:
    """Alerts waiting for review, and the recently acknowledged ones."""
    waiting = store.list_alerts(ctx.db, acknowledged=False)
    done = store.list_alerts(ctx.db, acknowledged=True, limit=50)
    names = store.user_names(ctx.db, [a.acknowledged_by_id for a in done])
    return ctx.render("alerts.html", waiting=waiting, done=done, names=names, nav="alerts")


@page("alerts")
def alert_detail(ctx: Ctx) -> Response:
    """One alert; POST acknowledges it with an outcome."""
    alert_id = int(ctx.request.path_params["alert_id"])
    if ctx.request.method == "POST":
        outcome = ctx.field("outcome_other") or ctx.field("outcome")
        if not outcome:
            return ctx.redirect(f"/alerts/{alert_id}", "Say what was done before acknowledging.")
        store.acknowledge_alert(ctx.db, alert_id, by=ctx.staff.user, outcome=outcome)
        ctx.audit("acknowledge_alert", "alert", alert_id, outcome[:200])
        return ctx.redirect(f"/alerts/{alert_id}", "Alert acknowledged.")
    alert, flags = store.get_alert(ctx.db, alert_id)
    ctx.audit("view_alert", "alert", alert_id)
    names = store.user_names(ctx.db, [alert.acknowledged_by_id])
    return ctx.render("alert.html", alert=alert, flags=flags, outcomes=OUTCOMES,
                      by=names.get(alert.acknowledged_by_id) if alert.acknowledged_by_id else None,
                      notice=ctx.query("notice"), nav="alerts")
