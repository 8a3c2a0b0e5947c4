"""Practical questions (hours, fees, insurance, referral, waiting time, location, parking, the doctor, privacy).

Each is answered only from the practice profile (data/practice_profile.yml), in the
clinic's own words. Where the clinic has not filled a value in, the patient is told plainly
that the assistant can't answer that and is offered a person or a booking: never a price,
policy or opening time the profile does not hold. Unconfirmed opening hours are not used.
The privacy answer says what the product itself does with a conversation (`bot.privacy`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Dict, List, Optional

from bot.privacy import PRIVACY_INTENT, conversation_privacy_answer
from bot.profile import PracticeProfile
from bot.settings import get_settings

BOOK_BUTTON = {"title": "Book a consultation", "payload": "/book_appointment"}
HUMAN_BUTTON = {"title": "Talk to a person", "payload": "/request_human"}


@dataclass(frozen=True)
class PracticalAnswer:
    """What the patient reads, and the buttons under it."""

    text: str
    buttons: List[Dict[str, str]] = field(default_factory=lambda: [HUMAN_BUTTON, BOOK_BUTTON])
    answered: bool = True  # False: the profile does not hold this, staff were offered


def _cannot(profile: PracticeProfile, what: str) -> PracticalAnswer:
    phone = profile.contact("phone")
    call = f" or call {phone}" if phone else ""
    return PracticalAnswer(
        text=f"I'm sorry, I can't answer questions about {what}: the clinic hasn't given me that "
        f"information, and I don't want to guess. Our staff can tell you{call}, or you can "
        "ask when you book a consultation.",
        answered=False,
    )


def opening_hours(profile: PracticeProfile, now: datetime) -> PracticalAnswer:
    """Today's hours first ('today'), then the week; nothing while the hours are unconfirmed."""
    if not profile.hours_confirmed:
        return _cannot(profile, "opening hours (they haven't been confirmed yet)")
    today = profile.hours_on(now)
    if today and profile.is_open(now):
        first = f"We're open today until {today[1]:%H:%M}."
    elif today and now.astimezone(profile.tz).time() < today[0]:
        first = f"We open today at {today[0]:%H:%M} (until {today[1]:%H:%M})."
    else:
        opening = profile.next_opening(now)
        closed = "We're closed now" if today else "We're closed today"
        first = f"{closed}; we open again {profile.when_text(opening, now)}." if opening else f"{closed}."
    return PracticalAnswer(text=f"{first}\nOur opening hours: {profile.hours_text()}.")


def _field_answer(profile: PracticeProfile, name: str, what: str, lead: str = "") -> PracticalAnswer:
    value = profile.answer(name)
    if value is None:
        return _cannot(profile, what)
    return PracticalAnswer(text=f"{lead}{value}")


def fees(profile: PracticeProfile, now: datetime) -> PracticalAnswer:
    """The clinic's fees policy as written; never a figure of our own."""
    return _field_answer(profile, "fees", "fees or the cost of a consultation or treatment")


def insurance(profile: PracticeProfile, now: datetime) -> PracticalAnswer:
    """Insurance, Medisave, CHAS and payment, as the clinic wrote it."""
    return _field_answer(profile, "insurance", "insurance, Medisave or payment")


def referral(profile: PracticeProfile, now: datetime) -> PracticalAnswer:
    """Whether a GP or polyclinic referral is needed, as the clinic wrote it."""
    return _field_answer(profile, "referral", "referrals")


def waiting_time(profile: PracticeProfile, now: datetime) -> PracticalAnswer:
    """How soon a new patient is usually seen, as the clinic wrote it; never an estimate of ours."""
    return _field_answer(profile, "waiting_time", "waiting times or how soon you can be seen")


def parking(profile: PracticeProfile, now: datetime) -> PracticalAnswer:
    """Where to park, as the clinic wrote it."""
    return _field_answer(profile, "parking", "parking")


def location(profile: PracticeProfile, now: datetime) -> PracticalAnswer:
    """The address and how to get there; whichever of the two the profile holds."""
    address = profile.contact("address")
    directions = profile.answer("directions")
    if not address and not directions:
        return _cannot(profile, "where the clinic is or how to get there")
    lines = [f"{profile.practice_name}: {address}" if address else "", directions or ""]
    return PracticalAnswer(text="\n".join(line for line in lines if line))


def doctor(profile: PracticeProfile, now: datetime) -> PracticalAnswer:
    """Who the doctor is: the article's description, plus the background the clinic gave."""
    about = (
        f"{profile.doctor} at {profile.practice_name} offers expert diagnosis and personalised "
        "treatment plans for lower back and knee pain, according to our clinic's article."
    )
    background = profile.answer("doctor_background")
    if background:
        return PracticalAnswer(text=f"{about}\n{background}")
    return PracticalAnswer(
        text=f"{about} I don't have details of {profile.doctor}'s qualifications, specialty "
        "or the procedures they perform, so I can't answer that. Our staff can tell you, or "
        "you can ask at a consultation.",
        answered=False,
    )


def privacy(profile: PracticeProfile, now: datetime) -> PracticalAnswer:
    """What the clinic keeps of the conversation, who sees it, and how to have it deleted."""
    keep_days = get_settings().retention_days
    return PracticalAnswer(text=conversation_privacy_answer(profile, keep_days), buttons=[HUMAN_BUTTON])


def outside_hours_warning(profile: PracticeProfile, when: datetime, has_time: bool) -> Optional[str]:
    """A note when a requested booking time falls outside confirmed opening hours.

    `when` is the local time the patient asked for; `has_time` says whether they named a
    time of day (else only the day is checked). Nothing while the hours are unconfirmed.
    """
    if not profile.hours_confirmed:
        return None
    local = when if when.tzinfo else when.replace(tzinfo=profile.tz)
    span = profile.hours_on(local)
    day = f"{local:%A}s"
    if span is None:
        return f"Please note the clinic is closed on {day}, so our staff will suggest another day."
    if has_time and not span[0] <= local.time() < span[1]:
        return (
            f"Please note that on {day} the clinic is open {span[0]:%H:%M}-{span[1]:%H:%M}, so our "
            "staff may suggest another time."
        )
    return None


ANSWERS: Dict[str, Callable[[PracticeProfile, datetime], PracticalAnswer]] = {
    "ask_opening_hours": opening_hours,
    "ask_fees": fees,
    "ask_insurance": insurance,
    "ask_referral": referral,
    "ask_waiting_time": waiting_time,
    "ask_location": location,
    "ask_parking": parking,
    "ask_doctor": doctor,
    PRIVACY_INTENT: privacy,
}


def practical_answer(intent: Optional[str], profile: PracticeProfile, now: datetime) -> Optional[PracticalAnswer]:
    """The answer for a practical intent, or None if the intent is not a practical question."""
    answer = ANSWERS.get(intent or "")
    return answer(profile, now) if answer else None
