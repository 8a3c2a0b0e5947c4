"""A shared secret on every request to the action server.

rasa-sdk's action server has no authentication: anyone who can reach it could POST
`/webhook` with `next_action: action_submit_booking` and a made-up tracker, and a booking
was stored. Rasa sends the secret with every action call (`endpoints.yml`,
`action_endpoint.headers`, from `${ACTION_SERVER_SECRET}`); the action server refuses any
request without it (401), except `GET /health`. The check is a Sanic middleware attached by
rasa-sdk's own plugin hook (`rasa_sdk_plugins`, loaded by `rasa run actions` started in the
project root), so `rasa run actions` stays the command that runs.

Development without `ACTION_SERVER_SECRET` uses a random secret kept in
`var/action-server-secret` (like the Rasa API token); production refuses to start without
a real one (`bot.settings`).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import TYPE_CHECKING

from bot.settings import Settings, SettingsError, get_settings

if TYPE_CHECKING:  # Sanic is imported where it runs, so bot.run (which needs only the
    from sanic import Sanic  # secret) stays light
    from sanic.request import Request
    from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

HEADER = "X-Action-Secret"
"""Header carrying the secret (set in endpoints.yml's action_endpoint.headers)."""

OPEN_PATHS = frozenset({"/health"})
"""Paths answered without the secret: they reveal nothing and serve readiness checks."""


def action_server_secret(settings: Settings | None = None) -> str:
    """The secret: `ACTION_SERVER_SECRET`, or in development a generated one under var/.

    Raises:
        SettingsError: In production without `ACTION_SERVER_SECRET`.
    """
    settings = settings or get_settings()
    if settings.action_server_secret:
        return settings.action_server_secret
    if settings.is_production:
        raise SettingsError("ACTION_SERVER_SECRET must be set when BOT_ENV=production")
    path = settings.data_dir / "action-server-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def require_secret(app: Sanic, secret: str | None = None) -> None:
    """Make `app` answer 401 to every request without the secret (except `OPEN_PATHS`)."""
    from sanic import response

    expected = (secret or action_server_secret()).encode("utf-8")

    async def check_action_secret(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS and request.method == "GET":
            return None
        supplied = request.headers.get(HEADER, "").encode("utf-8")
        if hmac.compare_digest(supplied, expected):
            return None
        logger.warning("Refused an action server request without the shared secret: %s", request.path)
        return response.json(
            {"error": "unauthorized", "message": f"send the shared secret in {HEADER}"}, status=401
        )

    app.register_middleware(check_action_secret, "request")
    logger.info("Action server requests need the %s header", HEADER)


def main() -> None:
    """Print the development secret (for `export ACTION_SERVER_SECRET=...` in a shell)."""
    print(action_server_secret())


if __name__ == "__main__":
    main()
