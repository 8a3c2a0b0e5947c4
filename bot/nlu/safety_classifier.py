"""Rasa NLU component: emergencies and red flags overrule whatever the intent classifier thought.

Runs last in the pipeline, in two layers (see `bot.safety`):
1. The rules. When they find a flag, the intent becomes `report_red_flag` (confidence 1.0) and
   every flag found is added as a `red_flag` entity whose span is the patient's own words.
2. The trained detector. When the rules find nothing but the detector suspects a flag (or
   the intent classifiers are sure of `report_red_flag`: DIET alone, or DIET combined with the
   linear model in `bot.nlu.intent_ensemble`), a `safety_suspect` entity names the flag; the
   intent is left alone, and `SafetyPolicy` asks one screening question before anything
   else. DIET's `report_red_flag` alone and unsure becomes its next likeliest intent.
A suspicion is dropped when the patient explicitly denied the flag's words ("no numbness").
The rules read the whole message (a channel that cut a long text for DIET passes the full
text in the metadata under `full_text`), so a symptom at the end still counts.
"""

from __future__ import annotations

import logging
import pickle
from typing import Any, Dict, List, Optional

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

from bot.nlu.intent_ensemble import DIET_RANKING
from bot.nlu.overrule import overrule_intent
from bot.safety import RED_FLAG_ENTITY, RED_FLAG_INTENT, SUSPECT_ENTITY, get_detector, safety_text
from bot.safety.data import DETECTOR_TRAINING_PATH, FLAGS_PATH, files_fingerprint, get_safety_data
from bot.safety.detector import DEFAULT_THRESHOLD, EmergencyDetector, Suspicion, training_examples

logger = logging.getLogger(__name__)
UNSPECIFIED_FLAG = "possible_emergency"
_FILE = "emergency_detector.pkl"


def message_text(message: Message) -> str:
    """The text the safety rules read (see `bot.safety.safety_text`)."""
    return safety_text(message.get(TEXT), message.get("metadata"))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class SafetyClassifier(GraphComponent):
    """Rules first, then the trained detector (see module docstring)."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """Thresholds for asking a screening question: the detector's, and DIET's alone."""
        return {"suspect_threshold": DEFAULT_THRESHOLD, "intent_threshold": 0.6}

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Retrain when the reviewed safety files change, not only the NLU data."""
        return files_fingerprint(FLAGS_PATH, DETECTOR_TRAINING_PATH)

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        detector: Optional[EmergencyDetector] = None,
    ) -> None:
        """Keep the storage handles and the (possibly untrained) detector."""
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self.detector = detector or EmergencyDetector(threshold=config["suspect_threshold"])

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SafetyClassifier:
        """A new, untrained component."""
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> SafetyClassifier:
        """Load the trained detector; the rules need nothing stored."""
        detector = None
        try:
            with model_storage.read_from(resource) as directory:
                with (directory / _FILE).open("rb") as handle:
                    detector = EmergencyDetector(pickle.load(handle), config["suspect_threshold"])
        except (ValueError, FileNotFoundError):
            logger.warning("no trained emergency detector in the model: rules only")
        return cls(config, model_storage, resource, detector)

    def train(self, training_data: TrainingData) -> Resource:
        """Learn the detector from the safety files plus the assistant's ordinary messages."""
        ordinary = [
            m.get(TEXT) for m in training_data.intent_examples
            if m.get(INTENT) != RED_FLAG_INTENT and m.get(TEXT)
        ]
        texts, labels = training_examples(get_safety_data(), sorted(ordinary))
        self.detector.fit(texts, labels)
        with self._model_storage.write_to(self._resource) as directory:
            with (directory / _FILE).open("wb") as handle:
                pickle.dump(self.detector.pipeline, handle)
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Nothing to add to the training data."""
        return training_data

    def _diet_was_sure(self, message: Message) -> bool:
        """DIET's own top intent (before the ensemble) was a red flag, above the threshold."""
        ranking = message.get(DIET_RANKING) or []
        return bool(ranking) and (
            ranking[0].get(INTENT_NAME_KEY) == RED_FLAG_INTENT
            and float(ranking[0].get(PREDICTED_CONFIDENCE_KEY) or 0.0)
            >= self._config["intent_threshold"]
        )

    def process(self, messages: List[Message]) -> List[Message]:
        """Mark emergencies (rules) and suspected ones (detector) in each message."""
        rules = get_detector()
        for message in messages:
            text = message_text(message)
            if not text.strip() or text.startswith("/"):
                continue
            result = rules.detect(text)
            entities = list(message.get(ENTITIES) or [])
            if result:
                overrule_intent(message, RED_FLAG_INTENT)
                entities.extend(
                    {
                        "entity": RED_FLAG_ENTITY,
                        "value": finding.flag,
                        "start": finding.start,
                        "end": finding.end,
                        "confidence_entity": 1.0,
                        "extractor": self.__class__.__name__,
                    }
                    for finding in result.findings
                )
                message.set(ENTITIES, entities, add_to_output=True)
                continue
            predicted: Dict[str, Any] = message.get(INTENT) or {}
            said_red_flag = predicted.get(INTENT_NAME_KEY) == RED_FLAG_INTENT
            confidence = float(predicted.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
            if said_red_flag and confidence < self._config["intent_threshold"]:
                # DIET alone, and unsure: not a report; the next likeliest intent answers it
                said_red_flag = False
                ranking = [
                    r for r in message.get(INTENT_RANKING_KEY) or []
                    if r.get(INTENT_NAME_KEY) != RED_FLAG_INTENT
                ]
                if ranking:
                    message.set(INTENT, ranking[0], add_to_output=True)
                    message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
            # DIET alone sure of a red flag still counts, whatever the ensemble made of it
            said_red_flag = said_red_flag or self._diet_was_sure(message)
            suspicion = self.detector.suspect(text)
            if suspicion is None and said_red_flag:  # DIET suspects one, nobody can say which
                suspicion = Suspicion(flag=UNSPECIFIED_FLAG, confidence=0.0)
            if suspicion is None:
                continue
            flag = get_safety_data().flags.get(suspicion.flag)
            concepts = {c for alt in flag.when for c in alt.concepts} if flag else set()
            if concepts & result.dismissed and not said_red_flag:
                continue  # "no numbness, no fever": the patient has just said it isn't so
            entities.append(
                {
                    "entity": SUSPECT_ENTITY,
                    "value": suspicion.flag,
                    "start": 0,
                    "end": len(message.get(TEXT) or ""),
                    "confidence_entity": suspicion.confidence,
                    "extractor": self.__class__.__name__,
                }
            )
            message.set(ENTITIES, entities, add_to_output=True)
        return messages
