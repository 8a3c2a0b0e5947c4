"""The practice profile: validated at start, placeholders honest, opening hours right."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.profile import PROFILE_PATH, ProfileError, load_profile, parse_profile

SGT = ZoneInfo("Asia/Singapore")


def data() -> dict:  # type: ignore[type-arg]
    return dict(yaml.safe_load(PROFILE_PATH.read_text(encoding="utf-8")))


def test_the_shipped_profile_loads_in_development() -> None:
    profile = load_profile(production=False)
    assert profile.practice_name == "The Orthopaedic and Pain Practice"
    assert profile.doctor == "Dr Yong Ren"


def test_production_refuses_placeholders() -> None:
    with pytest.raises(ProfileError, match="placeholders"):
        load_profile(production=True)


def test_a_filled_in_profile_is_accepted_in_production() -> None:
    filled = data()
    for key in ("phone", "whatsapp", "email", "address", "booking_url", "emergency_number", "crisis_line"):
        filled[key] = {"booking_url": "https://example.org/book", "emergency_number": "995"}.get(key, "+65 6000 0000")
    filled["opening_hours"]["status"] = "confirmed"
    profile = parse_profile(filled, production=True)
    assert profile.emergency_text() == "call 995"
    assert "Phone: +65 6000 0000" in profile.contact_lines()


def test_placeholders_are_never_shown_as_facts() -> None:
    profile = load_profile(production=False)
    assert profile.contact("phone") is None
    assert "FILL_IN" not in " ".join(profile.contact_lines())
    assert profile.emergency_text() == "call your local emergency number"
    assert "not configured" in profile.phone_text()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"doctor": ""}, "missing: doctor"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"country": "Singapore"}, "two-letter"),
        ({"booking_url": "http://insecure.example"}, "https://"),
    ],
)
def test_malformed_profiles_are_refused(change: dict, message: str) -> None:  # type: ignore[type-arg]
    broken = data() | change
    with pytest.raises(ProfileError, match=message):
        parse_profile(broken)


def test_bad_opening_hours_are_refused() -> None:
    broken = data()
    broken["opening_hours"] = dict(broken["opening_hours"], mon="9am till late")
    with pytest.raises(ProfileError, match="opening_hours.mon"):
        parse_profile(broken)


def test_opening_hours_in_the_practice_timezone() -> None:
    profile = load_profile(production=False)
    assert profile.is_open(datetime(2026, 11, 30, 10, 0, tzinfo=SGT))  # Monday 10:00
    assert not profile.is_open(datetime(2026, 11, 30, 17, 0, tzinfo=SGT))  # closes at 17:00
    assert not profile.is_open(datetime(2026, 11, 29, 10, 0, tzinfo=SGT))  # Sunday
    # 02:00 UTC is 10:00 in Singapore
    assert profile.is_open(datetime(2026, 11, 30, 2, 0, tzinfo=ZoneInfo("UTC")))
    opening = profile.next_opening(datetime(2026, 11, 28, 13, 0, tzinfo=SGT))  # Saturday after 12
    assert opening == datetime(2026, 11, 30, 9, 0, tzinfo=SGT)


def test_profile_file_is_the_only_place_with_the_practice_name() -> None:
    root = PROFILE_PATH.parent.parent
    hits = [
        p for p in list(root.glob("*.yml")) + list(root.glob("actions/*.py")) + list(root.glob("bot/*.py"))
        if "Orthopaedic and Pain Practice" in p.read_text(encoding="utf-8")
    ]
    assert hits == [], hits
    assert Path(PROFILE_PATH).exists()
