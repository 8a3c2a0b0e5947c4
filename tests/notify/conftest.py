"""Real receivers on loopback for notifier tests: an SMTP server and an HTTP endpoint.

The SMTP server is aiosmtpd (plain, or STARTTLS with a certificate made for this run
and AUTH); the webhook receiver is the standard library's HTTP server, recording
every request's headers and raw body. Both bind 127.0.0.1 on a free port.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.migrate import upgrade
from bot.storage.models import UTC
from bot.storage.repository import Repository

SMTP_USER = "bot@clinic.test"
SMTP_PASSWORD = "s3cret-app-password"
WEBHOOK_SECRET = "test-webhook-secret-0123456789"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- SMTP -------------------------------------------------------------------------


@dataclass
class SmtpServer:
    """A running aiosmtpd server and what it received."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    tls_sessions: list[bool] = field(default_factory=list)
    cert_path: Path | None = None
    username: str = SMTP_USER
    password: str = SMTP_PASSWORD

    def client_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts only this server's certificate."""
        assert self.cert_path is not None, "this server has no TLS"
        return ssl.create_default_context(cafile=str(self.cert_path))


class _Collector:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.server.messages.append(message)
        self.server.recipients.append(list(envelope.rcpt_tos))
        self.server.tls_sessions.append(session.ssl is not None)
        return "250 Message accepted for delivery"


def _authenticator(server: SmtpServer) -> Callable[..., AuthResult]:
    def check(
        _server: Any, _session: Any, _envelope: Any, _mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == SMTP_USER
            and auth_data.password.decode() == SMTP_PASSWORD
        )
        if ok:
            server.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)

    return check


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """Plain SMTP (no STARTTLS, no AUTH) on loopback."""
    server = SmtpServer(port=free_port())
    controller = Controller(
        _Collector(server),
        hostname="127.0.0.1",
        port=server.port,
        server_hostname="localhost",
    )
    controller.start()
    yield server
    controller.stop()


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1/localhost and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = folder / "smtp-cert.pem"
    key_path = folder / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    """SMTP that requires STARTTLS and AUTH, with a self-signed certificate."""
    cert_path, key_path = make_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    server = SmtpServer(port=free_port(), cert_path=cert_path)
    controller = Controller(
        _Collector(server),
        hostname="127.0.0.1",
        port=server.port,
        server_hostname="localhost",
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=_authenticator(server),
    )
    controller.start()
    yield server
    controller.stop()


# --- webhook receiver ---------------------------------------------------------


@dataclass
class ReceivedRequest:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """A local HTTP endpoint; `statuses` are answered in order, then 200."""

    port: int
    requests: list[ReceivedRequest] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where notifications should be POSTed."""
        return f"http://127.0.0.1:{self.port}/hooks/clinic"

    def start(self) -> None:
        """Start listening on `port`."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append(
                    ReceivedRequest(
                        self.path, {k: v for k, v in self.headers.items()}, body
                    )
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening; the port refuses connections afterwards."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def webhook_secret() -> str:
    """The shared HMAC secret used by webhook tests."""
    return WEBHOOK_SECRET


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A running receiver."""
    receiver = WebhookReceiver(port=free_port())
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def stopped_receiver() -> Iterator[WebhookReceiver]:
    """A receiver whose port is closed until the test calls `start()`."""
    receiver = WebhookReceiver(port=free_port())
    yield receiver
    receiver.stop()


# --- database -------------------------------------------------------------------------


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database."""
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


@pytest.fixture
def settings() -> Settings:
    """Settings with a short retry schedule and no channels (tests pass notifiers)."""
    return Settings.from_env(
        {"BOT_ENV": "test", "NOTIFY_MAX_ATTEMPTS": "3", "NOTIFY_BACKOFF_SECONDS": "30"}
    )


@pytest.fixture
def repo(database: Database, settings: Settings) -> Repository:
    """Repository on the test database."""
    return Repository(database, settings=settings)


BOOKING = {
    "conversation_id": "web-4711",
    "full_name": "Zoë O'Connor 🦵",
    "phone_e164": "+353861234567",
    "email": "zoe@example.org",
    "body_part": "lower back",
    "preferred_times": "Mondays before 10am",
    "preferred_times_parsed": "2025-12-01T09:00:00+00:00",
    "description": "Sharp pain bending <b>since</b> a fall.\nWorse in the morning.",
    "consent_given_at": datetime(2025, 11, 25, 9, 30, tzinfo=UTC),
    "channel": "web",
}


@pytest.fixture
def booking_fields() -> Callable[..., dict[str, Any]]:
    """Factory of valid booking arguments with a fresh idempotency key each call."""
    counter = iter(range(1, 10_000))

    def make(**overrides: Any) -> dict[str, Any]:
        return {**BOOKING, "idempotency_key": f"web-4711:{next(counter)}", **overrides}

    return make
