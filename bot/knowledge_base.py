"""The knowledge base: answer content from `data/knowledge_base/answers.yml`.

NLU decides the topic; this module turns a topic (and the body part the patient named)
into chat bubbles and buttons. Content lives in the data file so staff can change a
sentence without retraining, and every answer carries the article section it comes from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from bot.nlp import lemmas
from bot.profile import PracticeProfile, get_profile

KB_PATH = Path(__file__).resolve().parent.parent / "data" / "knowledge_base" / "answers.yml"
BODY_PARTS = ("lower back", "knee")
BOOK_BUTTON = {"title": "Book a consultation", "payload": "/book_appointment"}
TOPIC_INTENT_PREFIX = "ask_"


class KnowledgeBaseError(ValueError):
    """The answers file is malformed (missing answer, dangling related topic...)."""


@dataclass(frozen=True)
class Answer:
    """What the bot says for one topic, ready for the dispatcher."""

    topic: str
    bubbles: List[str]
    buttons: List[Dict[str, str]]
    section: str
    variant: Optional[str] = None


@dataclass(frozen=True)
class Topic:
    """One knowledge-base entry, as written in the data file."""

    key: str
    title: str
    section: str
    answer: List[str]
    body_parts: Dict[str, List[str]] = field(default_factory=dict)
    more: List[str] = field(default_factory=list)
    side_effects: List[str] = field(default_factory=list)
    related: List[str] = field(default_factory=list)
    names: List[str] = field(default_factory=list)


def topic_for_intent(intent: Optional[str]) -> Optional[str]:
    """`ask_sciatica` -> `sciatica`; None for intents that are not article topics."""
    if intent and intent.startswith(TOPIC_INTENT_PREFIX):
        return intent[len(TOPIC_INTENT_PREFIX):]
    return None


def normalise_body_part(value: Optional[str]) -> Optional[str]:
    """Map entity values to the body parts the content distinguishes."""
    if not value:
        return None
    aliases = {"back": "lower back", "lower back": "lower back", "spine": "lower back",
               "lumbar": "lower back", "knee": "knee", "knees": "knee"}
    return aliases.get(value.lower().strip())  # hip, leg, both: the general answer


def _forms(text: str) -> Tuple[str, str]:
    """A phrase as padded lower-case words and as padded lemmas, for whole-word matching."""
    text = text.lower().replace("\u2019", "'")  # phones type "isn’t"
    words = " ".join(re.findall(r"[a-z0-9&'-]+", text))
    return f" {words} ", " " + " ".join(lemmas(text)) + " "


def in_sentence(title: str) -> str:
    """A topic title inside a sentence: "physiotherapy", but "PRP injections"."""
    first = title.split()[0]
    return title if first.isupper() else first.lower() + title[len(first):]


class KnowledgeBase:
    """Validated answer content with rendering helpers."""

    def __init__(self, data: Mapping[str, Any], profile: PracticeProfile) -> None:
        """Parse and validate `data` (the YAML document)."""
        self.version = str(data.get("content_version", ""))
        self.reviewed = str(data.get("reviewed", ""))
        self.profile = profile
        raw_topics = data.get("topics") or {}
        self.topics: Dict[str, Topic] = {
            key: Topic(
                key=key,
                title=str(entry.get("title", "")),
                section=str(entry.get("section", "")),
                answer=list(entry.get("answer") or []),
                body_parts={k: list(v) for k, v in (entry.get("body_parts") or {}).items()},
                more=list(entry.get("more") or []),
                side_effects=list(entry.get("side_effects") or []),
                related=list(entry.get("related") or []),
                names=[str(n) for n in entry.get("names") or []],
            )
            for key, entry in raw_topics.items()
        }
        self.symptom_hints: List[Mapping[str, Any]] = list(data.get("symptom_hints") or [])
        # each phrase as words and as lemmas, once, for topic_named_in and asks_about_risks
        self._names = [
            (*_forms(name), len(name), topic.key)
            for topic in self.topics.values()
            for name in topic.names
        ]
        self.risk_topics: List[str] = [str(key) for key in data.get("risk_topics") or []]
        self._risk_words = [_forms(str(word)) for word in data.get("risk_words") or []]
        self.tried_topics: List[str] = [str(key) for key in data.get("tried_topics") or []]
        self._not_helping = [_forms(str(word)) for word in data.get("not_helping_words") or []]
        self.recovery_topics: List[str] = [str(key) for key in data.get("recovery_topics") or []]
        self._recovery_words = [_forms(str(word)) for word in data.get("recovery_words") or []]
        self._validate()

    def _validate(self) -> None:
        problems: List[str] = []
        if not self.version or not self.reviewed:
            problems.append("content_version and reviewed are required")
        for topic in self.topics.values():
            if not topic.title or not topic.section or not topic.answer:
                problems.append(f"{topic.key}: title, section and answer are required")
            for part in topic.body_parts:
                if part not in BODY_PARTS:
                    problems.append(f"{topic.key}: unknown body part {part!r}")
            for related in topic.related:
                if related not in self.topics:
                    problems.append(f"{topic.key}: related topic {related!r} does not exist")
        for key in self.risk_topics:
            if key not in self.topics:
                problems.append(f"risk topic {key!r} does not exist")
        for key in self.recovery_topics:
            if key not in self.topics:
                problems.append(f"recovery topic {key!r} does not exist")
        for key in self.tried_topics:
            if key not in self.topics:
                problems.append(f"tried topic {key!r} does not exist")
        if self.tried_topics and "treatment_options" not in self.topics:
            problems.append("tried_topics need a treatment_options topic to point to")
        for hint in self.symptom_hints:
            if hint.get("topic") not in self.topics:
                problems.append(f"symptom hint points to unknown topic {hint.get('topic')!r}")
        if problems:
            raise KnowledgeBaseError("; ".join(problems))

    # -- rendering -------------------------------------------------------------------

    def _fill(self, text: str) -> str:
        profile = self.profile
        return text.format(
            doctor=profile.doctor,
            practice_name=profile.practice_name,
            contact="\n".join(profile.contact_lines()[1:]),
            emergency=profile.emergency_text(),
            emergency_advice=profile.emergency_advice,
        )

    def buttons_for(self, topic: Topic) -> List[Dict[str, str]]:
        """Related topics as buttons, then the booking handoff."""
        buttons = [
            {"title": self.topics[key].title, "payload": f"/{TOPIC_INTENT_PREFIX}{key}"}
            for key in topic.related
        ]
        return buttons + [dict(BOOK_BUTTON)]

    def answer(self, key: str, body_part: Optional[str] = None) -> Answer:
        """The answer for `key`, in the variant for the body part the patient named."""
        topic = self.topics[key]
        part = normalise_body_part(body_part)
        variant = part if part in topic.body_parts else None
        bubbles = topic.body_parts[variant] if variant else topic.answer
        return Answer(
            topic=key,
            bubbles=[self._fill(b) for b in bubbles],
            buttons=self.buttons_for(topic),
            section=topic.section,
            variant=variant,
        )

    def more(self, key: str) -> Optional[List[str]]:
        """Extra bubbles for "tell me more", if the article has more to say."""
        topic = self.topics[key]
        return [self._fill(b) for b in topic.more] or None

    def side_effects(self, key: str) -> List[str]:
        """What the article says about risks of this topic, or an honest 'not covered'."""
        topic = self.topics[key]
        if topic.side_effects:
            return [self._fill(b) for b in topic.side_effects]
        return [
            f"The clinic's article does not describe side effects or risks of "
            f"{topic.title.lower()}. Please ask your doctor, who can explain them for "
            f"your situation."
        ]

    def topic_named_in(self, text: str) -> Optional[str]:
        """The topic a message names ("risks of a knee replacement" -> knee_replacement).

        Matched on words or lemmas against each topic's `names`; the longest name wins, so
        "steroid injection" is the steroid topic, not injections in general. None when the
        message names no topic ("any side effects?").
        """
        raw, joined = _forms(text)
        found = [(length, key) for words, lemma_words, length, key in self._names
                 if words in raw or lemma_words in joined]
        return max(found, key=lambda hit: hit[0])[1] if found else None

    def asks_about_risks_of(self, key: str, text: str) -> bool:
        """Whether `text` asks about the risks of topic `key`, a medicine, injection or operation.

        "is PRP safe?" does; "which exercises are safe for my knee?" does not (exercise is
        not one of the `risk_topics`), nor does "what is PRP?".
        """
        if key not in self.risk_topics:
            return False
        raw, joined = _forms(text)
        return any(words in raw or lemma_words in joined for words, lemma_words in self._risk_words)

    def asks_about_recovery_from(self, key: Optional[str], text: str) -> bool:
        """Whether `text` asks about recovering from topic `key`, an operation or injection.

        "how long is recovery?" after the knee replacement answer does; "how long does PRP
        last?" and "will physio help me recover?" (physiotherapy is not a recovery topic) do not.
        """
        if key not in self.recovery_topics:
            return False
        raw, joined = _forms(text)
        return any(words in raw or lemma_words in joined for words, lemma_words in self._recovery_words)

    def recovery(self, key: str) -> str:
        """That the article doesn't say how recovery from `key` goes, and who can."""
        return (
            f"The clinic's article doesn't say how long recovery from {in_sentence(self.topics[key].title)} "
            f"takes or what it involves: that depends on you and on the procedure. {self.profile.doctor} "
            "can tell you what to expect at a consultation."
        )

    def says_did_not_help(self, key: str, text: str) -> bool:
        """Whether `text` says treatment `key` has not helped ("the physio isn't helping").

        Such a patient wants the other options; "how does physio help?" is not one.
        """
        if key not in self.tried_topics:
            return False
        raw, joined = _forms(text)
        return any(words in raw or lemma_words in joined for words, lemma_words in self._not_helping)

    def topics_for_symptoms(self, text: str, limit: int = 3) -> List[str]:
        """Topics whose hint words occur in a patient's description (by lemma)."""
        tokens = lemmas(text)
        joined = " " + " ".join(tokens) + " "
        raw = " " + text.lower() + " "
        scored: List[tuple[int, int, str]] = []
        for order, hint in enumerate(self.symptom_hints):
            hits = 0
            for word in hint["words"]:
                phrase = " " + " ".join(lemmas(str(word))) + " "
                if phrase in joined or f" {str(word).lower()} " in raw:
                    hits += 1
            if hits:
                scored.append((-hits, order, str(hint["topic"])))
        return [topic for _, _, topic in sorted(scored)[:limit]]

    def titles(self, keys: Sequence[str]) -> List[str]:
        """Titles of several topics, for prose."""
        return [self.topics[k].title for k in keys if k in self.topics]


def load_knowledge_base(
    path: Path = KB_PATH, profile: Optional[PracticeProfile] = None
) -> KnowledgeBase:
    """Read and validate the answers file."""
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    return KnowledgeBase(data, profile or get_profile())


_loaded: Dict[str, Any] = {}


def get_knowledge_base() -> KnowledgeBase:
    """The knowledge base, reloaded when the answers file changes (one stat per call).

    Staff edit wording in the data file; the running action server picks it up on the
    next message, with no retraining and no restart.
    """
    stamp = KB_PATH.stat().st_mtime_ns
    if _loaded.get("stamp") != stamp:
        _loaded.update(kb=load_knowledge_base(KB_PATH), stamp=stamp)
    return _loaded["kb"]
