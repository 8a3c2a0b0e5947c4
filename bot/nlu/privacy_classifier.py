"""Rasa NLU component: a question about the patient's data or this chat is `ask_privacy`.

"Is my data safe?" was read as a question about side effects and "is this chat private?"
as anything the model liked: the patient got a medical topic instead of what the clinic
keeps and who sees it. The words are recognised by `bot.privacy.asks_about_privacy` (a
clause that names their details or this conversation and asks about keeping, seeing or
sharing it); the model has no training examples for the intent, so no other intent moves.
Runs after the FallbackClassifier and before the SafetyClassifier, so an emergency still wins.
"""

from __future__ import annotations

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.overrule import WordsClassifier
from bot.privacy import PRIVACY_INTENT, asks_about_privacy
from bot.safety import RED_FLAG_INTENT


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class PrivacyQuestionClassifier(WordsClassifier):
    """Sets the intent to `ask_privacy` (confidence 1.0) for a question about privacy."""

    intent = PRIVACY_INTENT

    def overrules(self, message: Message) -> bool:
        """A privacy question; a message the model read as a red flag keeps that reading."""
        if (message.get(INTENT) or {}).get(INTENT_NAME_KEY) == RED_FLAG_INTENT:
            return False
        return asks_about_privacy(message.get(TEXT) or "")
