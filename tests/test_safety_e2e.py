"""Safety end to end over a real `rasa run` and action server: what a patient in trouble reads.

An emergency beats everything (a form prompt, a pending question), a crisis pauses a booking
that can be resumed, a suspected flag gets one screening question whose answer does the right
thing, and with the action server stopped the alert still comes, from the Rasa server, and is
stored.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Dict, List

from tests.conftest import RasaStack
from tests.test_conversation_e2e import count

SUSPECTED = "my bum has felt strange since last night"


def texts(replies: List[Dict[str, Any]]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def payloads(replies: List[Dict[str, Any]]) -> List[str]:
    return [b["payload"] for r in replies for b in r.get("buttons", [])]


def sender() -> str:
    return f"rest:{uuid.uuid4().hex[:10]}"


def at_phone_prompt(stack: RasaStack, who: str) -> None:
    stack.say(who, "I'd like to book an appointment")
    stack.say(who, "/affirm")
    asked = stack.say(who, "Alex Tan")
    assert "mobile number" in texts(asked)


def test_an_emergency_typed_at_the_phone_prompt_gets_the_alert(rasa_server: RasaStack) -> None:
    who = sender()
    at_phone_prompt(rasa_server, who)
    replies = rasa_server.say(
        who, "sorry, since this morning i keep peeing myself without knowing and my back is agony"
    )
    text = texts(replies)
    assert "You mentioned wetting or soiling yourself." in text
    assert "look like a phone number" not in text and "too long" not in text
    assert "/book_appointment" in payloads(replies)  # the booking can be continued
    assert count(rasa_server.database_url, "red_flag_alerts", "WHERE conversation_id = :c", c=who) == 1


def test_a_crisis_mid_booking_gets_the_crisis_response_and_the_booking_resumes(rasa_server: RasaStack) -> None:
    who = sender()
    at_phone_prompt(rasa_server, who)
    replies = rasa_server.say(who, "honestly i don't want to live anymore with this pain")
    text = texts(replies)
    assert "You don't have to face it alone" in text
    assert "nothing is in progress" not in text and "cancelled" not in text
    assert "/request_human" in payloads(replies)
    assert count(rasa_server.database_url, "red_flag_alerts",
                 "WHERE conversation_id = :c AND categories = 'crisis'", c=who) == 1
    resumed = rasa_server.say(who, "/book_appointment")
    assert "mobile number" in texts(resumed)  # the name given before is kept, not asked again
    assert rasa_server.tracker(who)["slots"]["full_name"] == "Alex Tan"


def test_a_general_emergency_gets_emergency_help_first(rasa_server: RasaStack) -> None:
    replies = rasa_server.say(sender(), "my dad is clutching his chest, crushing pain going down his arm")
    text = texts(replies)
    assert text.index("This could be an emergency.") < len(text) // 2
    assert "A&E now" in text
    assert "I can only help with lower back and knee pain" not in text


def test_what_should_i_do_right_after_an_emergency_gets_the_emergency_advice_again(
    rasa_server: RasaStack,
) -> None:
    who = sender()
    rasa_server.say(who, "i have crushing chest pain")
    again = texts(rasa_server.say(who, "what should i do?"))
    assert "This could be an emergency." in again and "A&E now" in again
    assert "I can tell you what our clinic's article says" not in again  # not the menu
    assert count(rasa_server.database_url, "red_flag_alerts", "WHERE conversation_id = :c", c=who) == 1


def test_asking_to_see_a_doctor_right_after_an_emergency_is_told_not_to_wait_then_may_book(
    rasa_server: RasaStack,
) -> None:
    who = sender()
    rasa_server.say(who, "my dad is clutching his chest, crushing pain going down his arm")
    first = texts(rasa_server.say(who, "do i need to see a doctor"))
    assert "Don't wait for an appointment" in first and "Is that OK?" not in first
    second = texts(rasa_server.say(who, "i still want to book an appointment"))
    assert "I'll ask for your name and mobile number" in second  # asked again: the booking starts


def test_an_emergency_asked_with_a_privacy_question_gets_the_emergency_help(rasa_server: RasaStack) -> None:
    text = texts(rasa_server.say(sender(), "is this chat private? i have crushing chest pain going down my arm"))
    assert text.index("This could be an emergency.") < len(text) // 2
    assert "only clinic staff can see it" not in text


def test_a_negated_question_is_answered_not_alarmed(rasa_server: RasaStack) -> None:
    replies = rasa_server.say(sender(), "no numbness or fever, but my knee aches on stairs")
    text = texts(replies)
    assert "This could be an emergency" not in text and "Just to check" not in text
    assert "Get help now" not in text


def test_a_suspected_flag_asks_one_question_and_no_answers_the_original(rasa_server: RasaStack) -> None:
    who = sender()
    asked = rasa_server.say(who, SUSPECTED)
    assert texts(asked).startswith("Just to check:")
    assert payloads(asked) == ["/affirm", "/deny", "Not sure"]
    answered = rasa_server.say(who, "/deny")
    text = texts(answered)
    assert text.startswith("Thank you, that's reassuring.")
    assert len(answered) > 1  # then the original message is answered
    assert "This could be an emergency" not in text and "Just to check" not in text
    assert count(rasa_server.database_url, "red_flag_alerts", "WHERE conversation_id = :c", c=who) == 0


def test_a_suspected_flag_answered_not_sure_gets_the_alert(rasa_server: RasaStack) -> None:
    who = sender()
    assert texts(rasa_server.say(who, SUSPECTED)).startswith("Just to check:")
    replies = rasa_server.say(who, "Not sure")
    assert "This could be an emergency." in texts(replies)
    assert count(rasa_server.database_url, "red_flag_alerts", "WHERE conversation_id = :c", c=who) == 1


def test_with_the_action_server_down_an_emergency_still_gets_the_alert_and_is_stored(
    rasa_stack_factory: Callable[..., RasaStack],
) -> None:
    stack = rasa_stack_factory()
    stack.stop("actions")
    who = sender()
    replies = stack.say(who, "i've lost control of my bladder and my legs are going numb")
    text = texts(replies)
    assert "You mentioned problems controlling your bladder or bowels." in text
    assert "technical problem" not in text
    assert count(stack.database_url, "red_flag_alerts", "WHERE conversation_id = :c", c=who) == 1
    events = stack.tracker(who)["events"]
    last_user = max(i for i, e in enumerate(events) if e.get("event") == "user")
    alert = [e for e in events[last_user:] if e.get("event") == "bot"]
    assert alert and all(e["metadata"]["clinic"]["kind"] == "emergency" for e in alert)  # widget style
    again = texts(stack.say(who, "what should i do"))
    assert "This could be an emergency." in again and "A&E now" in again
    assert "technical problem" not in again
    crisis = stack.say(sender(), "i want to kill myself")
    assert "You don't have to face it alone" in texts(crisis)


def test_with_the_action_server_down_a_form_pauses_instead_of_keeping_unchecked_answers(
    rasa_stack_factory: Callable[..., RasaStack],
) -> None:
    stack = rasa_stack_factory()
    who = sender()
    at_phone_prompt(stack, who)
    stack.stop("actions")
    replies = stack.say(who, "tell me about sciatica")
    assert "paused this form" in texts(replies)
    tracker = stack.tracker(who)
    assert tracker["slots"]["phone"] is None
    assert not (tracker.get("active_loop") or {}).get("name")
