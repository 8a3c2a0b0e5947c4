"""Why the assistant asks for personal details, for a patient who asks before answering.

At the consent question or any form prompt a patient may ask "why do you need my number?"
or "who will see my details?". They get a plain answer (what is asked, why, who sees it,
how to say no) and the question again, never "Sorry, I need a yes or no". Recognised by
words, not by the NLU model: the model has no intent for it, and a wrong guess here
would answer a different question while personal data is being asked for.
"""

from __future__ import annotations

import re

from bot.profile import PracticeProfile

_ABOUT_DATA = re.compile(  # the patient's own details ("who will see me? the doctor's name?" is not)
    r"\b(?:my|our)\s+(?:\w+\s+)?(?:details?|data|info(?:rmation)?|number|name|e-?mail|particulars|contact)\b"
    r"|\bpersonal\s+(?:data|details|information|info)\b|\bprivacy\b|\bpdpa\b",
    re.I,
)
_ASKS = re.compile(
    r"\b(?:why\b|what\s+for\b|what\s+happens\s+(?:to|with)\b|what\s+(?:do|will|would|are|is)\s+(?:you|they|the\s+clinic|it)\s+(?:\w+\s+){0,3}"
    r"(?:do|use|for)\b|who\s+(?:\w+\s+){0,2}(?:see|sees|read|reads|access|get|gets|has)\b"
    r"|(?:safe|secure|share|shared|sell|sold|spam|store|stored|kept|delete|deleted)\b|privacy|pdpa)",
    re.I,
)


def asks_about_personal_data(text: str) -> bool:
    """Whether `text` asks why or how its details are used ("why do you need my number?")."""
    return bool(_ABOUT_DATA.search(text) and _ASKS.search(text))


def privacy_answer(profile: PracticeProfile) -> str:
    """What is asked for, why, who sees it, and how to say no: what the forms really do."""
    return (
        "I ask for your name and mobile number only so that our clinic staff can contact you "
        "about this request. Only clinic staff can see them, they aren't used for anything "
        "else, and you can ask the clinic to delete them at any time. If you'd rather not "
        f"share them, just say no and phone the clinic instead: {profile.phone_text()}."
    )
