"""Custom actions with real Trackers: answers, follow-ups, symptoms, red flags, clarification."""

from __future__ import annotations

import re
from typing import Iterator

import pytest

from actions.answers import ActionAnswerFollowUp, ActionAnswerTopic
from actions.clarify import ActionClarify
from actions.conversation import ActionHandleYesNo
from actions.session import ActionSessionStart
from actions.symptoms import ActionDescribeSymptoms, ActionSuggestTreatments
from bot.knowledge_base import get_knowledge_base
from bot.storage.migrate import upgrade
from bot.storage.repository import Repository
from tests.actions_helpers import has_event, run, slot_events, texts, tracker

BODY_KNEE = [{"entity": "body_part", "value": "knee"}]
BODY_BACK = [{"entity": "body_part", "value": "lower back"}]


@pytest.fixture()
def repo() -> Iterator[Repository]:
    upgrade()
    yield Repository()


def test_topic_answer_with_related_buttons_booking_and_feedback() -> None:
    messages, events = run(ActionAnswerTopic(), tracker("what is sciatica", "ask_sciatica"))
    assert "sciatic nerve" in texts(messages)
    payloads = [b["payload"] for m in messages for b in m.get("buttons", [])]
    assert "/book_appointment" in payloads and "/ask_physiotherapy" in payloads
    assert messages[-1]["text"] == "Was this helpful?"
    assert messages[-1]["clinic"] == {"kind": "feedback"}  # the widget's thumbs on the answer
    assert [b["payload"] for b in messages[-1]["buttons"]] == ["/affirm", "/deny"]
    assert "clinic" not in messages[0]
    assert slot_events(events)["last_topic"] == "sciatica"


def test_hyaluronic_acid_for_the_back_says_it_is_for_the_knee() -> None:
    messages, _ = run(
        ActionAnswerTopic(),
        tracker("can i get gel injection for my back", "ask_hyaluronic_acid", BODY_BACK),
    )
    assert "knee joint only" in texts(messages)


def test_follow_up_what_about_my_back_answers_the_same_topic_for_the_back() -> None:
    state = tracker("what about my back?", "inform_body_part", BODY_BACK, slots={"last_topic": "exercise"})
    messages, events = run(ActionAnswerFollowUp(), state)
    assert "stabilise the spine" in texts(messages)
    assert "knees" not in texts(messages).split("Was this helpful")[0].lower()
    assert slot_events(events)["last_topic"] == "exercise"


def test_tell_me_more_and_side_effects_use_the_kept_topic() -> None:
    more, _ = run(ActionAnswerFollowUp(), tracker("tell me more", "tell_me_more", slots={"last_topic": "arthritis"}))
    assert "knee replacement" in texts(more)
    risks, _ = run(
        ActionAnswerFollowUp(), tracker("and the side effects?", "ask_side_effects", slots={"last_topic": "medication"})
    )
    assert "dependence" in texts(risks) and "pharmacist" in texts(risks)


def test_side_effects_of_a_named_treatment_answer_that_treatment_even_as_a_first_message() -> None:
    messages, events = run(
        ActionAnswerFollowUp(),
        tracker("What are the risks of knee replacement surgery?", "ask_side_effects"),
    )
    assert "risks of knee replacement" in texts(messages)
    assert "Which topic" not in texts(messages)
    assert slot_events(events)["last_topic"] == "knee_replacement"


def test_side_effects_of_a_named_treatment_win_over_the_kept_topic() -> None:
    state = tracker(
        "is the cortisone shot safe for diabetics?", "ask_side_effects", slots={"last_topic": "medication"}
    )
    messages, events = run(ActionAnswerFollowUp(), state)
    assert "corticosteroid injections" in texts(messages)
    assert "dependence" not in texts(messages)  # the medication topic's risks
    assert slot_events(events)["last_topic"] == "steroid_injection"


@pytest.mark.parametrize(
    "text, intent, tried",
    [
        ("the physio isn\u2019t helping, what else can i do", "ask_physiotherapy", "physiotherapy"),
        ("had PRP twice and it didn't work", "ask_prp", "PRP injections"),
        ("painkillers not working anymore for my knee", "ask_medication", "medication"),
    ],
)
def test_a_treatment_that_has_not_helped_gets_the_other_options_not_its_description(
    text: str, intent: str, tried: str
) -> None:
    messages, events = run(ActionAnswerTopic(), tracker(text, intent))
    said = texts(messages)
    assert said.startswith(f"Since you've tried {tried}, these are the other options")
    assert get_knowledge_base().answer("treatment_options").bubbles[1] in said  # the options
    assert slot_events(events)["last_topic"] == "treatment_options"


