"""When the action server cannot be reached, the patient still gets a reply.

Rasa 3.6 logs "Encountered an exception while running action ..." and sends nothing: at
night a patient would be left with silence. Rasa offers no hook for this, so `install()`
wraps `RemoteAction.run` (the one place every custom action call goes through): a failed
call becomes a short apology with the practice's phone number, sent as a normal bot
message. Rejections (forms) and successful calls are untouched. Installed by
`bot.policies`, which every model of this project loads.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, List

from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.shared.core.events import BotUttered, Event
from rasa.shared.exceptions import RasaException

logger = logging.getLogger(__name__)
_INSTALLED = "_clinic_apology_installed"


def apology() -> str:
    """What the patient reads while the action server is down."""
    from bot.profile import get_profile

    profile = get_profile()
    return (
        "Sorry, I'm having a technical problem and can't answer properly right now. Please try "
        f"again in a few minutes, or call the clinic: {profile.phone_text()}. If this is an "
        f"emergency, {profile.emergency_text()} or go to the nearest A&E."
    )


def install() -> None:
    """Wrap `RemoteAction.run` once per process."""
    if getattr(RemoteAction.run, _INSTALLED, False):
        return
    original = RemoteAction.run

    @functools.wraps(original)
    async def run(self: RemoteAction, *args: Any, **kwargs: Any) -> List[Event]:
        try:
            return await original(self, *args, **kwargs)
        except ActionExecutionRejection:
            raise
        except RasaException as exc:
            logger.error("action server call %s failed (%s): sending the apology", self.name(), exc)
            return [BotUttered(text=apology(), metadata={"action_server_down": True})]

    setattr(run, _INSTALLED, True)
    RemoteAction.run = run  # type: ignore[method-assign]
