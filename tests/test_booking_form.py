"""Booking form actions: re-asks, corrections, consent, summary, idempotent submission."""

from __future__ import annotations

from typing import Any, Dict, Iterator

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.booking import (
    ActionAskBookingConfirmed,
    ActionCancelForm,
    ActionSubmitBooking,
    ValidateBookingForm,
)
from bot.storage.migrate import upgrade
from bot.storage.repository import Repository
from tests.actions_helpers import DOMAIN, has_event, run, slot_events, texts, tracker

FILLED: Dict[str, Any] = {
    "contact_consent": True,
    "consent_at": "2026-11-25T10:00:00+08:00",
    "full_name": "Tan Wei Ming",
    "phone": "+6591234567",
    "email": "none",
    "pain_area": "knee",
    "preferred_times": "next tuesday after 5pm",
    "preferred_times_parsed": "Tuesday 1 December, after 17:00",
    "symptom_description": "knee hurts on stairs since March",
    "booking_confirmed": True,
    "booking_key": "web:patient-1:abc",
}


@pytest.fixture()
def repo() -> Iterator[Repository]:
    upgrade()
    yield Repository()


def validate(
    slot: str, value: Any, text: str = "", intent: str = "inform", asked: str = "", **slots: Any
) -> tuple[Dict[str, Any], str]:
    form = ValidateBookingForm()
    dispatcher = CollectingDispatcher()
    slots = {"requested_slot": asked or slot, **slots}
    state = tracker(text or str(value), intent, slots=slots, active_loop="booking_form")
    result = getattr(form, f"validate_{slot}")(value, dispatcher, state, DOMAIN)
    return result, texts(dispatcher.messages)


def test_no_consent_means_nothing_is_asked_or_stored_and_the_phone_is_given() -> None:
    result, said = validate("contact_consent", False, "no", "deny")
    assert result == {"contact_consent": False, "phone": None, "email": None}
    assert "won't store" in said and "phoning" in said
    import asyncio

    required = asyncio.run(
        ValidateBookingForm().required_slots(
            ["contact_consent", "full_name"], CollectingDispatcher(),
            tracker("no", "deny", slots={"contact_consent": False}), DOMAIN,
        )
    )
    assert required == []


def test_bad_phone_gets_a_specific_re_ask() -> None:
    result, said = validate("phone", "12345")
    assert result == {"phone": None}
    assert "9123 4567" in said


def test_local_phone_is_stored_in_e164() -> None:
    result, _ = validate("phone", "9123 4567")
    assert result == {"phone": "+6591234567"}


def earlier(slot: str, value: Any, text: str) -> list[Dict[str, Any]]:
    """Events of a conversation where `slot` was `value` before the message `text`."""
    message = {"text": text, "intent": {"name": "inform", "confidence": 0.9}, "entities": []}
    return [{"event": "slot", "name": slot, "value": value},
            {"event": "user", "text": text, "parse_data": message},
            {"event": "slot", "name": slot, "value": "candidate"}]


def correct(slot: str, value: str, text: str, before: Any) -> tuple[Dict[str, Any], str]:
    """Validate `slot` given as a correction while preferred times are asked."""
    dispatcher = CollectingDispatcher()
    state = tracker(text, "inform", slots={"requested_slot": "preferred_times", slot: value},
                    active_loop="booking_form", events=earlier(slot, before, text))
    result = getattr(ValidateBookingForm(), f"validate_{slot}")(value, dispatcher, state, DOMAIN)
    return result, texts(dispatcher.messages)


def test_a_correction_while_another_field_is_asked_updates_that_field() -> None:
    result, said = correct("phone", "9876 5432", "actually my number is 9876 5432", before="+6591234567")
    assert result["phone"] == "+6598765432"
    assert said == "Thanks, I've updated your number to +65 9876 5432."
    times, said_times = validate(
        "preferred_times", "actually my number is 9876 5432", "actually my number is 9876 5432"
    )
    assert times == {"preferred_times": None} and said_times == ""


def test_preferred_times_are_echoed_back() -> None:
    result, said = validate("preferred_times", "next tuesday after 5pm")
    assert result["preferred_times"] == "next tuesday after 5pm"
    assert said.startswith("Noted: Tuesday")


def test_hostile_description_is_re_asked_not_stored() -> None:
    result, said = validate("symptom_description", "a\x00" * 10)
    assert result == {"symptom_description": None} and said


