"""Who may see what in the console: passwords, sessions, CSRF, lockout and roles.

Passwords are argon2id hashes (argon2-cffi). A signed-in browser holds a random token in
an HttpOnly, SameSite=Lax cookie (Secure behind TLS); the database keeps only its sha256,
with an idle and an absolute expiry. Every POST carries the session's CSRF token in a
hidden field. Failed logins lock an account with a growing delay and slow down a client
address that tries many names; an unknown username and a wrong password get the same
answer. `ROLE_PERMISSIONS` is the one table of what each role may do.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from starlette.requests import Request

from bot.settings import Settings
from bot.storage import console as store
from bot.storage.database import Database
from bot.storage.models import STAFF_ROLES, StaffSession, StaffUser, utcnow

SESSION_COOKIE = "console_session"
LOGIN_COOKIE = "console_login"
MIN_PASSWORD_LENGTH = 10
FREE_FAILURES = 5  # failures in a row before an account is locked
LOCK_BASE_SECONDS = 30  # first lock; doubles with each further failure
LOCK_MAX_SECONDS = 3600
ADDRESS_WINDOW = timedelta(minutes=15)
ADDRESS_MAX_FAILURES = 20  # from one client address within the window
TOUCH_EVERY = timedelta(seconds=60)
WRONG_LOGIN = "Wrong username or password."
LOCKED_LOGIN = "Too many failed attempts. Wait a few minutes and try again."

# What each role may do; every console route names one of these permissions.
PERMISSIONS = ("inbox", "conversations", "reply", "queue", "dashboard", "alerts", "notes",
               "improve", "export", "admin")
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "receptionist": frozenset({"inbox", "conversations", "reply", "queue", "dashboard"}),
    "clinician": frozenset({"inbox", "conversations", "reply", "queue", "dashboard", "alerts",
                            "notes", "improve"}),
    "admin": frozenset(PERMISSIONS),
}
ROLE_DESCRIPTIONS = {
    "receptionist": "Inbox, queue, conversations, reply in the chat",
    "clinician": "Also red-flag review, notes and labelling messages for the bot",
    "admin": "Also users, retention, exports and the audit log",
}
assert set(ROLE_PERMISSIONS) == set(STAFF_ROLES)

_hasher = PasswordHasher()  # argon2id with argon2-cffi's recommended parameters
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class PasswordRejected(ValueError):
    """A new password does not meet the rules."""


def hash_password(password: str) -> str:
    """An argon2id hash of a new password (checked against the rules first)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRejected(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > 1024:
        raise PasswordRejected("Passwords can have at most 1024 characters.")
    return _hasher.hash(password)


def allowed(role: str, permission: str) -> bool:
    """Whether this role has this permission."""
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def token_hash(token: str) -> str:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A random token (sessions, CSRF)."""
    return secrets.token_urlsafe(32)


def same_token(given: object, expected: str) -> bool:
    """Constant-time comparison of a submitted token."""
    return isinstance(given, str) and bool(expected) and hmac.compare_digest(given, expected)


def client_address(request: Request, settings: Settings) -> str:
    """The browser's address; X-Forwarded-For is believed only from a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.get("x-forwarded-for", "")
    if peer in settings.console_trusted_proxies and forwarded:
        return forwarded.split(",")[-1].strip() or peer
    return peer


def is_secure(request: Request, settings: Settings) -> bool:
    """Whether cookies get the Secure flag: TLS here, or https at a trusted proxy."""
    if settings.console_secure_cookies or request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    return (peer in settings.console_trusted_proxies
            and request.headers.get("x-forwarded-proto", "").lower() == "https")


@dataclass
class Staff:
    """The signed-in person of a request."""

    user: StaffUser
    session: StaffSession

    @property
    def csrf(self) -> str:
        """The token every form of this session carries."""
        return str(self.session.csrf_token)

    def can(self, permission: str) -> bool:
        """Whether this person may do this."""
        return allowed(self.user.role, permission)


def current_staff(db: Database, settings: Settings, request: Request,
                  now: datetime | None = None) -> Staff | None:
    """The signed-in person, or None (no cookie, unknown, expired, idle, deactivated)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    hashed = token_hash(token)
    found = store.session_with_user(db, hashed)
    if found is None:
        return None
    session, user = found
    now = now or utcnow()
    idle_limit = timedelta(minutes=settings.console_idle_minutes)
    if not user.active or now >= session.expires_at or now - session.last_seen_at > idle_limit:
        store.delete_session(db, hashed)
        return None
    if now - session.last_seen_at > TOUCH_EVERY:
        store.touch_session(db, session.id, now)
    return Staff(user, session)


@dataclass
class LoginResult:
    """A login attempt: the new session token, or the message to show."""

    token: str | None = None
    user: StaffUser | None = None
    error: str | None = None


def lock_delay(failures: int) -> timedelta | None:
    """How long an account is locked after this many failures in a row."""
    if failures < FREE_FAILURES:
        return None
    return timedelta(seconds=min(LOCK_MAX_SECONDS, LOCK_BASE_SECONDS * 2 ** (failures - FREE_FAILURES)))


def log_in(db: Database, settings: Settings, username: str, password: str, address: str,
           now: datetime | None = None) -> LoginResult:
    """Check a username and password; start a session when they are right.

    Unknown users and wrong passwords take the same time and get the same message; an
    account is locked for a doubling delay after `FREE_FAILURES` failures in a row, a
    username nobody has after as many attempts, and a client address after
    `ADDRESS_MAX_FAILURES` failures in `ADDRESS_WINDOW`.
    """
    now = now or utcnow()
    username = username.strip().lower()[:64]
    if store.recent_failures(db, since=now - ADDRESS_WINDOW, address=address) >= ADDRESS_MAX_FAILURES:
        store.audit(db, user=None, username=username, action="login_refused",
                    target_kind="address", target_id=address, detail="address locked")
        return LoginResult(error=LOCKED_LOGIN)
    user = store.user_by_username(db, username) if username else None
    if user is None or not user.active:
        _verify(_DUMMY_HASH, password)
        recent = store.recent_failures(db, since=now - ADDRESS_WINDOW, username=username)
        _failed(db, username, address, "unknown or inactive user")
        return LoginResult(error=LOCKED_LOGIN if recent + 1 > FREE_FAILURES else WRONG_LOGIN)
    if user.locked_until and user.locked_until > now:
        store.audit(db, user=user, action="login_refused", target_kind="address",
                    target_id=address, detail="account locked")
        return LoginResult(error=LOCKED_LOGIN)
    if not _verify(user.password_hash, password):
        failures = (user.failed_logins or 0) + 1
        delay = lock_delay(failures)
        store.record_login_failure(db, user.id, now + delay if delay else None)
        _failed(db, username, address, "wrong password")
        return LoginResult(error=LOCKED_LOGIN if delay else WRONG_LOGIN)
    rehash = _hasher.hash(password) if _hasher.check_needs_rehash(user.password_hash) else None
    store.record_login_success(db, user.id, rehash)
    token = new_token()
    store.create_session(db, user_id=user.id, token_hash=token_hash(token),
                         csrf_token=new_token(),
                         expires_at=now + timedelta(hours=settings.console_session_hours))
    store.audit(db, user=user, action="login", target_kind="address", target_id=address)
    return LoginResult(token=token, user=user)


def _failed(db: Database, username: str, address: str, why: str) -> None:
    store.audit(db, user=None, username=username or "-", action="login_failed",
                target_kind="address", target_id=address, detail=why)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def log_out(db: Database, request: Request) -> None:
    """End the session of this browser."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        store.delete_session(db, token_hash(token))
