"""Rasa NLU component: a bare complaint ("my knee hurts", "i have back pain") is `describe_symptoms`.

The commonest first message is a complaint with nothing else in it. DIET read "my knee hurts"
as an injury story and "knee pain" as the back-and-knee link, so the patient got one article
topic instead of an acknowledgement and the ways on. Training examples for such short
messages pulled longer questions that contain them ("are squats a no-go if my knees hurt")
to `describe_symptoms` too (held-out accuracy 0.972 -> 0.957), so the whole message is matched
here instead: only a message that is nothing but a complaint about the knee or back. Runs
after the FallbackClassifier and before the SafetyClassifier, so an emergency still wins.
"""

from __future__ import annotations

import re

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.overrule import WordsClassifier

COMPLAINT_INTENT = "describe_symptoms"

_LEAD = (
    r"(?:(?:i\s+(?:have|got|get|am\s+having|am\s+getting)|i'?m\s+(?:having|getting)|i'?ve\s+(?:got|had)"
    r"|got|having|suffering\s+(?:from|with))\s+)?"
)
_HOW_BAD = r"(?:(?:a|some|bad|really\s+bad|terrible|severe|chronic|constant|this|such)\s+)*"
_PART = r"(?:(?:my|the)\s+)?(?:(?:left|right|both)\s+)?(?:knees?|(?:lower\s+)?back)"
_HURTS = (
    r"(?:(?:really|still|always|just|so)\s+)?(?:pain|pains|ache|aches|aching|hurts?|hurting|problems?"
    r"|(?:is|are|'s|s|has\s+been|have\s+been|'s\s+been|s\s+been|keeps?)\s+(?:so\s+|really\s+|very\s+)?"
    r"(?:sore|hurting|aching|painful|killing\s+me|playing\s+up))"
)
_WHEN = (
    r"(?:\s+(?:so\s+much|a\s+lot|really\s+bad(?:ly)?|badly|again|today|lately|recently|all\s+the\s+time"
    r"|lah|leh|sia|ah|lor|ugh|pls|please)){0,2}"
)
BARE_COMPLAINT = re.compile(
    rf"^{_LEAD}{_HOW_BAD}(?:(?:pain|ache)\s+in\s+{_PART}|{_PART}\s*{_HURTS}|backache|back\s*pain){_WHEN}$"
)


def is_bare_complaint(text: str) -> bool:
    """Whether the whole message is a complaint about the knee or back, with nothing else."""
    words = re.sub(r"[^\w'\s]", " ", text.lower().replace("\u2019", "'"))
    return bool(BARE_COMPLAINT.match(" ".join(words.split())))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class ComplaintClassifier(WordsClassifier):
    """Sets the intent to `describe_symptoms` (confidence 1.0) for a bare complaint."""

    intent = COMPLAINT_INTENT

    def overrules(self, message: Message) -> bool:
        """A message that is nothing but a complaint about the knee or back."""
        return is_bare_complaint(message.get(TEXT) or "")
