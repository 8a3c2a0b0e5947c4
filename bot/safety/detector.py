"""The trained emergency detector: catches wording nobody wrote a rule for.

The rules (`bot.safety.rules`) are precise but only know the words in the data file. This
small classifier learns from many phrasings per flag (the data file's examples and
`data/safety/detector_training.yml`) against hard negatives and the assistant's ordinary
training messages, over character and word n-grams, so "my bum has gone all cardboardy" still
looks like saddle numbness. It never raises an alert by itself: when it suspects a flag the
rules do not confirm, the assistant asks one screening question (see `actions/safety.py`).
Deterministic: fixed solver, fixed order, no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from bot.linear_scores import LinearScorer
from bot.safety.data import SafetyData, load_detector_training

NONE_LABEL = "none"
DEFAULT_THRESHOLD = 0.6  # chosen on tests/safety/holdout.yml: recall vs. screening questions
MAX_CHARS = 2000  # the detector reads the start of a long message; the rules read all of it


@dataclass(frozen=True)
class Suspicion:
    """The flag the detector suspects, and how sure it is (0-1)."""

    flag: str
    confidence: float


def training_examples(
    data: SafetyData, ordinary_messages: Iterable[str] = ()
) -> Tuple[List[str], List[str]]:
    """Texts and labels: every flag's phrasings, then the negatives as `none`."""
    extra, extra_negatives = load_detector_training()
    texts: List[str] = []
    labels: List[str] = []
    for flag in data.flags.values():
        for text in (*flag.examples, *extra.get(flag.id, ())):
            texts.append(text)
            labels.append(flag.id)
    negatives = [*data.negatives, *extra_negatives, *ordinary_messages]
    for text in dict.fromkeys(negatives):  # stable order, no repeats
        texts.append(text)
        labels.append(NONE_LABEL)
    return texts, labels


class EmergencyDetector:
    """A calibrated linear classifier over character and word n-grams."""

    def __init__(self, pipeline: Optional[Pipeline] = None, threshold: float = DEFAULT_THRESHOLD) -> None:
        """Wrap a fitted pipeline (or none yet)."""
        self.pipeline = pipeline
        self.threshold = threshold
        self._scorer: Optional[LinearScorer] = None  # predict_proba, faster (bot.linear_scores)

    @staticmethod
    def _new_pipeline() -> Pipeline:
        features = FeatureUnion(
            [
                ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=True,
                                          sublinear_tf=True, min_df=1)),
                ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), lowercase=True,
                                          sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")),
            ]
        )
        classifier = LogisticRegression(C=32.0, max_iter=3000, solver="lbfgs")
        return Pipeline([("features", features), ("classifier", classifier)])

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> EmergencyDetector:
        """Learn from labelled texts."""
        self.pipeline = self._new_pipeline()
        self._scorer = None
        self.pipeline.fit([t[:MAX_CHARS] for t in texts], list(labels))
        return self

    def likeliest(self, text: str) -> Optional[Suspicion]:
        """The likeliest flag, with the probability that the message is any flag at all."""
        if self.pipeline is None or not text or not text.strip():
            return None
        if self._scorer is None:
            self._scorer = LinearScorer(self.pipeline)
        probabilities = self._scorer.probabilities([text[:MAX_CHARS]])[0]
        classes = self._scorer.classes
        flag_probability = 1.0 - float(probabilities[classes.index(NONE_LABEL)])
        for index in np.argsort(probabilities)[::-1]:
            if classes[index] != NONE_LABEL:
                return Suspicion(flag=str(classes[index]), confidence=round(flag_probability, 4))
        return None

    def suspect(self, text: str) -> Optional[Suspicion]:
        """The likeliest flag when the detector is at least `threshold` sure it is one."""
        suspicion = self.likeliest(text)
        return suspicion if suspicion and suspicion.confidence >= self.threshold else None