def test_how_a_treatment_helps_still_gets_that_treatment() -> None:
    messages, events = run(ActionAnswerTopic(), tracker("how does physio help a bad knee?", "ask_physiotherapy"))
    assert "Since you've tried" not in texts(messages)
    assert slot_events(events)["last_topic"] == "physiotherapy"


@pytest.mark.parametrize(
    "text, intent, topic, says",
    [
        ("What are the risks of knee replacement surgery?", "ask_knee_replacement", "knee_replacement",
         "does not describe side effects or risks of knee replacement"),
        ("side effects from the cortisone shot?", "ask_steroid_injection", "steroid_injection",
         "does not describe their side effects"),
        ("are opioids safe", "ask_medication", "medication", "risk of side effects and dependence"),
    ],
)
def test_risks_of_a_treatment_read_as_the_treatment_get_its_risks_not_its_description(
    text: str, intent: str, topic: str, says: str
) -> None:
    messages, events = run(ActionAnswerTopic(), tracker(text, intent))
    assert says in texts(messages)
    assert "ask your doctor" in texts(messages)
    first = get_knowledge_base().answer(topic).bubbles[0]
    assert first not in texts(messages)  # not the description of the treatment
    payloads = [b["payload"] for m in messages for b in m.get("buttons", [])]
    assert payloads == [f"/ask_{topic}", "/book_appointment"]  # what it is, or a clinician
    assert slot_events(events)["last_topic"] == topic


def test_the_button_to_a_treatment_keeps_its_acronym() -> None:
    messages, _ = run(ActionAnswerTopic(), tracker("is prp safe?", "ask_prp"))
    titles = [b["title"] for m in messages for b in m.get("buttons", [])]
    assert titles == ["About PRP injections", "Book a consultation"]
    messages, _ = run(ActionAnswerTopic(), tracker("is a knee replacement risky?", "ask_knee_replacement"))
    assert [b["title"] for m in messages for b in m.get("buttons", [])][0] == "About knee replacement"


def test_which_exercises_are_safe_gets_the_exercise_answer() -> None:
    messages, _ = run(ActionAnswerTopic(), tracker("which exercises are safe for my knee?", "ask_exercise"))
    assert get_knowledge_base().answer("exercise").bubbles[0] in texts(messages)
    assert "risks" not in texts(messages)


def test_follow_up_without_a_topic_asks_which_one() -> None:
    messages, _ = run(ActionAnswerFollowUp(), tracker("any side effects?", "ask_side_effects"))
    assert "Which topic" in texts(messages)


def test_medication_answer_never_gives_a_dose() -> None:
    messages, _ = run(ActionAnswerTopic(), tracker("how many panadol can i take", "ask_medication"))
    text = texts(messages)
    assert not re.search(r"\d+\s*(mg|g|tablets?|pills?)\b", text)
    assert "doctor or pharmacist" in text


def test_describe_symptoms_never_diagnoses_and_points_to_sciatica() -> None:
    state = tracker("i have pain shooting from my buttock down my leg, what is it?", "describe_symptoms")
    messages, events = run(ActionDescribeSymptoms(), state)
    text = texts(messages)
    assert "only a clinician" in text
    assert "Sciatica" in text
    assert not re.search(r"you (have|probably have) sciatica", text, re.I)
    assert "/book_appointment" in [b["payload"] for m in messages for b in m.get("buttons", [])]
    assert slot_events(events)["offer"] == "booking"


def test_after_a_complaint_a_request_for_advice_gets_the_treatments_but_a_guess_gets_the_menu() -> None:
    asked = tracker("what can i do about it?", "ask_capabilities", slots={"body_part": "knee"})
    asked.latest_message["intent"]["confidence"] = 1.0  # bot.nlu.advice_classifier's reading
    messages, _ = run(ActionSuggestTreatments(), asked)
    assert "For the knee, the article describes physiotherapy" in texts(messages)
    guessed = tracker("how do i get to you", "ask_capabilities", slots={"body_part": "knee"})
    guessed.latest_message["intent"]["confidence"] = 0.53  # the model's guess at "what can you do?"
    messages, _ = run(ActionSuggestTreatments(), guessed)
    assert messages == [dict(messages[0], response="utter_capabilities")]
    assert "physiotherapy" not in texts(messages)


def test_how_long_is_recovery_after_an_operation_is_told_the_article_has_nothing_not_did_you_mean() -> None:
    state = tracker("how long is recovery", "nlu_fallback", slots={"last_topic": "knee_replacement"})
    messages, events = run(ActionClarify(), state)
    text = texts(messages)
    assert "doesn't say how long recovery from knee replacement takes" in text
    assert "Did you mean" not in text
    assert slot_events(events)["clarify_attempts"] == 0.0  # not counted as a miss
    downtime = tracker("is there any downtime", "ask_side_effects", slots={"last_topic": "prp"})
    messages, _ = run(ActionAnswerFollowUp(), downtime)  # read as side effects: still recovery
    assert "doesn't say how long recovery from PRP injections takes" in texts(messages)
    risks = tracker("any risks?", "ask_side_effects", slots={"last_topic": "prp"})
    assert "side effects" in texts(run(ActionAnswerFollowUp(), risks)[0])
    named = tracker("whats the recovery time for a knee replacement", "ask_knee_replacement")
    messages, _ = run(ActionAnswerTopic(), named)
    assert "doesn't say how long recovery from knee replacement takes" in texts(messages)


