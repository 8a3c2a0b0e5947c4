"""Every limit and text, phone and email rule for what patients give us, in one place.

Two readers, one set of rules. The forms (`actions/booking.py`) call the `clean_*`
functions: pure, no Rasa, each returns the cleaned value or raises `Invalid` with the
friendly sentence the form says before asking again; hostile input (very long text,
control characters, markup, emoji in a name) gets a clear re-ask, never a crash. Storage
(`bot.storage`) calls the `check_*` functions on the same limits before it writes a row
and raises `ValidationError` naming the field, so nothing the forms accept is refused
by the database layer and nothing they refuse can be stored by another caller.
Context text that must never make a record fail (a red-flag excerpt, a comment) goes
through `clean_excerpt` instead. Imports nothing of the project: every layer may use it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Optional
from zoneinfo import ZoneInfo

import phonenumbers

# --- limits (characters) -------------------------------------------------------------
MAX_NAME = 100
MAX_PHONE_INPUT = 40  # as typed, before it becomes E.164
MAX_PHONE_E164 = 16
MAX_EMAIL = 254
MAX_PAIN_AREA_INPUT = 60
MAX_BODY_PART = 100
MAX_TIMES = 200
MAX_DESCRIPTION = 1000
MIN_DESCRIPTION = 3
MAX_CONVERSATION_ID = 255
MAX_IDEMPOTENCY_KEY = 128
MAX_CHANNEL = 50
MAX_EXCERPT = 500
MAX_FLAGS = 500
MAX_CATEGORIES = 200
MAX_REASON = 500
MAX_TOPIC = 200
MAX_COMMENT = 2000
MAX_FEEDBACK_COMMENT = 500  # what the feedback action keeps of a typed comment
MAX_STAFF_NAME = 100
MAX_ERROR = 2000
MAX_TOPICS = 1000  # a conversation summary's comma-separated topic keys
MAX_SEARCH_TEXT = 20_000  # a conversation summary's patient text, for staff search

ALLOWED_CONTROL = frozenset({"\n", "\r", "\t"})
PHONE_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
KEY = re.compile(r"^[a-z0-9_]{1,64}$")  # flag and category keys such as cauda_equina
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
SKIP_WORDS = {"skip", "no", "none", "no email", "nope", "n/a", "na", "-", "don't have one", "dont have"}
NOT_IN_A_NAME = frozenset(
    """i i'm i've i'd me my mine myself you you're your yours ur we our us it it's its this that these those
    what what's whats why where which should would could shall must does did don't dont doesn't
    doesnt isn't isnt can't cant cannot won't wont am are is was were have has had need want know hurt hurts
    hurting pain painful ache aching knee knees hello hi hey thanks thank please pls okay yes nope not sorry
    help book booking appointment""".split()
)
"""Words no one's name has: "what should i do", "my knee hurts" or "hello" typed at the name
prompt is not taken as a name. Words that are also names ("May", "Will", "How", "Who", "Do",
"Can", "No", and "U" as in "U Aung Kyaw") are not in it."""

NAME_PREFIX = re.compile(
    r"^(?:(?:actually|sorry|oh)[, ]+)?"
    r"(?:my name is|my name's|name is|name's|i am|i'm|im|it's|it is|this is|call me)\s+",
    re.I,
)
PHONE_PREFIX = re.compile(
    r"^(?:(?:actually|sorry|oh)[, ]+)?(?:my )?(?:mobile|phone|cell|handphone|hp|number|contact)"
    r"(?: number)?(?: is|:)?\s*",
    re.I,
)
BODY_PARTS = {
    "lower back": {"back", "lower back", "my back", "lower-back", "spine", "lumbar", "backache", "back pain"},
    "knee": {"knee", "knees", "my knee", "my knees", "knee pain", "left knee", "right knee"},
    "both": {"both", "both of them", "back and knee", "knee and back", "back and knees", "knees and back", "all"},
}
TIME_OPTIONS = ["Weekday mornings", "Weekday afternoons", "Saturday morning", "Any time"]


class Invalid(ValueError):
    """Input that cannot be accepted; `str(exc)` is what the patient is told."""


class ValidationError(ValueError):
    """Input storage must not keep; `field` names the offending argument.

    Args:
        field: The argument (and usually the form slot) that was wrong.
        message: What was wrong, in words an action can adapt for the patient.
    """

    def __init__(self, field: str, message: str):
        """Keep the field name apart so an action can re-ask for that slot."""
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _clean(text: object, limit: int) -> str:
    if not isinstance(text, str):
        raise Invalid("Sorry, I couldn't read that. Could you type it again?")
    text = unicodedata.normalize("NFC", text).strip()
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise Invalid("That contains characters I can't store. Could you type it again?")
    if len(text) > limit:
        raise Invalid(f"That's a bit long for me: please keep it under {limit} characters.")
    return text


def _has_markup(text: str) -> bool:
    return bool(re.search(r"<[^>]*>|https?://|www\.", text, re.I))


def clean_name(text: object) -> str:
    """A person's name: letters from any script, spaces, hyphens, apostrophes, dots."""
    value = NAME_PREFIX.sub("", _clean(text, MAX_NAME)).strip(" .,!")
    if _has_markup(value) or not value:
        raise Invalid("Please type just your full name, for example: Tan Wei Ming.")
    if not all(c.isalpha() or c in " -'.’" or unicodedata.category(c) == "Mn" for c in value):
        raise Invalid(
            "A name should only have letters, spaces, hyphens or apostrophes. What is your full name?"
        )
    if sum(c.isalpha() for c in value) < 2:
        raise Invalid("That seems too short for a full name. What is your full name?")
    words = re.split(r"[\s.]+", value.lower().replace("’", "'"))
    if any(word in NOT_IN_A_NAME for word in words) or words in (["no"], ["nah"], ["ya"], ["yeah"], ["sure"]):
        raise Invalid(
            "I need your full name here, so the clinic knows who to contact, for example: "
            'Tan Wei Ming. To stop, type "cancel".'
        )
    return re.sub(r"\s+", " ", value)