def test_summary_shows_every_field_with_confirm_change_cancel() -> None:
    messages, _ = run(ActionAskBookingConfirmed(), tracker("", slots=FILLED))
    text = texts(messages)
    for expected in ["Tan Wei Ming", "+65 9123 4567", "knee", "next tuesday after 5pm", "knee hurts on stairs"]:
        assert expected in text
    assert [b["title"] for b in messages[0]["buttons"]] == ["✅ Confirm", "✏️ Change something", "Cancel"]


def test_change_phone_from_the_summary_clears_only_that_field() -> None:
    result, _ = validate("booking_confirmed", "change phone", **FILLED)
    assert result == {"phone": None, "booking_confirmed": None}


def test_confirmed_booking_is_stored_once_with_a_reference(repo: Repository) -> None:
    state = tracker("/affirm", "affirm", slots=FILLED, sender="web:patient-1")
    first, events = run(ActionSubmitBooking(), state)
    reference = slot_events(events)["booking_reference"]
    assert reference.startswith("BK-") and reference in texts(first)
    again, events_again = run(ActionSubmitBooking(), state)
    assert slot_events(events_again)["booking_reference"] == reference
    booking = repo.get_booking(reference)
    assert booking is not None
    assert (booking.full_name, booking.phone_e164, booking.body_part) == ("Tan Wei Ming", "+6591234567", "knee")
    assert booking.email is None
    from sqlalchemy import text as sql

    with repo.database.session_scope() as session:
        assert session.execute(sql("SELECT count(*) FROM booking_requests")).scalar() == 1


def test_cancel_leaves_the_form_and_stores_nothing(repo: Repository) -> None:
    messages, events = run(ActionCancelForm(), tracker("stop", "cancel", slots=FILLED, active_loop="booking_form"))
    assert "cancelled" in texts(messages) and "nothing was sent" in texts(messages)
    assert has_event(events, event="active_loop", name=None)
    assert slot_events(events)["booking_key"] is None
    from sqlalchemy import text as sql

    with repo.database.session_scope() as session:
        assert session.execute(sql("SELECT count(*) FROM booking_requests")).scalar() == 0


