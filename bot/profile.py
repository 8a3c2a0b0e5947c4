"""The practice profile: who the clinic is and how to reach it, from one data file.

Every contact detail the assistant says comes from `data/practice_profile.yml`, so the
clinic edits one file and nothing in code. Placeholders ("FILL_IN: ...") are allowed while
developing and rendered as an honest "not configured yet"; production refuses them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

PROFILE_PATH = Path(__file__).resolve().parent.parent / "data" / "practice_profile.yml"
PLACEHOLDER_PREFIX = "FILL_IN:"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REQUIRED = (
    "practice_name",
    "doctor",
    "country",
    "timezone",
    "phone",
    "address",
    "booking_url",
    "emergency_number",
    "emergency_advice",
    "opening_hours",
)
CONTACT_FIELDS = (
    "phone", "whatsapp", "email", "address", "booking_url", "emergency_number", "crisis_line"
)
# Answers to practical questions (bot/practical.py). The clinic may leave any of them as a
# placeholder, even in production: the assistant then says it can't answer and offers a
# person. They are listed by `python -m bot.check` as unanswered.
ANSWER_FIELDS = (
    "fees", "insurance", "referral", "waiting_time", "directions", "parking", "doctor_background"
)
HOURS_CONFIRMED = "confirmed"
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class ProfileError(ValueError):
    """The profile file is missing fields or has malformed values."""


def is_placeholder(value: Any) -> bool:
    """True for a value the clinic still has to fill in."""
    return isinstance(value, str) and value.strip().startswith(PLACEHOLDER_PREFIX)


@dataclass(frozen=True)
class PracticeProfile:
    """Validated practice details; build with `load_profile`."""

    data: Mapping[str, Any]
    hours: Dict[str, Tuple[time, time]]

    def __getattr__(self, name: str) -> Any:
        """Expose profile keys as attributes (`profile.doctor`)."""
        try:
            return self.data[name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    @property
    def placeholders(self) -> List[str]:
        """Names of fields still to be filled in by the clinic."""
        names = [
            key for key, value in self.data.items()
            if is_placeholder(value) and key not in ANSWER_FIELDS
        ]
        if not self.hours_confirmed:
            names.append("opening_hours")
        return names

    @property
    def unanswered(self) -> List[str]:
        """Practical questions the assistant can't answer until the clinic fills them in."""
        return [key for key in ANSWER_FIELDS if self.answer(key) is None]

    def answer(self, field: str) -> Optional[str]:
        """The clinic's own answer to a practical question, or None while not filled in."""
        value = self.data.get(field)
        if value is None or is_placeholder(value) or not str(value).strip():
            return None
        return str(value).strip()

    @property
    def hours_confirmed(self) -> bool:
        """The clinic has confirmed its opening hours (status: confirmed)."""
        return str(self.data["opening_hours"].get("status", "")).strip().lower() == HOURS_CONFIRMED

    def contact(self, field: str) -> Optional[str]:
        """A contact detail, or None while it is still a placeholder."""
        value = self.data.get(field)
        return None if value is None or is_placeholder(value) else str(value)

    def phone_text(self) -> str:
        """The phone number as patients should read it."""
        return self.contact("phone") or "the clinic's phone number (not configured yet)"

    def emergency_text(self) -> str:
        """The emergency number, falling back to generic advice if unset."""
        number = self.contact("emergency_number")
        return f"call {number}" if number else "call your local emergency number"

    def crisis_text(self) -> str:
        """The crisis line for suicidal thoughts or self-harm, or generic wording if unset."""
        line = self.contact("crisis_line")
        return f"call {line}" if line else "call your local emergency number or a crisis helpline"

    def contact_lines(self) -> List[str]:
        """Lines for a handoff message: only details the clinic has confirmed."""
        lines = [f"{self.practice_name}, {self.doctor}"]
        labels = {
            "phone": "Phone",
            "whatsapp": "WhatsApp",
            "email": "Email",
            "address": "Address",
            "booking_url": "Book online",
        }
        for field, label in labels.items():
            value = self.contact(field)
            if value:
                lines.append(f"{label}: {value}")
        if len(lines) == 1:
            lines.append("Contact details are not configured yet: please ask clinic staff.")
        return lines

    @property
    def tz(self) -> ZoneInfo:
        """The practice's timezone, for opening hours."""
        return ZoneInfo(self.data["timezone"])

    def is_open(self, when: datetime) -> bool:
        """Whether `when` (timezone-aware) falls within opening hours."""
        local = when.astimezone(self.tz)
        span = self.hours.get(DAYS[local.weekday()])
        return span is not None and span[0] <= local.time() < span[1]

    def open_now(self, when: datetime) -> Optional[bool]:
        """Whether the clinic is open at `when`; None while its hours are not confirmed.

        Unconfirmed hours are never used to tell a patient the clinic is open or closed.
        """
        return self.is_open(when) if self.hours_confirmed else None

    def hours_on(self, when: datetime) -> Optional[Tuple[time, time]]:
        """Opening and closing time on the day of `when` (local), None if closed that day."""
        return self.hours.get(DAYS[when.astimezone(self.tz).weekday()])

    def when_text(self, moment: datetime, current: datetime) -> str:
        """'today at 09:00', 'tomorrow at 09:00' or 'on Monday at 09:00', seen from `current`."""
        local, base = moment.astimezone(self.tz), current.astimezone(self.tz)
        days = (local.date() - base.date()).days
        day = "today" if days == 0 else "tomorrow" if days == 1 else f"on {local:%A}"
        return f"{day} at {local:%H:%M}"

    def next_opening(self, when: datetime) -> Optional[datetime]:
        """The next time the practice opens after `when` (None if never open)."""
        local = when.astimezone(self.tz)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            span = self.hours.get(DAYS[day.weekday()])
            if not span:
                continue
            opening = datetime.combine(day, span[0], tzinfo=self.tz)
            if opening > local:
                return opening
        return None

    def closing_today(self, when: datetime) -> Optional[time]:
        """Today's closing time in the practice's timezone, if open today."""
        local = when.astimezone(self.tz)
        span = self.hours.get(DAYS[local.weekday()])
        return span[1] if span else None

    def hours_text(self) -> str:
        """Opening hours in one readable line."""
        parts = []
        for day in DAYS:
            span = self.hours.get(day)
            shown = f"{span[0]:%H:%M}-{span[1]:%H:%M}" if span else "closed"
            parts.append(f"{day.capitalize()} {shown}")
        return ", ".join(parts)


