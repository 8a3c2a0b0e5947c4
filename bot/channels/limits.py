"""Request size limit of the Rasa server, set by our channels when they are mounted.

Sanic accepts 100 MB bodies by default and `rasa run` has no option to change it, so one
10 MB POST is parsed in full on the event loop. Sanic reads `app.config.REQUEST_MAX_SIZE`
for every new connection; our channels' blueprints set it (to `REQUEST_MAX_BYTES`, 64 kB)
while Rasa mounts them, before the server starts, so `rasa run` and `python -m bot.run` both
answer larger bodies with 413. `SANIC_REQUEST_MAX_SIZE` in the environment does the same
for a server that mounts none of our channels.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Sanic

from bot.settings import get_settings


def limit_request_size(app: Sanic) -> int:
    """Lower the app's request size limit to `REQUEST_MAX_BYTES` (never raise it)."""
    limit = get_settings().request_max_bytes
    current = int(getattr(app.config, "REQUEST_MAX_SIZE", limit) or limit)
    app.config.REQUEST_MAX_SIZE = min(current, limit)
    return int(app.config.REQUEST_MAX_SIZE)


class LimitedBlueprint(Blueprint):
    """A blueprint that applies `limit_request_size` to the app it is registered on."""

    def register(self, app: Sanic, options: dict[str, Any]) -> None:
        """Limit the request size, then register as usual."""
        limit_request_size(app)
        super().register(app, options)
