"""Rasa NLU component: a bare request for advice ("what should I do?", "any advice?") is `ask_capabilities`.

Right after a complaint ("my knee hurts"), the next message is very often a request for
advice that names nothing: "what should I do about it?", "any advice?", "how can I fix
it?", "is there anything I can do at home?". DIET had no topic to go on: most fell back to
"Did you mean ...", and a second try handed the patient to staff. Such a message is
`ask_capabilities` here; data/rules/faq.yml answers it after a complaint with the article's
treatment options for that body part (`action_suggest_treatments`), and anywhere else with
what the assistant can help with. Only a message that is nothing but such a request is
taken: one that names a topic ("how do I treat it", "what can I take for it", "should I rest
or keep moving") keeps DIET's reading. Runs after the FallbackClassifier and before the
SafetyClassifier, so an emergency still wins.
"""

from __future__ import annotations

import re

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.overrule import WordsClassifier

ADVICE_INTENT = "ask_capabilities"

_LEAD = r"(?:(?:so|ok|okay|and|then|well|hmm+|but|um+|doctor|doc|please|pls|sorry)\s+){0,2}"
_IT = r"(?:it|this|that|them|the\s+pain|my\s+pain|the\s+problem|my\s+problem)"
_BETTER = (
    rf"(?:to\s+(?:make\s+{_IT}\s+better|make\s+{_IT}\s+stop|feel\s+better|get\s+better|help(?:\s+{_IT}|\s+myself)?"
    rf"|ease\s+{_IT}|relieve\s+{_IT}))"
)
_WHERE = r"(?:at\s+home|myself|on\s+my\s+own|by\s+myself|right\s+now|now|for\s+now|in\s+the\s+meantime|meanwhile)"
_ABOUT = rf"(?:(?:about|for|with)\s+{_IT})"
_ADVICE_WORD = r"(?:advice|advise|suggestions?|tips?|ideas?|recommendations?)"
_REQUESTS = (
    # what should i do (about it) (now) / what do i do / what can i do to make it better
    rf"what\s+(?:should|shall|can|could|do|must|would)\s+i\s+(?:do|try)"
    rf"(?:\s+{_ABOUT})?(?:\s+{_BETTER})?(?:\s+{_WHERE})?",
    # what do you recommend / suggest / advise (i do)
    rf"what\s+(?:do|would|can|could)\s+you\s+(?:recommend|suggest|advise)(?:\s+i\s+do)?(?:\s+{_ABOUT})?",
    # any advice / do you have any tips / can you give me some advice / i need advice
    rf"(?:(?:do\s+you\s+have|have\s+you\s+got|got|can\s+you\s+give\s+me|could\s+you\s+give\s+me|give\s+me"
    rf"|can\s+i\s+(?:have|get)|i\s+need|need|i\s+want|i'?d\s+like)\s+)?(?:any|some)?\s*{_ADVICE_WORD}"
    rf"(?:\s+(?:for\s+me|{_ABOUT}|please))?",
    # how can i fix it / ease the pain / deal with it (at home)
    rf"how\s+(?:can|do|should|could|would)\s+i\s+(?:fix|ease|relieve|help|manage|sort\s+out|get\s+rid\s+of"
    rf"|deal\s+with|stop|improve|cope\s+with|handle|make\s+{_IT}\s+better)(?:\s+{_IT})?(?:\s+{_WHERE})?",
    # is there anything i can do (about it) (at home)
    rf"(?:is\s+there\s+)?(?:anything|something)\s+(?:i\s+can|i\s+could|i\s+should|to)\s+(?:do|try)"
    rf"(?:\s+{_ABOUT})?(?:\s+{_BETTER})?(?:\s+{_WHERE})?",
    # what can be done (about it) / what are my options / what now
    rf"what\s+can\s+(?:be|i\s+get)\s+done(?:\s+{_ABOUT})?",
    r"what\s+are\s+my\s+options",
    r"(?:what\s+now|now\s+what|what\s+next)",
)
_TRAIL = r"(?:\s+(?:then|please|pls|lah|leh|ah|doctor|doc|thanks|thank\s+you)){0,2}"
ADVICE_REQUEST = re.compile(rf"^{_LEAD}(?:{'|'.join(_REQUESTS)}){_TRAIL}$")


def is_advice_request(text: str) -> bool:
    """Whether the whole message asks for advice without naming a topic."""
    words = re.sub(r"[^\w'\s]", " ", text.lower().replace("\u2019", "'")).split()
    return bool(ADVICE_REQUEST.match(" ".join(w.strip("'") for w in words if w.strip("'"))))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class AdviceRequestClassifier(WordsClassifier):
    """Sets the intent to `ask_capabilities` (confidence 1.0) for a bare request for advice."""

    intent = ADVICE_INTENT

    def overrules(self, message: Message) -> bool:
        """A message that is nothing but a request for advice."""
        return is_advice_request(message.get(TEXT) or "")
