"""The staff console as an ASGI app: its routes, each with the permission it needs.

`create_app()` builds it for a database (the one from settings by default); `ROUTES`
is the single list of paths a test walks anonymously and as every role.
"""

from __future__ import annotations

from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.console.views import admin, alerts, conversations, dashboard, improve, inbox, login, queue
from bot.console.web import STATIC, Console, SecurityHeaders
from bot.profile import get_profile
from bot.settings import PROJECT_ROOT, Settings, get_settings
from bot.storage.database import Database, get_database

C = "/conversations/{conversation_id}"
ROUTES = [
    Route("/login", login.login, methods=["GET", "POST"]),
    Route("/logout", login.logout, methods=["POST"]),
    Route("/", inbox.inbox),
    Route("/events", inbox.events),
    Route("/conversations", conversations.conversation_list),
    Route(C, conversations.conversation_detail),
    Route(C + "/messages", conversations.conversation_messages),
    Route(C + "/review", conversations.review, methods=["POST"]),
    Route(C + "/tags", conversations.tags, methods=["POST"]),
    Route(C + "/notes", conversations.note, methods=["POST"]),
    Route(C + "/take", conversations.take, methods=["POST"]),
    Route(C + "/release", conversations.release, methods=["POST"]),
    Route(C + "/reply", conversations.reply, methods=["POST"]),
    Route(C + "/label", conversations.label, methods=["POST"]),
    Route("/queue", queue.queue),
    Route("/queue/bookings/{ref_id:int}", queue.booking, methods=["GET", "POST"]),
    Route("/queue/handoffs/{ref_id:int}", queue.handoff, methods=["GET", "POST"]),
    Route("/alerts", alerts.alert_list),
    Route("/alerts/{alert_id:int}", alerts.alert_detail, methods=["GET", "POST"]),
    Route("/improve", improve.improve),
    Route("/improve/export.yml", improve.export),
    Route("/dashboard", dashboard.dashboard),
    Route("/dashboard.csv", dashboard.dashboard_csv),
    Route("/admin/users", admin.users, methods=["GET", "POST"]),
    Route("/admin/users/{user_id:int}/active", admin.user_active, methods=["POST"]),
    Route("/admin/users/{user_id:int}/password", admin.user_password, methods=["POST"]),
    Route("/admin/audit", admin.audit_log),
    Route("/admin/retention", admin.retention, methods=["GET", "POST"]),
]


def domain_intents() -> list[str]:
    """The intents staff can choose from when they correct the bot (domain.yml)."""
    data = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8")) or {}
    names = []
    for item in data.get("intents") or []:
        name = next(iter(item)) if isinstance(item, dict) else item
        names.append(str(name))
    return sorted(names)


def create_app(database: Database | None = None, *, settings: Settings | None = None,
               handoff: Any = None) -> Starlette:
    """The console for this database; `handoff` defaults to `bot.handoff`."""
    if handoff is None:
        from bot import handoff as handoff_module

        handoff = handoff_module
    settings = settings or get_settings()
    replica = settings.reporting_database_url
    console = Console(db=database or get_database(), settings=settings,
                      tz=get_profile().tz, handoff=handoff, intents=domain_intents(),
                      reports_db=get_database(replica) if replica else None)
    app = Starlette(
        routes=[*ROUTES, Mount("/static", StaticFiles(directory=str(STATIC)), name="static")],
        middleware=[Middleware(SecurityHeaders)],
    )
    app.state.console = console
    return app
