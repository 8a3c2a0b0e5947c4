"""Nothing in the console is readable without signing in, and each role sees only its pages.

Walks every route of `bot.console.app.ROUTES` anonymously and as each role, and checks
CSRF rejection, login lockout, logout and session expiry against the real database.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
from console_seed import PASSWORD
from console_support import ConsoleServer, csrf_of
from sqlalchemy import select, update

from bot.console import auth
from bot.console.app import ROUTES
from bot.storage import console as store
from bot.storage.models import AuditEntry, StaffSession, StaffUser, utcnow

PATIENT_DETAILS = ("Mary O'Neill", "+6591234567", "cauda_equina", "MRI results")


def concrete(path: str, console: ConsoleServer, spare_user_id: int) -> str:
    """A route's path with real ids of the sample data."""
    if path.startswith("/queue/handoffs"):
        ref = console.ids["handoff"]
    else:
        ref = console.ids["booking"]
    return (path.replace("{conversation_id}", console.ids["book"])
            .replace("{ref_id:int}", str(ref))
            .replace("{alert_id:int}", str(console.ids["alert"]))
            .replace("{user_id:int}", str(spare_user_id)))


def guarded_routes() -> list[tuple[str, str, str]]:
    """(path, method, permission) of every route that needs a session."""
    walk = []
    for route in ROUTES:
        permission = getattr(route.endpoint, "permission", None)
        if permission is None:
            assert route.path == "/login", f"{route.path} has no permission"
            continue
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                walk.append((route.path, method, permission))
    return walk


def spare_user(console: ConsoleServer) -> int:
    user = store.create_user(console.db, username="spare", display_name="Spare", role="receptionist",
                             password_hash=auth.hash_password(PASSWORD))
    return int(user.id)


def fetch(session: requests.Session, method: str, url: str, data: dict[str, Any] | None = None) -> requests.Response:
    if url.endswith("/events"):
        with session.get(url, stream=True, allow_redirects=False,
                         headers={"Accept": "text/event-stream"}, timeout=10) as response:
            body = next(response.iter_content(256), b"") if response.status_code == 200 else response.content
            response._content = body  # type: ignore[attr-defined]
            return response
    return session.request(method, url, data=data, allow_redirects=False,
                           headers={"Accept": "text/html"}, timeout=30)


def test_every_route_is_closed_to_anonymous_visitors(console: ConsoleServer) -> None:
    spare = spare_user(console)
    anonymous = requests.Session()
    for path, method, _ in guarded_routes():
        url = console.url + concrete(path, console, spare)
        response = fetch(anonymous, method, url, {"csrf": "x", "text": "hi"})
        if method == "GET" and not path.endswith("/events"):
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next="), path
        else:
            assert response.status_code == 401, (method, path)
        for detail in PATIENT_DETAILS:
            assert detail not in response.text, (path, detail)
    assert console.handoff.calls == []


@pytest.mark.parametrize("role", ["receptionist", "clinician", "admin"])
def test_each_role_opens_exactly_its_pages(console: ConsoleServer, role: str) -> None:
    spare = spare_user(console)
    session = console.login(role)
    token = csrf_of(session, console.url + "/")
    for path, method, permission in guarded_routes():
        if path == "/logout":
            continue
        url = console.url + concrete(path, console, spare)
        response = fetch(session, method, url, {"csrf": token, "active": "1"} if method == "POST" else None)
        if auth.allowed(role, permission):
            assert response.status_code in (200, 303, 404), (role, method, path, response.status_code)
            assert response.status_code != 404 or path.endswith("/label"), (role, path)
        else:
            assert response.status_code == 403, (role, method, path, response.status_code)
            for detail in PATIENT_DETAILS:
                assert detail not in response.text, (role, path, detail)


