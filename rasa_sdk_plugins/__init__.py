"""rasa-sdk's plugin hook: `rasa run actions` imports this package if it can.

rasa-sdk 3.6 calls `init_hooks` of a top-level package named `rasa_sdk_plugins` and then
`attach_sanic_app_extensions(app)` on the action server's Sanic app before it serves. The
name is fixed by rasa-sdk, so this file stays a shim: the check lives in `bot.action_auth`,
the start-up storing of records kept during an outage in `bot.records`.
Run the action server from the project root (as `make run` does) so this package is found.
"""

from __future__ import annotations

import pluggy
from sanic import Sanic

hookimpl = pluggy.HookimplMarker("rasa_sdk")


class ClinicActionServerPlugin:
    """Requires the shared secret on every request; stores waiting records once serving."""

    @hookimpl
    def attach_sanic_app_extensions(self, app: Sanic) -> None:
        """Attach the secret check (refuses to start in production without a secret)."""
        from bot.action_auth import require_secret
        from bot.records import stop_flushing, store_on_start

        require_secret(app)
        app.register_listener(store_on_start, "after_server_start")
        app.register_listener(stop_flushing, "before_server_stop")


def init_hooks(manager: pluggy.PluginManager) -> None:
    """Register the plugin (called by rasa-sdk's plugin manager)."""
    manager.register(ClinicActionServerPlugin())
