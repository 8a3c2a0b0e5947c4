"""Whitespace tokens with spaCy lookup lemmas, so "injections" and "injection" share features.

Rasa's WhitespaceTokenizer sets each token's lemma to its text. Patients write "knees",
"hurting", "exercising"; giving the featurizers the lemma lets fewer examples cover more
wordings. Token boundaries stay exactly Rasa's, so entity offsets are unchanged.
"""

from __future__ import annotations

from typing import List

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message
from spacy.tokens import Doc

from bot.nlp import get_nlp


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False
)
class LemmaTokenizer(WhitespaceTokenizer):
    """WhitespaceTokenizer whose tokens carry spaCy lookup lemmas."""

    def tokenize(self, message: Message, attribute: str) -> List[Token]:
        """Tokenize like Rasa, then lemmatize the words in one spaCy pass."""
        tokens = super().tokenize(message, attribute)
        if not tokens:
            return tokens
        nlp = get_nlp()
        doc = Doc(nlp.vocab, words=[t.text.lower() for t in tokens])
        for _, component in nlp.pipeline:
            doc = component(doc)
        for token, word in zip(tokens, doc, strict=True):
            token.lemma = word.lemma_.lower() or token.text.lower()
        return tokens
