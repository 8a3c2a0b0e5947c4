"""One shared spaCy pipeline: English tokenizer plus the lookup lemmatizer.

spaCy's trained pipelines are not installable here in a version Rasa 3.6 accepts, so the
project uses a blank English pipeline with lookup lemmas from `spacy-lookups-data` (a
package, no download). Built lazily, once per process.
"""

from __future__ import annotations

from functools import lru_cache

import spacy
from spacy.language import Language
from spacy.tokens import Doc

# Contraction stems the lookup tables leave alone: "can't" -> "ca" + "n't".
_STEMS = {"ca": "can", "wo": "will", "sha": "shall", "could": "can"}


@Language.component("contraction_lemmas")
def contraction_lemmas(doc: Doc) -> Doc:
    """Make "can't", "cannot", "cant" and "couldn't" share the lemmas "can not"."""
    for token in doc:
        stem = _STEMS.get(token.lower_)
        if stem:
            token.lemma_ = stem
    return doc


@lru_cache(maxsize=1)
def get_nlp() -> Language:
    """The process-wide blank English pipeline with lookup lemmas."""
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.add_pipe("contraction_lemmas")
    nlp.initialize()
    return nlp


def lemmas(text: str) -> list[str]:
    """Lower-cased lemmas of `text`, for keyword matching that ignores inflection."""
    return [token.lemma_.lower() for token in get_nlp()(text)]
