"""One way for a component after DIET to overrule the intent it picked.

The bare-complaint and gibberish checks each decide an intent outright (confidence 1.0); the
overruled intents stay in the ranking below it, so "Did you mean" and the logs still see them.
"""

from __future__ import annotations

from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message


def overrule_intent(message: Message, name: str) -> None:
    """Make `name` the message's intent (confidence 1.0), first in its ranking."""
    intent = {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: 1.0}
    ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != name]
    message.set(INTENT, intent, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [intent, *ranking], add_to_output=True)
