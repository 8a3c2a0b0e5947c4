"""Signing in and out (the only pages anyone may open without a session)."""

from __future__ import annotations

from urllib.parse import urlparse

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.console import auth
from bot.console.web import Console, Ctx, page


def _safe_next(target: str) -> str:
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _form(console: Console, request: Request, token: str, error: str = "",
          username: str = "", status: int = 200) -> Response:
    response = console.templates.TemplateResponse(
        request, "login.html",
        {"request": request, "login_token": token, "error": error, "username": username,
         "next": _safe_next(request.query_params.get("next", "/"))},
        status_code=status,
    )
    response.set_cookie(auth.LOGIN_COOKIE, token, httponly=True, samesite="lax",
                        secure=auth.is_secure(request, console.settings), path="/login")
    return response


async def login(request: Request) -> Response:
    """GET: the sign-in form; POST: check the password and start a session."""
    console: Console = request.app.state.console
    if request.method == "GET":
        token = request.cookies.get(auth.LOGIN_COOKIE) or auth.new_token()
        return _form(console, request, token)
    form = await request.form()
    expected = request.cookies.get(auth.LOGIN_COOKIE, "")
    if not auth.same_token(form.get("csrf"), expected):
        return _form(console, request, auth.new_token(),
                     "The sign-in form expired. Please try again.", status=403)
    username = str(form.get("username", ""))
    address = auth.client_address(request, console.settings)
    result = await run_in_threadpool(auth.log_in, console.db, console.settings, username,
                                     str(form.get("password", "")), address)
    if result.token is None:
        return _form(console, request, expected, result.error or auth.WRONG_LOGIN,
                     username=username[:64], status=401)
    response = RedirectResponse(_safe_next(str(form.get("next", "/"))), status_code=303)
    response.set_cookie(auth.SESSION_COOKIE, result.token, httponly=True, samesite="lax",
                        secure=auth.is_secure(request, console.settings), path="/",
                        max_age=console.settings.console_session_hours * 3600)
    response.delete_cookie(auth.LOGIN_COOKIE, path="/login")
    return response


@page("inbox")
def logout(ctx: Ctx) -> Response:
    """End this browser's session."""
    auth.log_out(ctx.db, ctx.request)
    ctx.audit("logout")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response
