"""Email staff about bookings, hand-offs and red flags over SMTP.

Uses the standard library's smtplib (no async SMTP client is installed) and runs it
in a worker thread for async callers. With SMTP_STARTTLS on (the default) the
connection must upgrade to TLS before any credentials or patient data are sent; a
server that does not offer STARTTLS is an error, never a silent plain-text fallback.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from bot.notify.base import NotificationError
from bot.notify.config import EMAIL, email_recipients
from bot.notify.render import render_text
from bot.settings import Settings

log = logging.getLogger(__name__)
DEFAULT_SENDER = "clinic-assistant@localhost"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class EmailNotifier:
    """Sends plain-text notification emails through one SMTP server.

    Args:
        host: SMTP server host.
        port: SMTP server port (587 for submission with STARTTLS).
        recipients: Staff addresses.
        sender: From address.
        username: Login name; no AUTH when empty.
        password: Login password.
        starttls: Upgrade the connection with STARTTLS before AUTH and sending.
        timeout: Seconds to wait for the server on each operation.
        ssl_context: TLS settings; default verifies the server certificate against
            the system trust store (tests pass one trusting their own certificate).
        console_url: The staff console's base URL, for the link in each message.
    """

    channel = EMAIL

    def __init__(
        self,
        *,
        host: str,
        port: int,
        recipients: Sequence[str],
        sender: str = DEFAULT_SENDER,
        username: str = "",
        password: str = "",
        starttls: bool = True,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        console_url: str = "",
    ):
        """Check and keep the connection settings; nothing connects until `send`."""
        if not host or not recipients:
            raise ValueError("an SMTP host and at least one recipient are required")
        if username and not starttls and host not in LOOPBACK_HOSTS:
            raise ValueError(
                "refusing to send SMTP credentials unencrypted: enable SMTP_STARTTLS"
            )
        self.host = host
        self.port = port
        self.recipients = list(recipients)
        self.sender = sender
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.console_url = console_url

    @classmethod
    def from_settings(
        cls, settings: Settings, *, ssl_context: ssl.SSLContext | None = None
    ) -> EmailNotifier:
        """Build the notifier from SMTP_* and NOTIFY_EMAIL_TO settings."""
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            recipients=email_recipients(settings),
            sender=settings.smtp_from or settings.smtp_user or DEFAULT_SENDER,
            username=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            timeout=settings.notify_timeout_seconds,
            ssl_context=ssl_context,
            console_url=settings.console_url,
        )

    def build_message(
        self, kind: str, payload: Mapping[str, Any], delivery_id: int | str
    ) -> EmailMessage:
        """Return the email staff will receive (useful for previews and tests)."""
        subject, body = render_text(kind, payload, self.console_url)
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain="clinic-assistant.invalid")
        message["X-Clinic-Delivery"] = str(delivery_id)
        message["X-Clinic-Kind"] = kind
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(body)
        return message

    def send(
        self, kind: str, payload: Mapping[str, Any], delivery_id: int | str
    ) -> None:
        """Send one notification email.

        Raises:
            NotificationError: Connection, TLS, login or delivery failed.
        """
        message = self.build_message(kind, payload, delivery_id)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(
                        context=self.ssl_context or ssl.create_default_context()
                    )
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self.password)
                refused = smtp.send_message(message)
        except smtplib.SMTPNotSupportedError as exc:
            raise NotificationError(
                f"SMTP server {self.host}:{self.port}: {exc}"
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise NotificationError(
                f"email to {self.host}:{self.port} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if refused:
            log.warning("SMTP server refused some recipients: %s", sorted(refused))

    async def send_async(
        self, kind: str, payload: Mapping[str, Any], delivery_id: int | str
    ) -> None:
        """Like `send`, in a worker thread so the event loop keeps serving patients."""
        await asyncio.to_thread(self.send, kind, payload, delivery_id)