def _parse_hours(raw: Mapping[str, Any]) -> Dict[str, Tuple[time, time]]:
    hours: Dict[str, Tuple[time, time]] = {}
    for day in DAYS:
        value = str(raw.get(day, "closed")).strip().lower()
        if value == "closed":
            continue
        match = _HOURS.match(value)
        if not match:
            raise ProfileError(f"opening_hours.{day}: expected HH:MM-HH:MM or closed, got {value!r}")
        start = time(int(match.group(1)), int(match.group(2)))
        end = time(int(match.group(3)), int(match.group(4)))
        if end <= start:
            raise ProfileError(f"opening_hours.{day}: closing time must be after opening")
        hours[day] = (start, end)
    return hours


def parse_profile(data: Mapping[str, Any], production: bool = False) -> PracticeProfile:
    """Validate profile data; in production placeholders are an error."""
    missing = [key for key in REQUIRED if not data.get(key)]
    if missing:
        raise ProfileError(f"practice profile is missing: {', '.join(missing)}")
    if not isinstance(data["opening_hours"], Mapping):
        raise ProfileError("opening_hours must be a mapping of weekday to HH:MM-HH:MM")
    try:
        ZoneInfo(str(data["timezone"]))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ProfileError(f"unknown timezone {data['timezone']!r}") from exc
    if not re.fullmatch(r"[A-Z]{2}", str(data["country"])):
        raise ProfileError("country must be a two-letter ISO code such as SG")
    booking = data.get("booking_url")
    if not is_placeholder(booking) and not str(booking).startswith("https://"):
        raise ProfileError("booking_url must be an https:// link")
    profile = PracticeProfile(data=dict(data), hours=_parse_hours(data["opening_hours"]))
    if production and profile.placeholders:
        raise ProfileError(
            "practice profile still has placeholders: " + ", ".join(profile.placeholders)
        )
    return profile


def load_profile(path: Optional[Path] = None, production: Optional[bool] = None) -> PracticeProfile:
    """Read and validate the profile file (file and production mode from settings by default)."""
    if path is None or production is None:
        from bot.settings import get_settings

        settings = get_settings()
        path = path or settings.practice_profile or PROFILE_PATH
        production = settings.is_production if production is None else production
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    return parse_profile(data, production=production)


@lru_cache(maxsize=1)
def get_profile() -> PracticeProfile:
    """The profile of this process, validated once on first use."""
    return load_profile()
