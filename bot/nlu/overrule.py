"""One way for a component after DIET to overrule the intent it picked.

The bare-complaint, privacy, gibberish and emergency checks each decide an intent outright
(confidence 1.0); the overruled intents stay in the ranking below it, so "Did you mean" and
the logs still see them. `WordsClassifier` is the shape of the two that need nothing but the
message's words (no training, nothing stored in the model).
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message


def overrule_intent(message: Message, name: str) -> None:
    """Make `name` the message's intent (confidence 1.0), first in its ranking."""
    intent = {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: 1.0}
    ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != name]
    message.set(INTENT, intent, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [intent, *ranking], add_to_output=True)


class WordsClassifier(GraphComponent):
    """A component that sets `intent` for the typed messages `overrules` picks out.

    Subclasses register themselves with `DefaultV1Recipe` (not trainable) and say which
    messages they take; a button's payload ("/ask_fees") is never overruled.
    """

    intent = ""

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> WordsClassifier:
        """Nothing to train or load: the words are the subclass's."""
        return cls()

    def overrules(self, message: Message) -> bool:
        """Whether this message's intent becomes `intent`."""
        raise NotImplementedError

    def process(self, messages: List[Message]) -> List[Message]:
        """Overrule the intent of the messages this component picks out."""
        for message in messages:
            if not (message.get(TEXT) or "").startswith("/") and self.overrules(message):
                overrule_intent(message, self.intent)
        return messages