def test_roles_as_the_clinic_defined_them() -> None:
    assert not auth.allowed("receptionist", "alerts")
    assert not auth.allowed("receptionist", "notes")
    assert auth.allowed("receptionist", "reply") and auth.allowed("receptionist", "queue")
    assert auth.allowed("clinician", "alerts") and auth.allowed("clinician", "notes")
    assert not auth.allowed("clinician", "admin") and not auth.allowed("clinician", "export")
    assert all(auth.allowed("admin", p) for p in auth.PERMISSIONS)


def test_a_post_without_the_sessions_csrf_token_is_refused(console: ConsoleServer) -> None:
    session = console.login("clinician")
    booking = f"{console.url}/queue/bookings/{console.ids['booking']}"
    for token in (None, "forged", csrf_of(console.login("admin"), console.url + "/")):
        data = {"status": "contacted"} if token is None else {"status": "contacted", "csrf": token}
        response = session.post(booking, data=data, allow_redirects=False)
        assert response.status_code == 403
        assert "form has expired" in response.text
    assert store.get_booking(console.db, console.ids["booking"]).status == "new"
    assert store.history(console.db, "booking", console.ids["booking"]) == []

    response = session.post(booking, data={"status": "contacted", "csrf": csrf_of(session, booking)},
                            allow_redirects=False)
    assert response.status_code == 303
    assert store.get_booking(console.db, console.ids["booking"]).status == "contacted"


def test_login_form_needs_its_own_token(console: ConsoleServer) -> None:
    response = requests.post(console.url + "/login", data={"username": "ada", "password": PASSWORD},
                             allow_redirects=False)
    assert response.status_code == 403
    assert auth.SESSION_COOKIE not in response.cookies


