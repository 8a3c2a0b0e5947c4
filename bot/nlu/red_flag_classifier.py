"""Rasa NLU component that lets the red-flag rules overrule the intent classifier.

Runs last in the pipeline. When `bot.safety` finds an emergency symptom in the message,
the intent becomes `report_red_flag` with confidence 1.0 and each flag is added as a
`red_flag` entity, whatever DIET or the FallbackClassifier thought. `RedFlagPolicy`
then answers it first, in any turn and inside any form.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    ENTITIES,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.safety import RED_FLAG_ENTITY, RED_FLAG_INTENT, get_detector


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False
)
class RedFlagClassifier(GraphComponent):
    """Overrides the intent with `report_red_flag` when a red-flag rule fires."""

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> RedFlagClassifier:
        """Create the component (nothing to train)."""
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Nothing to learn: the rules are the model."""
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Mark messages that mention an emergency symptom."""
        detector = get_detector()
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            result = detector.detect(text)
            if not result:
                continue
            intent = {INTENT_NAME_KEY: RED_FLAG_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}
            ranking = [
                r for r in message.get(INTENT_RANKING_KEY) or []
                if r.get(INTENT_NAME_KEY) != RED_FLAG_INTENT
            ]
            entities = list(message.get(ENTITIES) or [])
            entities.extend(
                {
                    "entity": RED_FLAG_ENTITY,
                    "value": flag,
                    "start": result.start,
                    "end": result.end,
                    "confidence_entity": 1.0,
                    "extractor": self.__class__.__name__,
                }
                for flag in result.flags
            )
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [intent, *ranking], add_to_output=True)
            message.set(ENTITIES, entities, add_to_output=True)
        return messages
