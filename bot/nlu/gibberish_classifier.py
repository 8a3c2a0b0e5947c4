"""Rasa NLU component: a message with no real word in it is `nonsense`, whatever DIET said.

Runs after DIET and the FallbackClassifier and before the SafetyClassifier (an emergency
still overrules it). The vocabulary is English (spaCy's lookup tables) plus every word of the
training examples, the knowledge base, the clinic article and the safety flags, learnt at
training time and stored in the model; see `bot.nlu.gibberish` for the test itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    INTENT,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.gibberish import Vocabulary, english_words
from bot.nlu.overrule import overrule_intent
from bot.safety.data import files_fingerprint
from bot.settings import PROJECT_ROOT

NONSENSE_INTENT = "nonsense"
# What the assistant talks about, beyond its training examples: medical words a patient may use.
VOCABULARY_SOURCES = (
    PROJECT_ROOT / "data" / "knowledge_base" / "answers.yml",
    PROJECT_ROOT / "data" / "source" / "lower-back-and-knee-pain-treatment.txt",
    PROJECT_ROOT / "data" / "safety" / "flags.yml",
)
_FILE = "vocabulary.json"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class GibberishClassifier(GraphComponent):
    """Sets the intent to `nonsense` (confidence 1.0) when no word of the message is known."""

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Retrain when the knowledge base, the article or the safety flags change."""
        return files_fingerprint(*VOCABULARY_SOURCES)

    def __init__(
        self, model_storage: ModelStorage, resource: Resource, vocabulary: Vocabulary
    ) -> None:
        """Keep the storage handles and the vocabulary."""
        self._model_storage = model_storage
        self._resource = resource
        self.vocabulary = vocabulary

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GibberishClassifier:
        """A new component that knows only English until it is trained."""
        return cls(model_storage, resource, Vocabulary())

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> GibberishClassifier:
        """The vocabulary stored at training time (English read now, not at the first message)."""
        with model_storage.read_from(resource) as directory:
            words = json.loads((directory / _FILE).read_text(encoding="utf-8"))
        english_words()
        return cls(model_storage, resource, Vocabulary.from_words(words))

    def train(self, training_data: TrainingData) -> Resource:
        """Learn the words of every example except the nonsense ones, plus the sources."""
        texts = [
            m.get(TEXT) for m in training_data.intent_examples
            if m.get(INTENT) != NONSENSE_INTENT and m.get(TEXT)
        ]
        texts.extend(Path(p).read_text(encoding="utf-8") for p in VOCABULARY_SOURCES)
        self.vocabulary = Vocabulary.from_texts(texts)
        with self._model_storage.write_to(self._resource) as directory:
            (directory / _FILE).write_text(
                json.dumps(sorted(self.vocabulary.domain)), encoding="utf-8"
            )
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Nothing to add to the training data."""
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Mark the messages without a real word as nonsense."""
        for message in messages:
            text = message.get(TEXT) or ""
            if text.startswith("/") or not self.vocabulary.is_gibberish(text):
                continue
            overrule_intent(message, NONSENSE_INTENT)
        return messages