def test_database_down_keeps_the_request_and_tells_the_patient(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    from bot.records import flush_spool, spool_path
    from bot.settings import get_settings
    from tests.standins.database_link import DatabaseLink

    link = DatabaseLink()  # the database, reached through a link the test cuts
    link.open()
    url = link.url(postgres_url)
    upgrade(url)
    link.close()
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        messages, events = run(ActionSubmitBooking(), tracker("/affirm", "affirm", slots=FILLED, sender="web:down"))
        assert "technical problem" in texts(messages) and "call" in texts(messages)
        assert "booking_reference" not in slot_events(events)
        assert spool_path().exists()  # kept on disk (private, see tests/storage/test_records_spool.py)
        # the database is back: the kept request is saved once
        link.open()
        assert flush_spool() == 1
        assert not spool_path().exists()
        with Repository().database.session_scope() as session:
            from sqlalchemy import text as sql

            assert session.execute(sql("SELECT full_name FROM booking_requests")).scalar() == "Tan Wei Ming"
    finally:
        link.close()


def test_updated_is_not_said_when_nothing_changed() -> None:
    same, said = correct("phone", "9123 4567", "sorry my number is 9123 4567", before="+6591234567")
    assert same == {"phone": "+6591234567"} and said == ""
    name, said_name = correct("full_name", "Tan Wei Ming", "actually my name is Tan Wei Ming", before="Tan Wei Ming")
    assert name == {"full_name": "Tan Wei Ming"} and said_name == ""
    asked, said_asked = validate("full_name", "Tan Wei Ming")  # the answer to the question asked
    assert asked == {"full_name": "Tan Wei Ming"} and said_asked == ""


def test_a_phone_number_at_the_consent_question_is_kept_and_consent_asked_again() -> None:
    result, said = validate("contact_consent", "9123 4567", "9123 4567", "inform")
    assert result == {"contact_consent": None, "phone": "+6591234567"}
    assert "+65 9123 4567" in said and "yes or no" in said
    assert "Did you mean" not in said


def test_an_email_at_the_consent_question_is_kept_for_the_email_field() -> None:
    result, said = validate("contact_consent", "tan.wm@example.com", "tan.wm@example.com", "inform")
    assert result == {"contact_consent": None, "email": "tan.wm@example.com"}
    assert "yes or no" in said


def test_an_unexpected_answer_at_consent_gets_a_hint_never_a_topic_answer() -> None:
    # NLU read a name as an article topic with confidence: it is not a question, so no answer
    form = ValidateBookingForm()
    dispatcher = CollectingDispatcher()
    state = tracker("Tan Wei Ming", "ask_prevention", slots={"requested_slot": "contact_consent"},
                    active_loop="booking_form")
    result = form.validate_contact_consent("Tan Wei Ming", dispatcher, state, DOMAIN)
    assert result == {"contact_consent": None}
    said = texts(dispatcher.messages)
    assert "yes or no" in said and "Prevention" not in said and "prevent" not in said.lower()


def test_a_real_question_at_a_form_prompt_is_answered_then_the_form_resumes() -> None:
    form = ValidateBookingForm()
    dispatcher = CollectingDispatcher()
    state = tracker("how much is the consultation?", "ask_fees", slots={"requested_slot": "phone"},
                    active_loop="booking_form")
    result = form.validate_phone("how much is the consultation?", dispatcher, state, DOMAIN)
    assert result == {"phone": None}
    said = texts(dispatcher.messages)
    assert "can't answer questions about fees" in said and said.endswith("Now, back to your request:")


def test_a_risk_question_at_a_form_prompt_gets_the_risks_then_the_form_resumes() -> None:
    form = ValidateBookingForm()
    dispatcher = CollectingDispatcher()
    text = "wait, is a knee replacement risky at 80?"
    state = tracker(text, "ask_knee_replacement", slots={"requested_slot": "phone"},
                    active_loop="booking_form")
    result = form.validate_phone(text, dispatcher, state, DOMAIN)
    assert result == {"phone": None}
    said = texts(dispatcher.messages)
    assert "does not describe side effects or risks of knee replacement" in said
    assert said.endswith("Now, back to your request:")


def test_consent_refused_after_a_typed_number_forgets_the_number() -> None:
    result, _ = validate("contact_consent", False, "no", "deny", phone="+6591234567")
    assert result["phone"] is None and result["contact_consent"] is False


def test_a_question_naming_the_knee_at_the_area_prompt_is_answered_not_taken_as_the_area() -> None:
    text = "is a knee replacement risky at 80?"
    result, said = validate("pain_area", text, text, "ask_knee_replacement")
    assert result == {"pain_area": None}
    assert "does not describe side effects or risks of knee replacement" in said
    assert said.endswith("Now, back to your request:")


@pytest.mark.parametrize("answer", ["knee?", "my knee", "lower back please", "both knees and back"])
def test_a_short_answer_at_the_area_prompt_is_the_area_even_when_read_as_a_topic(answer: str) -> None:
    result, said = validate("pain_area", answer, answer, "ask_arthritis")
    assert result["pain_area"] in {"knee", "lower back", "both"}
    assert "back to your request" not in said


def test_saying_a_treatment_has_not_helped_at_a_form_prompt_gets_the_other_options() -> None:
    text = "wait, the physio isn't helping, what else is there?"
    result, said = validate("phone", text, text, "ask_physiotherapy")
    assert result == {"phone": None}
    assert said.startswith("Since you've tried physiotherapy, these are the other options")
    assert said.endswith("Now, back to your request:")


def booking_started_by(text: str, entities: list[Dict[str, Any]], *later: Dict[str, Any]) -> list[Dict[str, Any]]:
    """Events of a booking form started by `text`, then consent given ("yes")."""
    request = {"text": text, "intent": {"name": "book_appointment", "confidence": 0.9}, "entities": entities}
    consent = {"text": "yes", "intent": {"name": "affirm", "confidence": 0.9}, "entities": []}
    return [
        {"event": "user", "text": text, "parse_data": request},
        {"event": "active_loop", "name": "booking_form"},
        {"event": "slot", "name": "requested_slot", "value": "contact_consent"},
        *later,
        {"event": "user", "text": "yes", "parse_data": consent},
        {"event": "slot", "name": "contact_consent", "value": True},
    ]


def body_part(start: int, end: int, value: str = "knee") -> Dict[str, Any]:
    """A body_part entity as the NLU returns it."""
    return {"entity": "body_part", "value": value, "start": start, "end": end}


@pytest.mark.parametrize(
    ("request_text", "entities", "area"),
    [
        ("book me in for my knee please", [body_part(22, 26)], "knee"),
        ("appointment for my back and knee", [body_part(19, 23, "lower back"), body_part(28, 32)], "both"),
        ("i want to book a consultation", [], None),
        ("book me in for my hip", [body_part(18, 21, "hip")], None),
    ],
)
def test_the_area_named_when_asking_to_book_is_not_asked_again(
    request_text: str, entities: list[Dict[str, Any]], area: Any
) -> None:
    events = booking_started_by(request_text, entities)
    state = tracker("yes", "affirm", slots={"requested_slot": "contact_consent", "contact_consent": True},
                    active_loop="booking_form", events=events)
    _, returned = run(ValidateBookingForm(), state)
    assert slot_events(returned).get("pain_area") == area


def test_an_area_changed_from_the_summary_is_asked_again_not_refilled_from_the_request() -> None:
    changed = {"event": "slot", "name": "pain_area", "value": None}
    events = booking_started_by("book me in for my knee please", [body_part(22, 26)], changed)
    state = tracker("yes", "affirm", slots={"requested_slot": "contact_consent", "contact_consent": True},
                    active_loop="booking_form", events=events)
    _, returned = run(ValidateBookingForm(), state)
    assert "pain_area" not in slot_events(returned)


def at_the_phone_prompt(*answers: str) -> list[Dict[str, Any]]:
    """Events of a booking form where the name was given, then `answers` at the phone prompt."""
    def user(text: str) -> Dict[str, Any]:
        return {"event": "user", "text": text,
                "parse_data": {"text": text, "intent": {"name": "inform", "confidence": 0.9}, "entities": []}}
    events = [{"event": "active_loop", "name": "booking_form"},
              {"event": "slot", "name": "requested_slot", "value": "full_name"},
              user("Tan Wei Ming"),
              {"event": "slot", "name": "full_name", "value": "Tan Wei Ming"}]
    for text in answers:
        events += [{"event": "slot", "name": "requested_slot", "value": "phone"}, user(text),
                   {"event": "slot", "name": "phone", "value": None}]
    return events[:-1]


@pytest.mark.parametrize(("answers", "offered"), [(["12345"], False), (["12345", "no idea"], False),
                                                 (["12345", "no idea", "hmm"], True)])
def test_the_third_answer_not_accepted_at_one_prompt_offers_a_person_or_cancel(
    answers: list[str], offered: bool
) -> None:
    dispatcher = CollectingDispatcher()
    state = tracker(answers[-1], "inform", slots={"requested_slot": "phone"}, active_loop="booking_form",
                    events=at_the_phone_prompt(*answers))
    result = ValidateBookingForm().validate_phone(answers[-1], dispatcher, state, DOMAIN)
    said = texts(dispatcher.messages)
    assert result == {"phone": None}
    assert ('type "talk to a person"' in said) is offered


@pytest.mark.parametrize(
    ("slot", "question", "intent"),
    [("contact_consent", "why do you need my details?", "tell_me_more"),
     ("contact_consent", "who will see my phone number", "ask_practice"),
     ("phone", "is my data safe", "ask_side_effects"),
     ("full_name", "what will you do with my name?", "ask_practice")],
)
def test_a_patient_asking_why_their_details_are_needed_is_told_then_asked_again(
    slot: str, question: str, intent: str
) -> None:
    result, said = validate(slot, None if slot == "contact_consent" else question, question, intent)
    assert result == {slot: None}
    assert "only so that our clinic staff can contact you about this request" in said
    assert "Only clinic staff can see them" in said and "just say no" in said
    assert "side effects" not in said.lower() and "yes or no" not in said
    assert said.endswith("Now, back to your request:")


def test_no_thanks_at_the_number_prompt_is_offered_a_way_to_stop_not_told_it_is_a_bad_number() -> None:
    form, dispatcher = ValidateBookingForm(), CollectingDispatcher()
    state = tracker("no thanks", "deny", slots={"requested_slot": "phone"}, active_loop="booking_form")
    result = form.validate_phone("no thanks", dispatcher, state, DOMAIN)
    assert result == {"phone": None}  # asked again, nothing kept
    said = texts(dispatcher.messages)
    assert "Without a mobile number the clinic can't contact you" in said
    assert "doesn't look like a phone number" not in said
    assert dispatcher.messages[-1]["buttons"] == [{"title": "Stop my request", "payload": "/cancel"}]


def test_a_sentence_at_the_name_prompt_is_asked_again_not_kept_as_the_name() -> None:
    result, said = validate("full_name", "what should i do", intent="ask_capabilities")
    assert result == {"full_name": None}
    assert "I need your full name here" in said