def test_unknown_user_and_wrong_password_get_the_same_answer(console: ConsoleServer) -> None:
    wrong = console.try_login(requests.Session(), "ada", "not the password")
    unknown = console.try_login(requests.Session(), "nobody-here", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert auth.WRONG_LOGIN in wrong.text and auth.WRONG_LOGIN in unknown.text


def test_repeated_failures_lock_the_account_with_a_growing_delay(console: ConsoleServer) -> None:
    for _ in range(auth.FREE_FAILURES - 1):
        assert auth.WRONG_LOGIN in console.try_login(requests.Session(), "rita", "wrong password").text
    locked = console.try_login(requests.Session(), "rita", "wrong password")
    assert auth.LOCKED_LOGIN in locked.text
    # the right password does not get in while locked
    right = console.try_login(requests.Session(), "rita", PASSWORD)
    assert right.status_code == 401 and auth.LOCKED_LOGIN in right.text
    with console.db.session_scope() as session:
        rita = session.scalars(select(StaffUser).where(StaffUser.username == "rita")).one()
        first_lock = rita.locked_until - utcnow()
        assert timedelta(seconds=20) < first_lock <= timedelta(seconds=auth.LOCK_BASE_SECONDS)
        rita.locked_until = utcnow() - timedelta(seconds=1)  # the lock ran out
    again = console.try_login(requests.Session(), "rita", "wrong password")
    assert auth.LOCKED_LOGIN in again.text
    with console.db.session_scope() as session:
        rita = session.scalars(select(StaffUser).where(StaffUser.username == "rita")).one()
        assert rita.locked_until - utcnow() > timedelta(seconds=auth.LOCK_BASE_SECONDS)
        rita.locked_until = utcnow() - timedelta(seconds=1)
    assert console.try_login(requests.Session(), "rita", PASSWORD).status_code == 303


def test_an_unknown_username_locks_like_a_real_one(console: ConsoleServer) -> None:
    answers = [console.try_login(requests.Session(), "ghost", "guess").text
               for _ in range(auth.FREE_FAILURES + 1)]
    assert auth.WRONG_LOGIN in answers[0]
    assert auth.LOCKED_LOGIN in answers[-1]


def test_one_address_trying_many_names_is_slowed_down(console: ConsoleServer) -> None:
    for i in range(auth.ADDRESS_MAX_FAILURES):
        console.try_login(requests.Session(), f"guess{i}", "x", address="203.0.113.9")
    refused = console.try_login(requests.Session(), "ada", PASSWORD, address="203.0.113.9")
    assert refused.status_code == 401 and auth.LOCKED_LOGIN in refused.text
    # another address is not affected
    assert console.try_login(requests.Session(), "ada", PASSWORD, address="198.51.100.7").status_code == 303


def test_session_cookie_flags_and_only_a_hash_in_the_database(console: ConsoleServer) -> None:
    session = requests.Session()
    response = console.try_login(session, "ada", PASSWORD)
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    token = session.cookies[auth.SESSION_COOKIE]
    with console.db.session_scope() as db_session:
        stored = db_session.scalars(select(StaffSession.token_hash)).all()
    assert auth.token_hash(token) in stored and token not in stored
    proxied = console.try_login(requests.Session(), "ada", PASSWORD)
    assert "Secure" not in proxied.headers["set-cookie"]
    page = requests.get(console.url + "/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in page.headers["set-cookie"]
    token_field = page.text.split('name="csrf" value="')[1].split('"')[0]
    tls = requests.post(console.url + "/login", headers={"X-Forwarded-Proto": "https"},
                        cookies={auth.LOGIN_COOKIE: page.cookies[auth.LOGIN_COOKIE]},
                        data={"csrf": token_field, "username": "ada", "password": PASSWORD},
                        allow_redirects=False)
    assert tls.status_code == 303 and "Secure" in tls.headers["set-cookie"]


def test_logout_ends_the_session(console: ConsoleServer) -> None:
    session = console.login("receptionist")
    token = csrf_of(session, console.url + "/")
    assert session.post(console.url + "/logout", data={"csrf": token}, allow_redirects=False).status_code == 303
    old_cookie = {auth.SESSION_COOKIE: session.cookies.get(auth.SESSION_COOKIE) or ""}
    with console.db.session_scope() as db_session:
        assert db_session.scalars(select(StaffSession)).all() == []
    again = requests.get(console.url + "/queue", cookies=old_cookie, allow_redirects=False,
                         headers={"Accept": "text/html"})
    assert again.status_code == 303 and again.headers["location"].startswith("/login")


def test_idle_and_absolute_expiry_end_a_session(console: ConsoleServer) -> None:
    session = console.login("receptionist")
    assert session.get(console.url + "/queue", allow_redirects=False).status_code == 200
    with console.db.session_scope() as db_session:
        db_session.execute(update(StaffSession).values(last_seen_at=utcnow() - timedelta(minutes=31)))
    assert session.get(console.url + "/queue", allow_redirects=False,
                       headers={"Accept": "text/html"}).status_code == 303

    session = console.login("receptionist")
    with console.db.session_scope() as db_session:
        db_session.execute(update(StaffSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert session.get(console.url + "/queue", allow_redirects=False,
                       headers={"Accept": "text/html"}).status_code == 303


def test_deactivated_user_is_signed_out_everywhere(console: ConsoleServer) -> None:
    rita = console.login("receptionist")
    admin = console.login("admin")
    token = csrf_of(admin, console.url + "/admin/users")
    admin.post(f"{console.url}/admin/users/{console.users['receptionist'].id}/active",
               data={"csrf": token, "active": "0"})
    assert rita.get(console.url + "/queue", allow_redirects=False,
                    headers={"Accept": "text/html"}).status_code == 303
    assert console.try_login(requests.Session(), "rita", PASSWORD).status_code == 401


def test_security_headers_on_every_page(console: ConsoleServer) -> None:
    session = console.login("admin")
    for path in ("/login", "/", "/conversations", f"/conversations/{console.ids['book']}"):
        response = session.get(console.url + path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert "<script>" not in response.text.replace('<script src="/static/console.js" defer></script>', "")


def test_failed_and_successful_logins_are_audited(console: ConsoleServer) -> None:
    console.try_login(requests.Session(), "ada", "wrong password")
    console.login("admin")
    with console.db.session_scope() as session:
        actions = [(e.action, e.username) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert ("login_failed", "ada") in actions and ("login", "ada") in actions
