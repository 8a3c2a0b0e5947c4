"""Administration: staff accounts, the audit log, and retention ("forget this patient")."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from bot.console import auth
from bot.console.views.conversations import page_number, parse_day
from bot.console.web import Ctx, page
from bot.storage import console as store
from bot.storage import retention as retention_store
from bot.storage.models import STAFF_ROLES
from bot.storage.retention import RetentionReport


@page("admin")
def users(ctx: Ctx) -> Response:
    """List accounts; POST creates one."""
    if ctx.request.method == "POST":
        username, name, role = ctx.field("username"), ctx.field("name"), ctx.field("role")
        if not username or not name or role not in STAFF_ROLES:
            return ctx.redirect("/admin/users", "Username, name and role are all needed.")
        try:
            password_hash = auth.hash_password(ctx.field("password"))
            user = store.create_user(ctx.db, username=username[:64], display_name=name[:100],
                                     role=role, password_hash=password_hash)
        except auth.PasswordRejected as exc:
            return ctx.redirect("/admin/users", str(exc))
        except IntegrityError:
            return ctx.redirect("/admin/users", "That username is taken.")
        ctx.audit("create_user", "staff_user", user.id, f"{user.username} ({role})")
        return ctx.redirect("/admin/users", f"Account {user.username} created.")
    return ctx.render("users.html", users=store.list_users(ctx.db), roles=STAFF_ROLES,
                      descriptions=auth.ROLE_DESCRIPTIONS, notice=ctx.query("notice"), nav="admin")


@page("admin")
def user_active(ctx: Ctx) -> Response:
    """Deactivate (ends their sessions) or reactivate an account."""
    user_id = int(ctx.request.path_params["user_id"])
    active = ctx.field("active") == "1"
    if user_id == ctx.staff.user.id and not active:
        return ctx.redirect("/admin/users", "You cannot deactivate your own account.")
    store.set_user_active(ctx.db, user_id, active)
    ctx.audit("activate_user" if active else "deactivate_user", "staff_user", user_id)
    return ctx.redirect("/admin/users", "Account activated." if active else "Account deactivated.")


@page("admin")
def user_password(ctx: Ctx) -> Response:
    """Set a new password for an account (its sessions end)."""
    user_id = int(ctx.request.path_params["user_id"])
    try:
        store.set_password_hash(ctx.db, user_id, auth.hash_password(ctx.field("password")))
    except auth.PasswordRejected as exc:
        return ctx.redirect("/admin/users", str(exc))
    ctx.audit("reset_password", "staff_user", user_id)
    return ctx.redirect("/admin/users", "Password reset; that account must sign in again.")


@page("admin")
def audit_log(ctx: Ctx) -> Response:
    """Who did what, when, filtered."""
    result = store.audit_entries(
        ctx.db, username=ctx.query("user")[:64], action=ctx.query("action")[:64],
        since=parse_day(ctx, ctx.query("from")), until=parse_day(ctx, ctx.query("to"), end=True),
        page=page_number(ctx),
    )
    args = {k: v for k, v in ctx.request.query_params.items() if k != "page" and v}
    return ctx.render("audit.html", result=result, actions=store.audit_actions(ctx.db),
                      args=args, nav="admin")


def _report_rows(report: RetentionReport) -> list[tuple[str, Any]]:
    """A retention report as (place, count) rows for the page."""
    return [
        ("conversations", report.conversations),
        *report.deleted.items(),
        *(("NOT CHECKED", place) for place in report.unreached),
    ]


@page("admin")
def retention(ctx: Ctx) -> Response:
    """Delete old conversations and requests, or everything about one patient."""
    report: list[tuple[str, Any]] | None = None
    error = ""
    if ctx.request.method == "POST":
        what = ctx.field("what")
        if what == "purge" and ctx.field("days").isdigit() and int(ctx.field("days")) >= 1:
            days = int(ctx.field("days"))
            report = _report_rows(retention_store.purge(days, database=ctx.db))
            ctx.audit("retention_purge", "retention", None, f"older than {days} days")
        elif what == "forget" and (ctx.field("phone") or ctx.field("conversation_id")):
            report = _report_rows(retention_store.forget(
                phone=ctx.field("phone") or None,
                conversation_id=ctx.field("conversation_id") or None,
                database=ctx.db,
            ))
            ctx.audit("retention_forget", "retention", None,
                      "by phone" if ctx.field("phone") else f"conversation {ctx.field('conversation_id')}")
        else:
            error = "Give a number of days (1 or more), or a phone number or conversation id."
    return ctx.render("retention.html", report=report,
                      error=error, nav="admin")
