"""The dashboard: how the assistant did over a chosen period, with charts and a CSV export."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta

from starlette.responses import Response

from bot.console.charts import bars
from bot.console.views.conversations import parse_day
from bot.console.web import Ctx, page
from bot.storage import console as store
from bot.storage.models import utcnow

DEFAULT_DAYS = 14
MAX_DAYS = 366


def period(ctx: Ctx) -> tuple[datetime, datetime]:
    """The period from ?from=&to= (days in the practice's timezone), default two weeks."""
    today = utcnow().astimezone(ctx.console.tz).date()
    until = parse_day(ctx, ctx.query("to"), end=True) or (
        datetime.combine(today, time.min, ctx.console.tz) + timedelta(days=1))
    since = parse_day(ctx, ctx.query("from")) or until - timedelta(days=DEFAULT_DAYS)
    if since >= until or until - since > timedelta(days=MAX_DAYS):
        since = until - timedelta(days=DEFAULT_DAYS)
    return since, until


@page("dashboard")
def dashboard(ctx: Ctx) -> Response:
    """Figures and charts for the period."""
    since, until = period(ctx)
    figures = store.dashboard(ctx.reports_db, since, until, ctx.console.tz)
    per_day = bars([(day[5:], n) for day, n in figures.per_day])
    hours = bars([(f"{h:02d}", n) for h, n in enumerate(figures.hours)])
    return ctx.render(
        "dashboard.html", f=figures, per_day=per_day, hours=hours,
        topic_peak=max((n for _, n in figures.top_topics), default=1),
        since=since.date().isoformat(), until=(until - timedelta(days=1)).date().isoformat(),
        nav="dashboard",
    )


@page("export")
def dashboard_csv(ctx: Ctx) -> Response:
    """The period's figures as CSV (no personal data)."""
    since, until = period(ctx)
    f = store.dashboard(ctx.reports_db, since, until, ctx.console.tz)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "key", "value", "extra"])
    writer.writerow(["period", "from", since.date().isoformat(), ""])
    writer.writerow(["period", "to", (until - timedelta(days=1)).date().isoformat(), ""])
    for key, value in [("conversations", f.conversations), ("not_understood", f.not_understood),
                       ("contained", f.contained), ("bookings", f.bookings),
                       ("handoffs", f.handoffs), ("red_flags", f.red_flags), ("crisis", f.crisis)]:
        writer.writerow(["total", key, value, ""])
    for day, n in f.per_day:
        writer.writerow(["per_day", day, n, ""])
    for topic, n in f.top_topics:
        writer.writerow(["topic", topic, n, ""])
    for topic, up, down in f.feedback:
        writer.writerow(["feedback", topic, up, down])
    for hour, n in enumerate(f.hours):
        writer.writerow(["hour", f"{hour:02d}", n, ""])
    ctx.audit("export_dashboard", "dashboard", None, f"{since.date()}..{until.date()}")
    return Response(out.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="dashboard.csv"'})
