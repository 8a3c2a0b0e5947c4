"""The glue every console page shares: the app's state, the guard, rendering, headers.

A view is a plain function `view(ctx) -> Response`, run in a worker thread (storage is
synchronous). `page(permission)` wraps it into a Starlette endpoint that first checks the
session (anonymous: redirect to /login, or 401 for non-page requests), the role (403), and
for POST the CSRF token (403) before the view runs. Nothing a view renders can skip this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.console import masking
from bot.console.auth import Staff, current_staff, same_token
from bot.settings import Settings
from bot.storage import console as store
from bot.storage.database import Database

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")


@dataclass
class Console:
    """What the pages need: the database, settings, templates and the takeover functions."""

    db: Database
    settings: Settings
    tz: ZoneInfo
    handoff: Any  # bot.handoff (take / release / send_staff_reply), replaceable in tests
    intents: list[str] = field(default_factory=list)
    # the reports and lists (dashboard, conversation list): REPORTING_DATABASE_URL, a read
    # replica, when set; None reads them from `db` too
    reports_db: Database | None = None
    templates: Jinja2Templates = field(init=False)

    def __post_init__(self) -> None:
        """Build the template environment (autoescape on for every template)."""
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                                 autoescape=True, trim_blocks=True, lstrip_blocks=True)
        env.filters.update(
            when=self.when, day=self.day, mask_phone=masking.mask_phone,
            mask_email=masking.mask_email, mask_name=masking.mask_name,
            labels=lambda s: [x for x in (s or "").split(",") if x],
            pretty=lambda v: json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v,
        )
        self.templates = Jinja2Templates(env=env)

    def when(self, value: datetime | float | None) -> str:
        """A timestamp in the practice's timezone, as staff read it."""
        if value is None:
            return ""
        if isinstance(value, (int, float)):
            value = datetime.fromtimestamp(value, self.tz)
        return value.astimezone(self.tz).strftime("%d %b %Y %H:%M")

    def day(self, value: datetime | None) -> str:
        """A date in the practice's timezone."""
        return value.astimezone(self.tz).strftime("%Y-%m-%d") if value else ""


@dataclass
class Ctx:
    """One request to a view: who asks, what they sent, and helpers to answer."""

    request: Request
    console: Console
    staff: Staff
    form: FormData | None

    @property
    def db(self) -> Database:
        """The console's database."""
        return self.console.db

    @property
    def reports_db(self) -> Database:
        """Where reports and lists are read: the read replica if there is one."""
        return self.console.reports_db or self.console.db

    def field(self, name: str, default: str = "") -> str:
        """A submitted form field (or query parameter on GET), stripped."""
        source: Mapping[str, Any] = self.form if self.form is not None else self.request.query_params
        value = source.get(name, default)
        return value.strip() if isinstance(value, str) else default

    def query(self, name: str, default: str = "") -> str:
        """A query-string parameter, stripped."""
        return self.request.query_params.get(name, default).strip()

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        """Render a page with the layout's context (user, CSRF token, inbox counts)."""
        context.update(
            request=self.request, me=self.staff.user, csrf=self.staff.csrf, staff=self.staff,
            counts=store.inbox_counts(self.db), path=self.request.url.path,
        )
        context.setdefault("notice", self.query("notice")[:300])
        return self.console.templates.TemplateResponse(self.request, template, context,
                                                       status_code=status)

    def audit(self, action: str, target_kind: str | None = None,
              target_id: object | None = None, detail: str | None = None) -> None:
        """Write this person's action to the audit log."""
        store.audit(self.db, user=self.staff.user, action=action, target_kind=target_kind,
                    target_id=None if target_id is None else str(target_id), detail=detail)

    def redirect(self, url: str, message: str = "") -> Response:
        """After a POST: back to a page (303), optionally with a one-line notice."""
        if message:
            path, hash_mark, fragment = url.partition("#")
            url = (path + ("&" if "?" in path else "?") + "notice=" + quote(message)
                   + hash_mark + fragment)
        return RedirectResponse(url, status_code=303)


View = Callable[[Ctx], Response]


def page(permission: str) -> Callable[[View], Callable[[Request], Any]]:
    """Guard a view: signed in, allowed by role, and (POST) carrying the CSRF token."""

    def decorate(view: View) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            console: Console = request.app.state.console
            staff = await run_in_threadpool(current_staff, console.db, console.settings, request)
            if staff is None:
                if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
                return Response("Sign in first.", status_code=401, media_type="text/plain")
            if not staff.can(permission):
                return forbidden(console, request, staff, "Your role cannot open this page.")
            form = None
            if request.method == "POST":
                form = await request.form()
                if not same_token(form.get("csrf"), staff.csrf):
                    return forbidden(console, request, staff,
                                     "This form has expired. Go back, reload the page and try again.")
            ctx = Ctx(request, console, staff, form)
            try:
                return await run_in_threadpool(view, ctx)
            except store.NotFound:
                return HTMLResponse("Not found.", status_code=404)

        endpoint.__name__ = view.__name__
        endpoint.__doc__ = view.__doc__
        endpoint.permission = permission  # type: ignore[attr-defined]
        return endpoint

    return decorate


def forbidden(console: Console, request: Request, staff: Staff, message: str) -> Response:
    """The 403 page (it shows nothing of the record asked for)."""
    return console.templates.TemplateResponse(
        request, "forbidden.html",
        {"request": request, "me": staff.user, "csrf": staff.csrf, "staff": staff,
         "message": message, "counts": None, "path": request.url.path},
        status_code=403,
    )


class SecurityHeaders:
    """Adds CSP, frame, referrer and caching headers to every response."""

    def __init__(self, app: ASGIApp):
        """Wrap the app."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers as the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                ]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
