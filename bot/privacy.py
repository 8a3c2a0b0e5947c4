"""What happens to the patient's details and this conversation, for a patient who asks.

At the consent question or any form prompt a patient may ask "why do you need my number?"
or "who will see my details?"; at any other turn "is this chat private?" or "is my data
safe?". They get a plain answer (what is kept, why, who sees it, how to have it deleted),
never a topic answer or "Sorry, I need a yes or no". Recognised by words, not by the NLU
model: a wrong guess here would answer a different question while personal data is being
asked for, and the model read "is my data safe" as a question about side effects.
"""

from __future__ import annotations

import re

from bot.profile import PracticeProfile

PRIVACY_INTENT = "ask_privacy"

_ABOUT_DATA = re.compile(  # the patient's own details ("who will see me? the doctor's name?" is not)
    r"\b(?:my|our)\s+(?:\w+\s+)?(?:details?|data|info(?:rmation)?|number|name|e-?mail|particulars|contact)\b"
    r"|\bpersonal\s+(?:data|details|information|info)\b|\bprivacy\b|\bpdpa\b",
    re.I,
)
_ASKS = re.compile(
    r"\b(?:why\b|what\s+for\b|what\s+happens\s+(?:to|with)\b|what\s+(?:do|will|would|are|is)\s+(?:you|they|the\s+clinic|it)\s+(?:\w+\s+){0,3}"
    r"(?:do|use|for)\b|who\s+(?:\w+\s+){0,2}(?:see|sees|read|reads|access|get|gets|has)\b"
    r"|(?:do|will|would|are)\s+you\s+(?:keep|keeping|save|saving|record|recording|store|storing)\b"
    r"|(?:safe|secure|share|shared|sell|sold|spam|store|stored|kept|delete|deleted|private|confidential)\b|privacy|pdpa)",
    re.I,
)
_ABOUT_CHAT = re.compile(  # this conversation, not a chat the patient wants to have
    r"\b(?:this|these|the|our|my)\s+(?:chat|conversation|messages?|chats|conversations)\b(?!\s+(?:to|with)\b)"
    r"|\bwhat\s+i\s+(?:type|write|say|tell\s+you)\b",
    re.I,
)
_CHAT_ASKS = re.compile(
    r"\b(?:private|confidential|secure|safe|record(?:ed)?|sav(?:e|ed)|stor(?:e|ed)|kept|keep|logged"
    r"|who\s+(?:\w+\s+){0,2}(?:see|sees|read|reads|access)|(?:see|read)\s+(?:it|this|them)|delete[ds]?|shared?)\b",
    re.I,
)
_CLAUSES = re.compile(r"[.?!;,\n]+|\s+(?:but|and\s+also)\s+", re.I)


def asks_about_personal_data(text: str) -> bool:
    """Whether `text` asks why or how its details are used ("why do you need my number?")."""
    return bool(_ABOUT_DATA.search(text) and _ASKS.search(text))


def asks_about_privacy(text: str) -> bool:
    """Whether one clause of `text` asks about its details or this chat ("is this chat private?").

    Stricter than `asks_about_personal_data`, for any turn of the conversation: both halves
    must be in one clause, so "my name is Sarah, is it safe to run?" stays a question about
    running.
    """
    for clause in _CLAUSES.split(text):
        if asks_about_personal_data(clause) or (_ABOUT_CHAT.search(clause) and _CHAT_ASKS.search(clause)):
            return True
    return False


def privacy_answer(profile: PracticeProfile) -> str:
    """What is asked for, why, who sees it, and how to say no: what the forms really do."""
    return (
        "I ask for your name and mobile number only so that our clinic staff can contact you "
        "about this request. Only clinic staff can see them, they aren't used for anything "
        "else, and you can ask the clinic to delete them at any time. If you'd rather not "
        f"share them, just say no and phone the clinic instead: {profile.phone_text()}."
    )


def conversation_privacy_answer(profile: PracticeProfile, keep_days: int) -> str:
    """What the clinic keeps of a conversation, who sees it and for how long, at any turn.

    `keep_days` is RETENTION_DAYS: the retention service (`bot.storage.retention purge
    --every`, started by `make run`, compose and systemd) deletes what is older.
    """
    return (
        "This conversation is kept by the clinic so that our staff can read it and follow up; "
        "only clinic staff can see it. I ask for your name and mobile number only if you want "
        "the clinic to contact you, and only with your agreement; they aren't used for anything "
        f"else. Conversations and the details in them are deleted {keep_days} days after the last "
        "message. You can ask the clinic to delete your conversation and details sooner, at any "
        f"time: ask a member of staff (\"Talk to a person\") or phone {profile.phone_text()}."
    )
