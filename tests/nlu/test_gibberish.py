"""Made-up words are nonsense, a patient's real words (typos, names, Singlish, data) are not.

The check runs on the vocabulary the component learns from the project's own training data,
knowledge base, article and safety flags, exactly as `rasa train` builds it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rasa.shared.nlu.training_data.loading import load_data

from bot.nlu.gibberish import Vocabulary
from bot.nlu.gibberish_classifier import NONSENSE_INTENT, VOCABULARY_SOURCES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    data = load_data(str(ROOT / "data" / "nlu"))
    texts = [m.get("text") for m in data.intent_examples if m.get("intent") != NONSENSE_INTENT]
    texts.extend(p.read_text(encoding="utf-8") for p in VOCABULARY_SOURCES)
    return Vocabulary.from_texts(texts)


# None of these is in the training data.
MADE_UP = [
    "floob blarp", "blorp zzz", "grumbo snizzle", "zxqv", "wug fleem", "snorkle blimf",
    "qwop qwop", "hrrrm", "jkjkjk", "pfft zrrt", "dsfkjh sdkfj", "xkcd plorg", "vlorp gnarf",
]
# Real messages, some misspelt, some with data the forms ask for.
REAL = [
    "kne pian", "my bakc hurts", "sciatca", "physio?", "prp", "medisave", "is dr yong ren in",
    "ok", "thx", "lol", "hi", "can or not", "knee pain lah", "Tan Wei Ming", "9123 4567",
    "tan.wm@example.com", "+65 6123 4567", "mri", "acl tear", "hurts when i climb stairs",
    "bursitis", "paracetamol dose", "tmr 3pm", "pls call me",
]


@pytest.mark.parametrize("text", MADE_UP)
def test_made_up_words_are_nonsense(vocabulary: Vocabulary, text: str) -> None:
    assert vocabulary.is_gibberish(text)


@pytest.mark.parametrize("text", REAL)
def test_real_words_typos_and_contact_details_are_not_nonsense(
    vocabulary: Vocabulary, text: str
) -> None:
    assert not vocabulary.is_gibberish(text)


@pytest.mark.parametrize("text", ["膝盖痛", "🙂👍", "...", ""])
def test_other_scripts_emoji_and_punctuation_are_left_to_the_model(
    vocabulary: Vocabulary, text: str
) -> None:
    assert not vocabulary.is_gibberish(text)


def test_the_held_out_split_is_judged_like_its_labels(vocabulary: Vocabulary) -> None:
    """Every held-out nonsense example is caught and no other held-out message is."""
    blocks = yaml.safe_load((ROOT / "tests" / "nlu" / "holdout.yml").read_text())["nlu"]
    wrong = [
        (block["intent"], line[2:].strip())
        for block in blocks
        for line in block["examples"].splitlines()
        if line.startswith("- ")
        and vocabulary.is_gibberish(line[2:].strip()) != (block["intent"] == NONSENSE_INTENT)
    ]
    assert not wrong
