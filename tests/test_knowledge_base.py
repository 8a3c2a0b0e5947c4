"""The knowledge base: every topic answerable, every button leads somewhere, content traceable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.knowledge_base import KB_PATH, KnowledgeBaseError, load_knowledge_base
from bot.profile import load_profile

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
INTENTS = {i if isinstance(i, str) else next(iter(i)) for i in DOMAIN["intents"]}
ARTICLE = ROOT / "data" / "source" / "lower-back-and-knee-pain-treatment.txt"


@pytest.fixture(scope="module")
def kb():  # type: ignore[no-untyped-def]
    return load_knowledge_base(profile=load_profile(production=False))


def payload_intent(payload: str) -> str | None:
    match = re.match(r"^/(\w+)", payload)
    return match.group(1) if match else None


def test_every_topic_intent_has_an_answer_and_every_answer_an_intent(kb) -> None:  # type: ignore[no-untyped-def]
    from bot.practical import ANSWERS  # practical questions are answered from the profile

    not_topics = {"ask_capabilities", "ask_side_effects", "ask_warning_signs", *ANSWERS}
    topic_intents = {i for i in INTENTS if i.startswith("ask_") and i not in not_topics}
    assert {f"ask_{key}" for key in kb.topics} == topic_intents


def test_every_answer_is_chat_sized_and_traceable(kb) -> None:  # type: ignore[no-untyped-def]
    assert kb.version and kb.reviewed
    for key, topic in kb.topics.items():
        assert topic.section, key
        answer = kb.answer(key)
        assert 1 <= len(answer.bubbles) <= 3, key
        assert all(0 < len(bubble) <= 420 for bubble in answer.bubbles), key
        assert "{" not in " ".join(answer.bubbles), f"unfilled placeholder in {key}"


def test_every_button_points_to_a_known_intent(kb) -> None:  # type: ignore[no-untyped-def]
    payloads = [b["payload"] for key in kb.topics for b in kb.answer(key).buttons]
    for response in DOMAIN["responses"].values():
        for variant in response:
            payloads += [b["payload"] for b in variant.get("buttons", []) if b["payload"].startswith("/")]
    for payload in payloads:
        assert payload_intent(payload) in INTENTS, payload


def test_every_answer_offers_booking(kb) -> None:  # type: ignore[no-untyped-def]
    for key in kb.topics:
        assert {"title": "Book a consultation", "payload": "/book_appointment"} in kb.answer(key).buttons


def test_body_part_the_patient_named_is_respected(kb) -> None:  # type: ignore[no-untyped-def]
    back_ha = " ".join(kb.answer("hyaluronic_acid", "lower back").bubbles)
    assert "knee joint only" in back_ha and "not describe them for the back" in back_ha
    knee_fusion = " ".join(kb.answer("spinal_fusion", "knee").bubbles)
    assert "spine, not the knee" in knee_fusion and "knee replacement" in knee_fusion
    back_replacement = " ".join(kb.answer("knee_replacement", "back").bubbles)
    assert "not the back" in back_replacement and "spinal fusion" in back_replacement
    assert "knee" in " ".join(kb.answer("exercise", "knees").bubbles).lower()
    assert kb.answer("surgery", "knee").variant == "knee"
    assert kb.answer("surgery").variant is None


def test_no_doses_or_diagnoses_in_the_content() -> None:
    text = KB_PATH.read_text(encoding="utf-8").lower()
    assert not re.search(r"\d+\s*(mg|ml|mcg|tablets?|times a day)", text)
    diagnosis = r"you (have|probably have|may have|might have) (sciatica|arthritis|a slipped disc|stenosis)"
    assert not re.search(diagnosis, text)


def test_medical_terms_come_from_the_article(kb) -> None:  # type: ignore[no-untyped-def]
    article = ARTICLE.read_text(encoding="utf-8").lower()
    terms = ["nsaids", "acetaminophen", "opioids", "corticosteroid", "hyaluronic acid", "platelet",
             "spinal stenosis", "degenerative disc disease", "hamstrings", "swimming", "cycling"]
    content = KB_PATH.read_text(encoding="utf-8").lower()
    for term in terms:
        assert term in article and term in content, term
    for drug in ["ibuprofen", "tramadol", "gabapentin", "naproxen", "celecoxib"]:
        assert drug not in content, f"{drug} is not in the article"


def test_side_effects_are_only_what_the_article_says(kb) -> None:  # type: ignore[no-untyped-def]
    assert "dependence" in " ".join(kb.side_effects("medication"))
    assert "does not describe" in " ".join(kb.side_effects("exercise"))


def test_symptom_words_point_to_related_topics(kb) -> None:  # type: ignore[no-untyped-def]
    assert kb.topics_for_symptoms("pain shooting down my leg from my buttock")[0] == "sciatica"
    assert "posture" in kb.topics_for_symptoms("my back aches after sitting at my desk all day")
    assert "injury" in kb.topics_for_symptoms("I twisted my knee playing football")


def test_wording_changes_need_no_retraining(tmp_path: Path) -> None:
    data = yaml.safe_load(KB_PATH.read_text(encoding="utf-8"))
    data["topics"]["prp"]["answer"] = ["Edited by staff: PRP uses your own platelets."]
    edited = tmp_path / "answers.yml"
    edited.write_text(yaml.safe_dump(data), encoding="utf-8")
    kb = load_knowledge_base(edited, profile=load_profile(production=False))
    assert kb.answer("prp").bubbles == ["Edited by staff: PRP uses your own platelets."]


def test_a_dangling_related_topic_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(KB_PATH.read_text(encoding="utf-8"))
    data["topics"]["prp"]["related"] = ["acupuncture"]
    broken = tmp_path / "answers.yml"
    broken.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="acupuncture"):
        load_knowledge_base(broken, profile=load_profile(production=False))


def test_the_running_bot_picks_up_edited_wording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import bot.knowledge_base as module

    edited = tmp_path / "answers.yml"
    edited.write_text(KB_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(module, "KB_PATH", edited)
    monkeypatch.setattr(module, "_loaded", {})
    assert "emerging treatment" in module.get_knowledge_base().answer("prp").bubbles[0]
    data = yaml.safe_load(edited.read_text(encoding="utf-8"))
    data["topics"]["prp"]["answer"] = ["Reworded by staff."]
    edited.write_text(yaml.safe_dump(data), encoding="utf-8")
    os.utime(edited, ns=(1, 2))  # a different modification time, whatever the clock resolution
    assert module.get_knowledge_base().answer("prp").bubbles == ["Reworded by staff."]


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("any side effects from the steroid injection?", "steroid_injection"),
        ("is a knee replacement operation risky", "knee_replacement"),
        ("complications of spinal fusion surgery", "spinal_fusion"),
        ("is the gel jab safe", "hyaluronic_acid"),
        ("does PRP have side effects", "prp"),
        ("can panadol damage my liver", "medication"),
        ("what are the risks of back surgery", "surgery"),
        ("any side effects?", None),
        ("is it safe for someone with diabetes?", None),
    ],
)
def test_the_treatment_a_question_names_is_found_longest_name_first(kb, text, topic) -> None:  # type: ignore[no-untyped-def]
    assert kb.topic_named_in(text) == topic


def test_every_topic_name_belongs_to_one_topic(kb) -> None:  # type: ignore[no-untyped-def]
    seen: dict = {}  # type: ignore[type-arg]
    for topic in kb.topics.values():
        for name in topic.names:
            assert name.lower() not in seen, f"{name!r} names {seen.get(name.lower())} and {topic.key}"
            seen[name.lower()] = topic.key


@pytest.mark.parametrize(
    "topic, text, asks",
    [
        ("knee_replacement", "What are the risks of knee replacement surgery?", True),
        ("knee_replacement", "my dad is 80 and needs a new knee, is it safe at his age", True),
        ("steroid_injection", "side effects from the cortisone shot?", True),
        ("prp", "is prp safe", True),
        ("medication", "are these pills addictive", True),
        ("spinal_fusion", "what can go wrong with spinal fusion", True),
        ("surgery", "any complications after the op?", True),
        ("knee_replacement", "how long is the recovery after knee replacement?", False),
        ("prp", "what is PRP?", False),
        ("exercise", "which exercises are safe for my knee?", False),  # what to do, not a risk
        ("physiotherapy", "is physio safe with a slipped disc", False),
    ],
)
def test_risk_questions_about_a_medicine_injection_or_operation_are_recognised(  # type: ignore[no-untyped-def]
    kb, topic, text, asks
) -> None:
    assert kb.asks_about_risks_of(topic, text) is asks


@pytest.mark.parametrize(
    "topic, text, says",
    [
        ("physiotherapy", "the physio isn\u2019t helping, what else can i do", True),
        ("prp", "had prp twice and it didnt work", True),
        ("medication", "painkillers don't help anymore", True),
        ("exercise", "i do my exercises every day but there's no improvement", True),
        ("steroid_injection", "the cortisone shot stopped working after a month", True),
        ("physiotherapy", "how does physio help my knee?", False),
        ("exercise", "which exercises work best for bad knees", False),
        ("knee_replacement", "my knee replacement didn't help", False),  # not a treatment one "tries"
    ],
)
def test_a_patient_saying_a_treatment_has_not_helped_is_recognised(  # type: ignore[no-untyped-def]
    kb, topic, text, says
) -> None:
    assert kb.says_did_not_help(topic, text) is says


@pytest.mark.parametrize(
    "topic, text, asks",
    [
        ("knee_replacement", "how long is the recovery after knee replacement?", True),
        ("knee_replacement", "how long is recovery", True),
        ("spinal_fusion", "when can i go back to work after spinal fusion", True),
        ("surgery", "how long will i be in hospital for", True),
        ("prp", "is there any downtime after prp?", True),
        ("knee_replacement", "will i walk again normally", True),
        ("prp", "how long does prp last", False),
        ("knee_replacement", "what is a knee replacement", False),
        ("physiotherapy", "will physio help me recover", False),  # not an operation or injection
        (None, "how long is recovery", False),  # no treatment named or answered before
    ],
)
def test_recovery_questions_about_an_operation_or_injection_are_recognised(  # type: ignore[no-untyped-def]
    kb, topic, text, asks
) -> None:
    assert kb.asks_about_recovery_from(topic, text) is asks


def test_the_recovery_answer_says_the_article_has_none_and_gives_no_figure(kb) -> None:  # type: ignore[no-untyped-def]
    said = kb.recovery("knee_replacement")
    assert said.startswith("The clinic's article doesn't say how long recovery from knee replacement")
    assert not any(ch.isdigit() for ch in said)


def test_a_tried_topic_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(KB_PATH.read_text(encoding="utf-8"))
    data["tried_topics"] = ["physiotherapy", "acupuncture"]
    broken = tmp_path / "answers.yml"
    broken.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="acupuncture"):
        load_knowledge_base(broken, profile=load_profile(production=False))


def test_a_risk_topic_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(KB_PATH.read_text(encoding="utf-8"))
    data["risk_topics"] = ["knee_replacement", "hip_replacement"]
    broken = tmp_path / "answers.yml"
    broken.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="hip_replacement"):
        load_knowledge_base(broken, profile=load_profile(production=False))
