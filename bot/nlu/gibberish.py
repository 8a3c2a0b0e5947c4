"""Is this message made of words at all? A check that does not depend on DIET.

DIET always picks one of the intents it was trained on, and for a keyboard mash or made-up
words ("floob blarp", "blorp zzz") it can pick a topic with high confidence: the patient then
gets the PRP answer to nonsense. This module asks a simpler question first: does any word in
the message exist, in English (spaCy's lookup tables, shipped in `spacy-lookups-data`) or in
the assistant's own training data (drug names, "medisave", "Yong Ren", Singlish particles)?

- A word is *known* when it is in that vocabulary (word forms and lemmas alike).
- A word is a *typo* of a known word when one deletion from each side makes them meet
  ("kne" and "knee", "bakc" and "back", "pian" and "pain"); only the training vocabulary
  is used for this, so a patient's misspelt "sciatca" counts, but made-up words that happen to
  sit one letter from some rare English word do not.
- Gibberish: at least one word, no known word, and no more typos than unknown words.

Digits, e-mail addresses and non-Latin scripts are never judged (a phone number, an address
or a message in Chinese is not gibberish; DIET and the forms deal with them).
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import FrozenSet, Iterable, List, Set

import spacy_lookups_data
from spacy.lang.en.stop_words import STOP_WORDS

WORD = re.compile(r"[a-z]+")
# A token that carries digits, an @ or a URL is data (a phone, an e-mail), not words.
DATA_TOKEN = re.compile(r"[0-9@]|https?:|www\.")
MIN_TYPO_WORD = 4  # training words shorter than this are not used as typo targets
_TABLES = ("en_lemma_lookup", "en_lemma_index", "en_lemma_exc")


@lru_cache(maxsize=1)
def english_words() -> FrozenSet[str]:
    """English word forms and lemmas from spaCy's lookup tables, plus the stop words."""
    folder = Path(spacy_lookups_data.__file__).parent / "data"
    words: Set[str] = set(STOP_WORDS)
    for name in _TABLES:
        table = json.loads(gzip.open(folder / f"{name}.json.gz").read())
        if name == "en_lemma_lookup":
            words.update(table)
            words.update(table.values())
        else:  # {part of speech: [lemmas]} or {part of speech: {form: [lemmas]}}
            for entries in table.values():
                words.update(entries)
    return frozenset(w.lower() for w in words if w.isalpha())


def words_of(text: str) -> List[str]:
    """The Latin-script words of `text` worth judging (two letters or more)."""
    found: List[str] = []
    for token in text.lower().split():
        if DATA_TOKEN.search(token):
            continue
        found.extend(w for w in WORD.findall(token) if len(w) >= 2)
    return found


def _deletes(word: str) -> Set[str]:
    """The word itself and every form with one letter left out."""
    return {word, *(word[:i] + word[i + 1:] for i in range(len(word)))}


@dataclass
class Vocabulary:
    """English plus the training data's words, with a one-deletion index for typos."""

    domain: Set[str] = field(default_factory=set)
    _typo_index: Set[str] = field(default_factory=set, repr=False)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Vocabulary:
        """The vocabulary of the assistant's training examples."""
        domain = {w for text in texts for w in words_of(text)}
        return cls.from_words(domain)

    @classmethod
    def from_words(cls, domain: Iterable[str]) -> Vocabulary:
        """Rebuild from a stored word list."""
        words = set(domain)
        index: Set[str] = set()
        for word in words:
            if len(word) >= MIN_TYPO_WORD:
                index.update(_deletes(word))
        return cls(words, index)

    def known(self, word: str) -> bool:
        """In English or in the training data."""
        return word in self.domain or word in english_words()

    def typo(self, word: str) -> bool:
        """One edit (or a swap of two letters) away from a training word."""
        return len(word) >= 3 and bool(_deletes(word) & self._typo_index)

    def is_gibberish(self, text: str) -> bool:
        """No real word in the message (see the module docstring)."""
        words = words_of(text)
        if not words:
            return False
        if any(self.known(w) for w in words):
            return False
        typos = sum(1 for w in words if self.typo(w))
        return typos <= len(words) - typos
