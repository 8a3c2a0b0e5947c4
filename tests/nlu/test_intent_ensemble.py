"""DIET combined with the linear model: the intents patients' own questions get, and safety kept.

Parses with the one trained model through Rasa's own Agent, exactly as `rasa run` does. None
of the messages below is a training or held-out example: they are written the way patients
ask on forums, a story first and the question last.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable, Dict, Iterator

import pytest
from rasa.core.agent import Agent
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.intent_ensemble import DIET_RANKING, IntentEnsembleClassifier
from bot.nlu.safety_classifier import UNSPECIFIED_FLAG, SafetyClassifier
from bot.safety import SUSPECT_ENTITY

Parse = Callable[[str], Dict[str, Any]]


@pytest.fixture(scope="module")
def parse(model_path: Path) -> Iterator[Parse]:
    agent = Agent.load(str(model_path))
    loop = asyncio.new_event_loop()
    yield lambda text: loop.run_until_complete(agent.parse_message(text))
    loop.close()


FORUM_QUESTIONS = [
    ("I'm 61, had knee pain for ages and the x-ray shows narrowing of the joint space. The "
     "doctor called it osteoarthritis. What does that mean for me long term?", "ask_arthritis"),
    ("Been suffering with my lower back since my second pregnancy, about three years now. What "
     "can be done about it apart from taking tablets?", "ask_treatment_options"),
    ("Fell down the last few steps at the MRT station this morning and my knee is swollen and "
     "bruised. Should I get it looked at?", "ask_injury"),
    ("My orthopaedic surgeon says I need my knee replaced next year. What is the recovery like "
     "after the operation?", "ask_knee_replacement"),
    ("I drive a taxi 12 hours a day and my back is always sore by the end of my shift. Could the "
     "way I sit be causing it?", "ask_posture"),
    ("My leg has a burning pain going from my bottom down to the back of my calf for 2 weeks. "
     "Is that sciatica?", "ask_sciatica"),
    ("I've put on a lot of weight this year and my knees are complaining. Would losing some of "
     "it help?", "ask_weight_loss"),
    ("I've been on painkillers for my back for weeks, are they safe to keep taking?",
     "ask_medication"),
    ("my back has been stiff and achy for a week after gardening, it's worse in the mornings",
     "describe_symptoms"),
]

PRACTICAL_AND_OFF_TOPIC = [
    ("Is Dr Yong Ren a surgeon?", "ask_doctor"),
    ("do i need a letter from my GP to see Dr Yong Ren", "ask_referral"),
    ("how much is a consultation with the doctor", "ask_fees"),
    ("I'd like to see the doctor about my knee, how do I book?", "book_appointment"),
    ("could you book me a taxi to the airport", "out_of_scope"),
    ("what's the capital of France", "out_of_scope"),
    ("asdf qwer zxcv", "nonsense"),
]


@pytest.mark.parametrize(("text", "intent"), FORUM_QUESTIONS)
def test_a_story_then_a_question_reaches_the_question_s_topic(
    parse: Parse, text: str, intent: str
) -> None:
    assert parse(text)["intent"]["name"] == intent


@pytest.mark.parametrize(("text", "intent"), PRACTICAL_AND_OFF_TOPIC)
def test_practical_off_topic_and_nonsense_messages_go_where_a_person_would_send_them(
    parse: Parse, text: str, intent: str
) -> None:
    assert parse(text)["intent"]["name"] == intent


def test_the_ranking_is_one_distribution_best_first(parse: Parse) -> None:
    result = parse("are hyaluronic acid injections any good for an old knee")
    ranking = result["intent_ranking"]
    confidences = [r["confidence"] for r in ranking]
    assert result["intent"] == ranking[0]
    assert ranking[0]["name"] == "ask_hyaluronic_acid"
    assert confidences == sorted(confidences, reverse=True)
    assert 2 <= len(ranking) <= 10
    assert sum(confidences) <= 1.0 + 1e-6


def stored(component: Any, model_path: Path, folder: Path) -> Any:
    """A component of the trained model, loaded exactly as the model stores it."""
    storage, metadata = LocalModelStorage.from_model_archive(folder, model_path)
    node = next(n for n in metadata.predict_schema.nodes.values() if n.uses is component)
    return component.load(
        {**component.get_default_config(), **node.config},
        storage,
        node.resource,
        ExecutionContext(metadata.predict_schema, metadata.model_id),
    )


@pytest.fixture(scope="module")
def safety_component(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> SafetyClassifier:
    """The SafetyClassifier exactly as the trained model stores it."""
    return stored(SafetyClassifier, model_path, tmp_path_factory.mktemp("model-storage"))


def test_the_fast_linear_scores_are_the_regression_s_own_probabilities(
    model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    component = stored(IntentEnsembleClassifier, model_path, tmp_path_factory.mktemp("ensemble"))
    # repeated words (sublinear counts), no known n-gram at all, nothing
    texts = [question.lower() for question, _ in FORUM_QUESTIONS] + ["hi", "knee knee knee pain pain", "ɮɮɮ", ""]
    assert component.model is not None
    expected = component.model.predict_proba(texts)
    classes = [str(c) for c in component.model.classes_]
    for row, ranking in zip(expected, component.linear_ranking(texts), strict=True):
        assert list(ranking) == classes
        assert max(abs(ranking[c] - float(p)) for c, p in zip(classes, row, strict=True)) < 1e-9


def test_the_emergency_detector_s_fast_scores_are_its_regression_s_own_probabilities(
    safety_component: SafetyClassifier,
) -> None:
    detector = safety_component.detector
    assert detector.pipeline is not None
    texts = ["i can't feel my groin and i wet myself", "crushing pain in my chest",
             "what is sciatica", "my knee is hot and swollen and i have a fever", "ok",
             "Chest PAIN chest pain CHEST", "ɮɮɮ"]
    for text in texts:
        suspicion = detector.likeliest(text)
        probabilities = detector.pipeline.predict_proba([text])[0]
        classes = [str(c) for c in detector.pipeline.classes_]
        none_probability = float(probabilities[classes.index("none")])
        assert suspicion is not None
        assert abs(suspicion.confidence - round(1.0 - none_probability, 4)) < 1e-9
        best_flag = max((p, c) for c, p in zip(classes, probabilities, strict=True) if c != "none")[1]
        assert suspicion.flag == best_flag


def _screened(component: SafetyClassifier, diet_top: Dict[str, Any] | None) -> list[Any]:
    combined = {"name": "ask_causes", "confidence": 0.55}
    message = Message(data={TEXT: "what causes a knee to ache"})
    message.set(INTENT, combined)
    message.set(INTENT_RANKING_KEY, [combined])
    if diet_top is not None:
        message.set(DIET_RANKING, [diet_top, combined])
    component.process([message])
    return [e["value"] for e in message.get("entities") or [] if e["entity"] == SUSPECT_ENTITY]


def test_diet_alone_sure_of_a_red_flag_still_gets_the_screening_question(
    safety_component: SafetyClassifier,
) -> None:
    """The combination never makes the safety check less ready to ask."""
    assert _screened(safety_component, None) == []
    assert _screened(safety_component, {"name": "ask_prevention", "confidence": 0.9}) == []
    assert _screened(safety_component, {"name": "report_red_flag", "confidence": 0.9}) == [
        UNSPECIFIED_FLAG
    ]

