"""Dialogue paths that span NLU and policies, over a real `rasa run` and action server.

What a patient reads: forms that never derail into unrelated topics, "No, thanks" without
"Sorry, I didn't get that", practical questions answered from the profile, nonsense and
questions about the doctor routed where a person would expect.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, List

import pytest

from tests.conftest import RasaStack

NOT_UNDERSTOOD = "Sorry, I didn't get that"


def texts(replies: List[Dict[str, Any]]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def payloads(replies: List[Dict[str, Any]]) -> List[str]:
    return [b["payload"] for r in replies for b in r.get("buttons", [])]


def sender() -> str:
    return f"rest:{uuid.uuid4().hex[:10]}"


def test_a_phone_number_at_the_consent_question_re_asks_consent_and_keeps_the_number(
    rasa_server: RasaStack,
) -> None:
    who = sender()
    assert "Is that OK?" in texts(rasa_server.say(who, "i want to book an appointment"))
    replies = rasa_server.say(who, "9123 4567")
    said = texts(replies)
    assert "Did you mean" not in said and "someone who can help" not in said
    assert "yes or no" in said and "Is that OK?" in said
    assert "/affirm" in payloads(replies) and "/deny" in payloads(replies)
    rasa_server.say(who, "yes")
    after_name = texts(rasa_server.say(who, "Tan Wei Ming"))
    assert "mobile number" not in after_name  # the number typed earlier was kept
    assert "email" in after_name.lower()


def test_no_thanks_to_the_call_back_offer_is_not_followed_by_not_understood(
    rasa_server: RasaStack,
) -> None:
    who = sender()
    offer = rasa_server.say(who, "can i talk to a person please")
    assert "/deny" in payloads(offer)  # hours unconfirmed: a call back is offered first
    replies = rasa_server.say(who, "/deny")
    said = texts(replies)
    assert "left a note for our staff" in said
    assert NOT_UNDERSTOOD not in said


def test_nothing_said_as_updated_when_the_name_is_given_as_asked(rasa_server: RasaStack) -> None:
    who = sender()
    rasa_server.say(who, "book a consultation")
    rasa_server.say(who, "yes")
    replies = texts(rasa_server.say(who, "Tan Wei Ming"))
    replies += texts(rasa_server.say(who, "9123 4567"))
    assert "updated" not in replies


def test_the_cost_of_prp_is_never_a_made_up_price(rasa_server: RasaStack) -> None:
    said = texts(rasa_server.say(sender(), "how much does a prp injection cost?"))
    assert "can't answer questions about fees" in said
    assert "$" not in said and "platelet" not in said.lower()


def test_medisave_and_parking_questions_get_their_own_answers(rasa_server: RasaStack) -> None:
    who = sender()
    assert "insurance, Medisave or payment" in texts(rasa_server.say(who, "can i use medisave?"))
    assert "parking" in texts(rasa_server.say(who, "where can i park my car"))


def test_a_question_about_the_doctor_is_not_a_treatment_answer(rasa_server: RasaStack) -> None:
    said = texts(rasa_server.say(sender(), "is Dr Yong Ren a surgeon?"))
    assert "Dr Yong Ren" in said and "qualifications" in said
    assert "knee replacement" not in said.lower()


@pytest.mark.parametrize("mash", ["blorp zzz", "floob blarp", "grumbo snizzle wug"])
def test_nonsense_gets_the_menu_not_a_topic(rasa_server: RasaStack, mash: str) -> None:
    replies = rasa_server.say(sender(), mash)
    said = texts(replies)
    assert "didn't understand" in said
    assert "platelet" not in said.lower() and "Was this helpful?" not in said


def test_the_area_named_in_the_booking_request_is_not_asked_again(rasa_server: RasaStack) -> None:
    who = sender()
    assert "Is that OK?" in texts(rasa_server.say(who, "can i book an appointment for my knee please"))
    rasa_server.say(who, "yes")
    rasa_server.say(who, "Tan Wei Ming")
    rasa_server.say(who, "9123 4567")
    after_email = texts(rasa_server.say(who, "skip"))
    assert "Which area" not in after_email
    assert "When would suit you?" in after_email
    rasa_server.say(who, "weekday mornings")
    summary = texts(rasa_server.say(who, "my knee hurts on stairs since march"))
    assert "• Area: knee" in summary


def test_a_patient_stuck_at_a_prompt_is_offered_a_way_out_that_works(rasa_server: RasaStack) -> None:
    who = sender()
    rasa_server.say(who, "book a consultation")
    rasa_server.say(who, "yes")
    rasa_server.say(who, "Tan Wei Ming")
    first = texts(rasa_server.say(who, "12345"))
    assert "talk to a person" not in first  # one slip gets the hint alone
    rasa_server.say(who, "i dont know it")
    third = texts(rasa_server.say(who, "hmm"))
    assert 'type "talk to a person"' in third and '"cancel"' in third
    assert "mobile number" in third  # the question is still asked again
    stopped = texts(rasa_server.say(who, "cancel"))
    assert "I've cancelled that and nothing was sent" in stopped
    assert "mobile number" not in stopped


def test_why_do_you_need_my_details_at_the_consent_question_is_answered_then_asked_again(
    rasa_server: RasaStack,
) -> None:
    who = sender()
    rasa_server.say(who, "i'd like to book a consultation")
    replies = rasa_server.say(who, "why do you need my details?")
    said = texts(replies)
    assert "only so that our clinic staff can contact you" in said
    assert "Sorry, I need a yes or no" not in said
    assert "Is that OK?" in said and "/affirm" in payloads(replies)
    assert "What is your full name?" in texts(rasa_server.say(who, "ok yes"))


@pytest.mark.parametrize("complaint", ["my knee really hurts", "i have back pain"])
def test_a_bare_complaint_is_acknowledged_not_answered_with_one_topic(rasa_server: RasaStack, complaint: str) -> None:
    who = sender()
    said = texts(rasa_server.say(who, complaint))
    assert "I'm sorry you're dealing with this" in said
    assert "only a clinician who examines you can diagnose it" in said
    assert "Was this helpful?" not in said  # an acknowledgement, not one article topic


def test_a_privacy_question_outside_a_form_gets_what_is_kept_and_who_sees_it(rasa_server: RasaStack) -> None:
    who = sender()
    rasa_server.say(who, "what is PRP?")
    replies = rasa_server.say(who, "is my data safe with you?")
    said = texts(replies)
    assert "only clinic staff can see it" in said and "delete your conversation" in said
    assert "side effects" not in said.lower() and "/request_human" in payloads(replies)
    chat = texts(rasa_server.say(sender(), "is this chat private?"))
    assert "only clinic staff can see it" in chat


def test_a_privacy_question_inside_the_booking_form_is_answered_then_the_prompt_comes_back(
    rasa_server: RasaStack,
) -> None:
    who = sender()
    rasa_server.say(who, "book me in please")
    rasa_server.say(who, "yes")
    replies = rasa_server.say(who, "is this conversation confidential?")
    said = texts(replies)
    assert "only clinic staff can see it" in said
    assert "What is your full name?" in said


def test_what_can_i_do_about_it_after_a_complaint_gets_the_treatments_for_that_area(rasa_server: RasaStack) -> None:
    who = sender()
    rasa_server.say(who, "my knee really hurts")
    said = texts(rasa_server.say(who, "what can i do about it?"))
    assert "For the knee, the article describes physiotherapy" in said
    assert "I can tell you what our clinic's article says" not in said  # not the menu


def test_any_advice_after_a_complaint_gets_the_treatments_not_did_you_mean(rasa_server: RasaStack) -> None:
    """A bare request for advice names no topic; after a complaint it means "for this"."""
    who = sender()
    rasa_server.say(who, "my back hurts")
    said = texts(rasa_server.say(who, "any advice?"))
    assert "For the lower back, the article describes physiotherapy" in said
    assert "not sure I understood" not in said
    menu = texts(rasa_server.say(sender(), "what should i do?"))  # no complaint before: the menu
    assert "I can tell you what our clinic's article says" in menu