def test_clarification_offers_the_two_likeliest_topics_then_hands_over(repo: Repository) -> None:
    ranking = [
        {"name": "nlu_fallback", "confidence": 0.4},
        {"name": "ask_prp", "confidence": 0.3},
        {"name": "greet", "confidence": 0.2},
        {"name": "ask_injections", "confidence": 0.1},
    ]
    messages, events = run(ActionClarify(), tracker("blood jab thing?", "nlu_fallback", ranking=ranking))
    titles = [b["title"] for b in messages[0]["buttons"]]
    assert titles == ["PRP injections", "Injections", "Something else"]
    assert slot_events(events)["clarify_attempts"] == 1.0
    again, events = run(
        ActionClarify(), tracker("???", "nlu_fallback", ranking=ranking, slots={"clarify_attempts": 1.0})
    )
    assert "someone who can help" in texts(again)
    # the handoff happens in this action: no follow-up action that no rule expects
    assert not has_event(events, event="followup")
    assert "call you back" in texts(again)  # hours unconfirmed: a call back is offered
    assert slot_events(events)["handoff_reason"] == "the assistant did not understand twice"


def test_feedback_is_stored_with_the_topic(repo: Repository) -> None:
    state = tracker("yes", "affirm", slots={"offer": "feedback", "last_topic": "prp"}, sender="web:fb")
    messages, _ = run(ActionHandleYesNo(), state)
    assert "Thanks" in texts(messages)
    from sqlalchemy import text as sql

    with repo.database.session_scope() as session:
        rows = session.execute(sql("SELECT topic, helpful FROM answer_feedback")).all()
    assert [tuple(r) for r in rows] == [("prp", True)]


def test_yes_to_a_booking_offer_starts_the_booking_form() -> None:
    _, events = run(ActionHandleYesNo(), tracker("yes please", "affirm", slots={"offer": "booking"}))
    assert has_event(events, event="followup", name="booking_form")


def test_session_start_loads_the_profile_into_slots() -> None:
    _, events = run(ActionSessionStart(), tracker())
    slots = slot_events(events)
    assert slots["doctor"] == "Dr Yong Ren"
    assert slots["emergency_text"] == "call your local emergency number"


def test_thumbs_down_asks_what_was_missing_and_stores_the_comment(repo: Repository) -> None:
    from rasa_sdk.executor import CollectingDispatcher

    from actions.feedback import ActionSaveFeedback, ValidateFeedbackForm
    from tests.actions_helpers import DOMAIN

    _, events = run(ActionHandleYesNo(), tracker("no", "deny", slots={"offer": "feedback", "last_topic": "prp"}))
    assert has_event(events, event="followup", name="feedback_form")
    form = ValidateFeedbackForm()
    comment = form.validate_feedback_comment(
        "wanted the cost\x00 of prp", CollectingDispatcher(), tracker("wanted the cost of prp", "inform"), DOMAIN
    )
    assert comment == {"feedback_comment": "wanted the cost of prp"}
    saved, _ = run(ActionSaveFeedback(), tracker("", slots={"last_topic": "prp", **comment}, sender="web:fb2"))
    assert "Thank you" in texts(saved)
    from sqlalchemy import text as sql

    with repo.database.session_scope() as session:
        rows = session.execute(sql("SELECT topic, helpful, comment FROM answer_feedback")).all()
    assert [tuple(r) for r in rows] == [("prp", False, "wanted the cost of prp")]


def test_a_new_question_instead_of_a_comment_is_answered_not_stored_as_comment() -> None:
    from rasa_sdk.executor import CollectingDispatcher

    from actions.feedback import ActionSaveFeedback, ValidateFeedbackForm
    from tests.actions_helpers import DOMAIN

    state = tracker("what is spinal fusion", "ask_spinal_fusion", slots={"last_topic": "prp"})
    form = ValidateFeedbackForm()
    result = form.validate_feedback_comment("what is spinal fusion", CollectingDispatcher(), state, DOMAIN)
    assert result == {"feedback_comment": "-"}
    _, events = run(ActionSaveFeedback(), tracker("what is spinal fusion", "ask_spinal_fusion",
                                                  slots={"last_topic": "prp", **result}))
    assert has_event(events, event="followup", name="action_answer_topic")