def clean_phone(text: object, region: str) -> str:
    """A phone number in E.164: local numbers of `region`, or international with +."""
    value = PHONE_PREFIX.sub("", _clean(text, MAX_PHONE_INPUT)).strip()
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise Invalid(
            "That doesn't look like a phone number. "
            "Please type your mobile number, for example 9123 4567 or +65 9123 4567."
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise Invalid(
            "I couldn't recognise that number. Please check it: a local mobile has 8 digits (e.g. 9123 4567); "
            "for another country start with + and the country code."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_phone(e164: str) -> str:
    """E.164 shown the way people read it (+65 9123 4567)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def clean_email(text: object) -> Optional[str]:
    """An email address, or None when the patient skips it."""
    value = _clean(text, MAX_EMAIL)
    lowered = value.lower().strip(" .!")
    if lowered in SKIP_WORDS:
        return None
    value = re.sub(r"^(?:my )?e-?mail(?: address)?(?: is|:)?\s*", "", value, flags=re.I).strip()
    if not EMAIL.match(value):
        raise Invalid("That email address doesn't look right (e.g. name@example.com). Type it again, or tap Skip.")
    return value


def clean_pain_area(text: object) -> str:
    """Where it hurts: "lower back", "knee" or "both"."""
    value = re.sub(r"[^\w\s-]", "", _clean(text, MAX_PAIN_AREA_INPUT).lower()).strip()
    for area, words in BODY_PARTS.items():
        if value in words:
            return area
    mentions_back = bool(re.search(r"\bback\b|spine|lumbar", value))
    mentions_knee = "knee" in value
    if mentions_back and mentions_knee:
        return "both"
    if mentions_back:
        return "lower back"
    if mentions_knee:
        return "knee"
    raise Invalid("I can book for lower back pain, knee pain or both. Which is it?")


@dataclass(frozen=True)
class PreferredTimes:
    """What the patient asked for, and what we understood of it (echoed back)."""

    text: str
    understood: Optional[str] = None
    iso: Optional[str] = None


def parse_preferred_times(text: object, now: datetime, timezone: str) -> PreferredTimes:
    """Keep the patient's words; read a concrete day/time out of them when there is one."""
    value = _clean(text, MAX_TIMES)
    if len(value) < 2 or _has_markup(value):
        raise Invalid("When would suit you? For example: weekday mornings, or next Tuesday after 5pm.")
    if value.lower() in {o.lower() for o in TIME_OPTIONS}:
        return PreferredTimes(text=value)
    from dateparser.search import search_dates

    qualifier = re.search(r"\b(after|before|around|from|by)\b", value, re.I)
    # "10am" confuses dateparser's search (it reads a year); "10:00 am" does not
    normalised = re.sub(r"\b(\d{1,2})\s*(am|pm)\b", r"\1:00 \2", value, flags=re.I)
    found = search_dates(
        normalised,
        languages=["en"],
        settings={
            "PREFER_DATES_FROM": "future",
            "RELATIVE_BASE": now.astimezone(ZoneInfo(timezone)).replace(tzinfo=None),
            "RETURN_AS_TIMEZONE_AWARE": False,
        },
    )
    found = [(said, when) for said, when in found or [] if "week" not in said.lower()]
    if not found:
        return PreferredTimes(text=value)
    _, when = found[0]
    understood = f"{when:%A %-d %B}"
    part_of_day = re.search(r"\b(morning|afternoon|evening|noon)\b", value, re.I)
    if re.search(r"\d\s*(am|pm)|\d:\d\d", value, re.I):
        prefix = f"{qualifier.group(1).lower()} " if qualifier else "at "
        understood += f", {prefix}{when:%H:%M}"
    elif part_of_day:
        understood += f", {part_of_day.group(1).lower()}"
    return PreferredTimes(text=value, understood=understood, iso=when.isoformat())


def clean_description(text: object) -> str:
    """The patient's own short description of the problem."""
    value = _clean(text, MAX_DESCRIPTION)
    if len(value) < MIN_DESCRIPTION:
        raise Invalid("Could you tell me a little more, in a sentence or two?")
    return value


def clean_comment(text: str, limit: int = MAX_FEEDBACK_COMMENT) -> str:
    """An optional free-text comment: control characters dropped, cut to `limit`."""
    kept = "".join(c for c in unicodedata.normalize("NFC", text) if unicodedata.category(c) != "Cc" or c == "\n")
    return kept.strip()[:limit]


# --- storage-side checks (raise ValidationError naming the field) ---------------------


def _control_chars(value: str, allow: frozenset[str]) -> bool:
    return any(unicodedata.category(ch) == "Cc" and ch not in allow for ch in value)


def check_text(
    field: str,
    value: object,
    max_len: int,
    *,
    multiline: bool = False,
    required: bool = True,
) -> Optional[str]:
    """Return `value` stripped, or None when optional and empty.

    Raises:
        ValidationError: Missing when required, not text, longer than `max_len`,
            control characters (newlines and tabs only when `multiline`), or
            characters that are not valid UTF-8 (unpaired surrogates).
    """
    if value is None:
        if required:
            raise ValidationError(field, "is required")
        return None
    if not isinstance(value, str):
        raise ValidationError(field, f"must be text, not {type(value).__name__}")
    text: str = value.strip()
    if not text:
        if required:
            raise ValidationError(field, "is required")
        return None
    if len(text) > max_len:
        raise ValidationError(field, f"is too long ({len(text)} characters, at most {max_len})")
    if _control_chars(text, ALLOWED_CONTROL if multiline else frozenset()):
        raise ValidationError(field, "contains control characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(field, "contains characters that are not valid text") from exc
    return text


def check_required(field: str, value: object, max_len: int, *, multiline: bool = False) -> str:
    """Like `check_text`, for a field that must be given."""
    result = check_text(field, value, max_len, multiline=multiline, required=True)
    assert result is not None
    return result


def check_phone(field: str, value: object, *, required: bool = True) -> Optional[str]:
    """Return an E.164 phone number (what `clean_phone` produces), or None if optional."""
    text = check_text(field, value, MAX_PHONE_E164, required=required)
    if text is not None and not PHONE_E164.match(text):
        raise ValidationError(field, "must be in international format, e.g. +441632960123")
    return text


def check_email(field: str, value: object) -> Optional[str]:
    """Return an email address by the forms' rule (`EMAIL`), or None when not given."""
    text = check_text(field, value, MAX_EMAIL, required=False)
    if text is not None and not EMAIL.match(text):
        raise ValidationError(field, "is not an email address")
    return text


def check_aware(field: str, value: object) -> datetime:
    """Return `value` if it is a timezone-aware datetime."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(field, "must be a timezone-aware datetime")
    return value


def check_keys(field: str, values: object, example: str) -> list[str]:
    """Return one or more distinct lower-case keys (flags, categories), order kept."""
    keys = [] if isinstance(values, str) or values is None else list(dict.fromkeys(values))  # type: ignore[call-overload]
    if not keys or any(not KEY.match(str(key)) for key in keys):
        raise ValidationError(field, f"must be one or more keys like {example!r}")
    return [str(key) for key in keys]


def clean_excerpt(value: Optional[str], max_len: int) -> str:
    """Make context text safe to store: no control characters, at most `max_len` long.

    Newlines and tabs survive; NUL and other control characters and unpaired
    surrogates are dropped; text over the limit ends in an ellipsis.

    Args:
        value: Text as typed by the patient (or produced by the bot).
        max_len: Maximum length of the result, ellipsis included.

    Returns:
        The cleaned, stripped, possibly truncated text ('' for None).
    """
    if not value:
        return ""
    cleaned = str(value).encode("utf-8", "ignore").decode("utf-8")
    cleaned = "".join(
        ch for ch in cleaned if unicodedata.category(ch) != "Cc" or ch in ALLOWED_CONTROL
    ).strip()
    if len(cleaned) > max_len:
        cleaned = cleaned[: max_len - 1].rstrip() + "…"
    return cleaned
