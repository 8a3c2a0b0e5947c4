"""Rasa NLU component: DIET's intent ranking combined with a linear model's, for sturdier intents.

DIET learns a lot from a few thousand examples, but on sentences unlike its training data
(long forum-style questions, rare wordings) it is often confidently wrong. A logistic
regression over TF-IDF word and character n-grams of the spaCy lemmas makes different
mistakes: on the held-out split it alone scored about as well as DIET, and the two combined
clearly better than either (README, "NLU quality"). The combination is a weighted geometric
mean of the two distributions (a product of experts): an intent both models find likely stays
likely, and a confident mistake by one model is tempered by the other. Runs right after DIET,
so the FallbackClassifier, the gibberish check and the safety rules all read the combined
ranking. Entities stay DIET's. The safety check still sees DIET's own ranking too, so the
combination never makes it less ready to ask a screening question.
"""

from __future__ import annotations

import math
import pickle
from typing import Any, Dict, List, Optional, Sequence

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline, make_union

from bot.linear_scores import LinearScorer

_FILE = "linear_intent_model.pkl"
# DIET's own ranking, kept on the message (not in the output) for the safety check, which
# asks a screening question when either DIET alone or the combination is sure of a red flag.
DIET_RANKING = "diet_intent_ranking"


def lemma_text(message: Message) -> str:
    """The message as its tokens' lemmas (LemmaTokenizer), or its lower-cased text."""
    tokens = message.get(TOKENS_NAMES[TEXT]) or []
    if tokens:
        return " ".join((token.lemma or token.text).lower() for token in tokens)
    return (message.get(TEXT) or "").lower()


def linear_model(config: Dict[str, Any]) -> Pipeline:
    """TF-IDF of word 1-2-grams and character 2-5-grams, then a logistic regression."""
    return make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(
                analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2
            ),
        ),
        LogisticRegression(C=config["C"], max_iter=5000),
    )


def combine(
    diet: Dict[str, float],
    linear: Dict[str, float],
    diet_weight: float,
    floor: float,
) -> List[Dict[str, Any]]:
    """The weighted geometric mean of two intent distributions, normalised, best first.

    An intent missing from one side (DIET reports only its top ten) counts as `floor` there.
    """
    names = set(diet) | set(linear)
    scores = {
        name: math.exp(
            diet_weight * math.log(max(diet.get(name, 0.0), floor))
            + (1.0 - diet_weight) * math.log(max(linear.get(name, 0.0), floor))
        )
        for name in names
    }
    total = sum(scores.values()) or 1.0
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: score / total}
            for name, score in ranked]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class IntentEnsembleClassifier(GraphComponent):
    """Replaces DIET's intent and ranking with DIET's combined with a linear model's."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """Regularisation of the linear model, DIET's share, and the floor for missing intents.

        C was chosen by 5-fold cross-validation on the training data; see the README.
        """
        return {"C": 30.0, "diet_weight": 0.5, "probability_floor": 1e-4, "ranking_length": 10}

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: Optional[Pipeline] = None,
    ) -> None:
        """Keep the configuration, the storage handles and the (possibly untrained) model."""
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self.model = model
        self._scorer: Optional[LinearScorer] = None

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> IntentEnsembleClassifier:
        """A new, untrained component (it passes DIET's ranking through until trained)."""
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> IntentEnsembleClassifier:
        """The linear model stored at training time (the model's own file, written by train)."""
        with model_storage.read_from(resource) as directory:
            with (directory / _FILE).open("rb") as handle:
                model = pickle.load(handle)  # noqa: S301 - our own trained model file
        return cls(config, model_storage, resource, model)

    def train(self, training_data: TrainingData) -> Resource:
        """Fit the linear model on every intent example's lemmas."""
        examples = [m for m in training_data.intent_examples if m.get(INTENT)]
        self.model = linear_model(self._config)
        self._scorer = None
        self.model.fit([lemma_text(m) for m in examples], [m.get(INTENT) for m in examples])
        with self._model_storage.write_to(self._resource) as directory:
            with (directory / _FILE).open("wb") as handle:
                pickle.dump(self.model, handle)
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Nothing to add to the training data."""
        return training_data

    def linear_ranking(self, texts: Sequence[str]) -> List[Dict[str, float]]:
        """The linear model's probability of every intent, for each text."""
        if self._scorer is None:
            assert self.model is not None
            self._scorer = LinearScorer(self.model)
        rows = self._scorer.probabilities(texts)
        return [dict(zip(self._scorer.classes, map(float, row), strict=True)) for row in rows]

    def process(self, messages: List[Message]) -> List[Message]:
        """Set each message's intent and ranking to the combined distribution."""
        todo = [m for m in messages if m.get(INTENT_RANKING_KEY) and m.get(TEXT)]
        if self.model is None or not todo:
            return messages
        linear = self.linear_ranking([lemma_text(m) for m in todo])
        for message, linear_probs in zip(todo, linear, strict=True):
            diet = {
                r[INTENT_NAME_KEY]: float(r[PREDICTED_CONFIDENCE_KEY])
                for r in message.get(INTENT_RANKING_KEY)
            }
            message.set(DIET_RANKING, message.get(INTENT_RANKING_KEY))
            ranking = combine(
                diet, linear_probs, self._config["diet_weight"], self._config["probability_floor"]
            )[: self._config["ranking_length"]]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
