"""What the patient reads when the safety layer speaks, built only from reviewed data.

Every sentence comes from `data/safety/flags.yml` (headline, advice, crisis wording) and the
practice profile (emergency number, crisis line, clinic phone): nothing clinical is written
here. Used by the action server's safety actions and, when the action server is down, by the
Rasa server itself, so the two can never say different things. `widget_marker` is the
`clinic` marker those messages carry, so the website widget shows them as an alert with a
tap-to-call link (contract 5); the texts are the same on every channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from bot.knowledge_base import BOOK_BUTTON
from bot.profile import PracticeProfile
from bot.safety.data import SafetyData, get_safety_data

HUMAN_BUTTON = {"title": "Talk to a person", "payload": "/request_human"}
# The button that resumes a form paused by a safety reply or an action-server outage.
RESUME_BUTTONS = {
    "booking_form": {"title": "Continue my booking", "payload": "/book_appointment"},
    "callback_form": {"title": "Continue my call-back request", "payload": "/request_callback"},
}

SCREEN_BUTTONS = [
    {"title": "Yes", "payload": "/affirm"},
    {"title": "No", "payload": "/deny"},
    {"title": "Not sure", "payload": "Not sure"},
]
TIER_ORDER = ("emergency", "urgent")


@dataclass(frozen=True)
class Said:
    """One flag as the patient described it: its id and the words to say back."""

    flag: str
    say: str


@dataclass
class Reply:
    """The messages to send, in order; buttons go with the last one."""

    texts: List[str] = field(default_factory=list)
    buttons: List[Dict[str, str]] = field(default_factory=list)
    tier: Optional[str] = None
    crisis: bool = False


def _join(parts: Sequence[str]) -> str:
    parts = list(dict.fromkeys(parts))
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def highest_tier(flags: Sequence[str], data: Optional[SafetyData] = None) -> Optional[str]:
    """`emergency` if any flag is one, else `urgent` (None for no flags)."""
    data = data or get_safety_data()
    tiers = {data.flags[f].tier for f in flags if f in data.flags}
    return next((t for t in TIER_ORDER if t in tiers), None)


def categories(flags: Sequence[str], data: Optional[SafetyData] = None) -> List[str]:
    """The categories of `flags`, in data-file order, without repeats."""
    data = data or get_safety_data()
    return list(dict.fromkeys(data.flags[f].category for f in flags if f in data.flags))


def compose(
    said: Sequence[Said],
    profile: PracticeProfile,
    resume_button: Optional[Dict[str, str]] = None,
    data: Optional[SafetyData] = None,
) -> Reply:
    """The crisis response and/or the alert for everything the patient described."""
    data = data or get_safety_data()
    known = [s for s in said if s.flag in data.flags]
    crisis = [s for s in known if data.flags[s.flag].is_crisis]
    medical = [s for s in known if not data.flags[s.flag].is_crisis]
    fill = _fill(profile)
    reply = Reply(tier=highest_tier([s.flag for s in known], data), crisis=bool(crisis))
    extra = [resume_button] if resume_button else []
    if crisis:
        reply.texts.append(data.crisis["opening"])
        reply.texts.append(data.crisis["help"].format(**fill))
        if medical:
            reply.texts.extend(_alert_texts(medical, data, fill))
        reply.texts.append(data.crisis["person"])
        reply.buttons = [HUMAN_BUTTON, *extra]
        return reply
    reply.texts.extend(_alert_texts(medical, data, fill))
    reply.texts.append(
        "I've put this in our clinic staff's inbox for review. If it's not an emergency, you can "
        "also call the "
        f"clinic: {fill['phone']}."
    )
    reply.buttons = extra
    return reply


def reminder(flags: Sequence[str], profile: PracticeProfile, data: Optional[SafetyData] = None) -> Reply:
    """The alert's advice again, for "what should I do?" or "should I go to hospital?" right after it.

    The tier's headline and what to do now (or the crisis help); what the patient described
    was said back in the alert itself. No new alert is stored. After an urgent alert (see a doctor today) the
    buttons lead on to a person or a booking; after an emergency, nothing competes with
    "don't wait for an appointment".
    """
    data = data or get_safety_data()
    known = [f for f in dict.fromkeys(flags) if f in data.flags]
    crisis = [f for f in known if data.flags[f].is_crisis]
    medical = [f for f in known if not data.flags[f].is_crisis]
    fill = _fill(profile)
    reply = Reply(tier=highest_tier(known, data), crisis=bool(crisis))
    if crisis:
        reply.texts.append(data.crisis["help"].format(**fill))
        reply.buttons = [HUMAN_BUTTON]
    if medical:
        tier = highest_tier(medical, data) or "urgent"
        reply.texts.append(f"⚠️ {data.tiers[tier].headline} {data.tiers[tier].action.format(**fill)}")
        if tier == "urgent" and not crisis:
            reply.buttons = [HUMAN_BUTTON, BOOK_BUTTON]
    return reply


def _fill(profile: PracticeProfile) -> Dict[str, str]:
    """The profile's numbers, as the reviewed wording's placeholders want them."""
    return {
        "emergency": profile.emergency_text(),
        "crisis_line": profile.crisis_text(),
        "phone": profile.phone_text(),
    }


def dialable(number: str) -> Optional[str]:
    """A number as a `tel:` link wants it: digits, with a leading + kept; None if none."""
    digits = re.sub(r"\D", "", number)
    if not digits:
        return None
    return ("+" if number.strip().startswith("+") else "") + digits


def widget_marker(reply: Reply, profile: PracticeProfile) -> Dict[str, str]:
    """`{"kind": "crisis"}`, or `{"kind": "emergency"|"urgent", "tel": ...}` for an alert.

    `tel` is the profile's emergency number, only when the clinic has filled it in.
    """
    if reply.crisis:
        return {"kind": "crisis"}
    marker = {"kind": reply.tier or "urgent"}
    number = profile.contact("emergency_number")
    tel = dialable(number) if number else None
    if tel:
        marker["tel"] = tel
    return marker


def _alert_texts(medical: Sequence[Said], data: SafetyData, fill: Dict[str, str]) -> List[str]:
    tier = highest_tier([s.flag for s in medical], data) or "urgent"
    headline = data.tiers[tier].headline
    said = _join([s.say for s in medical])
    advice = " ".join(dict.fromkeys(data.flags[s.flag].advice for s in medical))
    return [
        f"⚠️ {headline} You mentioned {said}.",
        advice,
        data.tiers[tier].action.format(**fill),
    ]


def screening_question(flag: str, data: Optional[SafetyData] = None) -> str:
    """The one short question asked when the detector suspects `flag`."""
    data = data or get_safety_data()
    return data.flags[flag].screen_question


UNSURE = re.compile(
    r"\b(?:not\s+sure|unsure|don'?t\s+know|dunno|idk|maybe|not\s+certain|no\s+idea|can'?t\s+tell|perhaps)\b",
    re.I,
)
YES = re.compile(r"^\s*(?:yes|yeah|yep|ya|yup|y|correct|i\s+can|still\s+can|can)\b", re.I)
NO = re.compile(r"^\s*(?:no|nope|nah|n|not\s+really|i\s+can'?t|cannot|can'?t)\b", re.I)


def screen_answer(intent: Optional[str], text: str) -> Optional[str]:
    """A screening answer as `yes`, `no`, or None for not sure or anything unclear."""
    if UNSURE.search(text):
        return None
    if intent == "affirm" or YES.search(text):
        return "yes"
    if intent == "deny" or NO.search(text):
        return "no"
    return None


def screen_is_worrying(flag: str, answer: Optional[str], data: Optional[SafetyData] = None) -> bool:
    """Whether a screening answer (`yes`, `no` or None for unsure) means the alert is needed."""
    data = data or get_safety_data()
    if answer not in ("yes", "no"):
        return True  # "not sure" or anything unclear: safety first
    return answer != data.flags[flag].screen_reassuring


def said_from_screen(flag: str, data: Optional[SafetyData] = None) -> Said:
    """What to say back after a worrying screening answer: the flag's own first wording."""
    data = data or get_safety_data()
    return Said(flag=flag, say=data.flags[flag].say)
