"""Fast probabilities from a fitted TF-IDF + logistic-regression pipeline.

The intent ensemble and the emergency detector score every message with a scikit-learn
pipeline (a FeatureUnion of TF-IDF vectorizers, then a LogisticRegression). Its
`predict_proba` multiplies the sparse features by a transposed view of the weights, which took
about 2 ms for one message; the same softmax over a contiguous copy of the weights takes
microseconds and gives the same probabilities (tests compare them on the trained models).
"""

from __future__ import annotations

from typing import List, Sequence

import numpy as np
from scipy import sparse
from sklearn.pipeline import Pipeline


class LinearScorer:
    """`predict_proba` of a fitted FeatureUnion + LogisticRegression pipeline, faster."""

    def __init__(self, pipeline: Pipeline) -> None:
        """Take the vectorizers and lay the regression's weights out for the product."""
        features, regression = pipeline.steps[0][1], pipeline.steps[-1][1]
        self._vectorizers = [vectorizer for _, vectorizer in features.transformer_list]
        self._weights = np.ascontiguousarray(regression.coef_.T)
        self._intercept = np.asarray(regression.intercept_)
        self.classes: List[str] = [str(c) for c in regression.classes_]

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, one column per class (in `classes` order), as predict_proba."""
        features = sparse.hstack([v.transform(texts) for v in self._vectorizers]).tocsr()
        scores = np.asarray(features @ self._weights) + self._intercept
        if scores.shape[1] == 1:  # two classes: scikit-learn's [1 - p, p]
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.column_stack([1.0 - positive, positive])
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)
