"""Red-flag detector: emergency symptoms found by rules, not by a statistical guess.

A classifier can be talked out of an emergency by an odd phrasing; this detector cannot.
Each red flag is a set of alternatives; an alternative fires when every concept in it is
mentioned (and not negated) somewhere in the message. Concepts are phrase lists matched on
spaCy lemmas, so "legs getting weaker", "leg got weak" and "my legs are weak" all match.
A mention is negated when a negation cue ("no", "not", "don't have", "without") stands
before it in the same clause and is not itself part of a symptom phrase ("can't pee").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, FrozenSet, Iterable, List, Sequence, Set, Tuple

from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

from bot.nlp import get_nlp

RED_FLAG_INTENT = "report_red_flag"
RED_FLAG_ENTITY = "red_flag"

# Concept name -> phrases. "can't" is written once; lemmas make "cannot", "cant",
# "can not" and "couldn't" match it too.
CONCEPTS: Dict[str, Sequence[str]] = {
    "incontinence": [
        "incontinence", "incontinent", "wet myself", "wet my pants", "wet the bed",
        "pee myself", "peed myself", "wee myself", "soil myself", "poo myself",
        "poop myself", "pooped myself", "mess myself", "accident in my pants",
    ],
    "loss_of_control": [
        "lose control", "loss of control", "no control", "can't control", "unable to control",
        "can't hold", "unable to hold", "leak", "leaking", "not able to control",
        "can't stop", "can't feel when",
    ],
    "bladder_bowel": [
        "bladder", "bowel", "bowels", "urine", "pee", "wee", "poo", "poop", "stool",
        "urinate", "toilet", "faeces", "feces", "wee wee",
    ],
    "urine_difficulty": [
        "can't pee", "can't wee", "can't urinate", "unable to urinate", "unable to pee",
        "can't pass urine", "unable to pass urine", "trouble passing urine",
        "difficulty passing urine", "problem passing urine", "trouble pee", "trouble peeing",
        "difficulty peeing", "difficulty urinating", "trouble urinating", "hard to pee",
        "struggle to pee", "urinary retention", "retention of urine", "can't go to the toilet",
        "nothing comes out when i pee", "can't empty my bladder", "pee won't come out",
        "strain to pee", "strain to wee", "nothing come out", "can't go pee", "no urine",
        "haven't peed", "have not peed", "not peed", "can't piss",
    ],
    "numb": [
        "numb", "numbness", "no feeling", "can't feel", "lose feeling", "loss of feeling",
        "loss of sensation", "lose sensation", "tingling", "pins and needles", "dead feeling",
        "feel dead",
    ],
    "saddle_area": [
        "groin", "saddle", "between my legs", "between the legs", "between legs",
        "genital", "genitals", "private part", "private parts", "privates", "crotch",
        "perineum", "inner thigh", "inner thighs", "back passage", "anus", "vagina", "penis",
        "scrotum", "down there", "bum", "butt", "toilet paper", "wipe",
        "sit bone", "sitting area",
    ],
    "saddle_numbness": ["saddle anaesthesia", "saddle anesthesia", "saddle numbness"],
    "weak": [
        "weak", "weakness", "give way", "give out", "buckle", "collapse", "no strength",
        "lose strength", "lose power", "can't move", "can't lift", "paralyse", "paralysed",
        "paralyzed", "paralysis", "can't feel",
    ],
    "leg": ["leg", "legs", "foot", "feet", "thigh", "ankle", "toe", "toes"],
    "getting_worse": [
        "get weak", "get bad", "get worse", "worse", "worsen", "worsening", "sudden",
        "suddenly", "all of a sudden", "progressive", "progressively", "more and more",
        "overnight", "keep fall", "weak and weak", "can't walk", "since this morning",
        "out of nowhere", "rapidly", "quickly", "completely", "totally", "went numb",
        "go numb", "anymore", "any more",
    ],
    "foot_drop": [
        "foot drop", "drop foot", "dropped foot", "drag my foot", "drag my leg",
        "foot drag", "foot is dragging", "foot slap", "foot slapping", "can't lift my foot",
        "can't lift my toes", "can't walk on my heels", "can't walk on my toes",
        "trip over my foot", "catch my toe", "slap the floor", "slap on the floor",
        "foot flop", "foot is floppy", "floppy foot", "foot keep drop",
    ],
    "fever": [
        "fever", "feverish", "temperature", "chills", "chill", "shiver", "shivering",
        "rigor", "rigors", "hot and cold", "night sweat", "night sweats", "febrile",
    ],
    "pain_or_joint": [
        "pain", "ache", "aching", "hurt", "sore", "back", "spine", "knee", "joint", "agony",
    ],
    "fall_or_injury": [
        "fall", "fell", "fallen", "slip", "trip", "accident", "injury", "injure", "crash",
        "knock", "twist", "land on", "hit by", "tackle", "sports injury",
    ],
    "cannot_stand": [
        "can't stand", "can't stand up", "can't walk", "unable to walk", "unable to stand",
        "can't get up", "can't step on", "can't move my leg",
    ],
    "cannot_bear_weight": [
        "can't bear weight", "unable to bear weight", "can't put weight", "can't put any weight",
        "can't take weight", "can't weight bear", "non weight bearing", "can't put my foot down",
        "can't bear any weight", "no weight on",
    ],
    "hot": ["hot", "warm", "burning hot", "heat"],
    "red": ["red", "redness", "reddish", "inflamed"],
    "swollen": ["swollen", "swelling", "swell", "puffy", "balloon", "big and puffy"],
    "cancer": [
        "cancer", "tumour", "tumor", "malignancy", "malignant", "chemo", "chemotherapy",
        "radiotherapy", "metastasis", "metastases", "leukaemia", "leukemia", "lymphoma",
        "myeloma", "oncologist",
    ],
    "weight_loss": [
        "lose weight", "weight loss", "lose a lot of weight", "drop weight", "weight drop",
        "lose kg", "lose kilo", "lose kilos", "lose pound", "lose pounds", "getting thin",
        "get thin", "weight keep drop", "lose kg without", "drop kg",
    ],
    "unexplained": [
        "without try", "without trying", "no reason", "not try", "not trying", "not diet",
        "not dieting", "without diet", "unexplained", "unintentional", "unintentionally",
        "don't know why", "no idea why", "for nothing", "mysteriously", "by itself",
    ],
    "unexplained_weight_loss": ["unexplained weight loss", "unintentional weight loss"],
    "night": [
        "night", "nighttime", "at night", "in bed", "lie down", "lying down", "sleep",
        "asleep", "wake me", "wake up", "midnight",
    ],
    "severe_constant": [
        "severe", "constant", "constantly", "unbearable", "excruciating", "non stop",
        "nonstop", "non-stop", "all the time", "all night", "every night", "never go away",
        "not go away", "worst", "agony", "24/7", "wake me", "wake me up", "keep me awake",
        "can't sleep", "unable to sleep", "never stop",
    ],
    "pain": ["pain", "ache", "hurt", "sore", "agony", "throb", "painful"],
}

# Concepts that need token patterns (numbers, units) rather than fixed phrases.
TOKEN_PATTERNS: Dict[str, List[List[Dict[str, object]]]] = {
    "weight_loss": [
        [
            {"LEMMA": {"IN": ["lose", "drop", "shed"]}},
            {"LIKE_NUM": True, "OP": "?"},
            {"LOWER": {"REGEX": r"^\d*(kg|kgs|kilo|kilos|kilograms?|lbs?|pounds?|stone)$"}},
        ]
    ],
}

# Red flag -> alternatives; each alternative is a set of concepts that must all appear.
RED_FLAGS: Dict[str, Sequence[FrozenSet[str]]] = {
    "bladder_bowel": [
        frozenset({"incontinence"}),
        frozenset({"loss_of_control", "bladder_bowel"}),
        frozenset({"urine_difficulty"}),
    ],
    "saddle_numbness": [frozenset({"numb", "saddle_area"}), frozenset({"saddle_numbness"})],
    "leg_weakness": [frozenset({"weak", "leg", "getting_worse"}), frozenset({"foot_drop"})],
    "fever_with_back_pain": [frozenset({"fever", "pain_or_joint"})],
    "cannot_bear_weight": [
        frozenset({"cannot_bear_weight"}),
        frozenset({"fall_or_injury", "cannot_stand"}),
    ],
    "hot_swollen_joint": [
        frozenset({"hot", "swollen", "fever"}),
        frozenset({"red", "swollen", "fever"}),
        frozenset({"hot", "red", "swollen"}),
    ],
    "cancer_or_weight_loss": [
        frozenset({"cancer", "pain_or_joint"}),
        frozenset({"weight_loss", "unexplained"}),
        frozenset({"unexplained_weight_loss"}),
    ],
    "severe_night_pain": [frozenset({"night", "severe_constant", "pain"})],
}

# What the patient is told they described, per flag (plain words, no diagnosis).
DESCRIPTIONS: Dict[str, str] = {
    "bladder_bowel": "changes in bladder or bowel control, or trouble passing urine",
    "saddle_numbness": "numbness in the groin or between the legs",
    "leg_weakness": "leg weakness that is getting worse or came on suddenly",
    "fever_with_back_pain": "fever or chills together with pain",
    "cannot_bear_weight": "not being able to bear weight after a fall or injury",
    "hot_swollen_joint": "a hot, red or swollen joint with fever",
    "cancer_or_weight_loss": "a history of cancer or unexplained weight loss with new pain",
    "severe_night_pain": "severe pain that is constant, including at night",
}

NEGATION_CUES = {
    "no", "not", "n't", "never", "without", "deny", "nor", "neither", "none", "free",
    "negative", "nothing",
}
CLAUSE_BREAKS = {".", ";", "!", "?", "but", "however", "though", "although", "except", "yet"}
NEGATION_WINDOW = 6
MAX_CHARS = 20000  # a whole long message is read: a red flag at the end still counts


@dataclass(frozen=True)
class RedFlagResult:
    """The red flags found in one message, with the character span of the first cue."""

    flags: Tuple[str, ...]
    start: int = 0
    end: int = 0

    def __bool__(self) -> bool:
        """True when any red flag was found."""
        return bool(self.flags)


class RedFlagDetector:
    """Finds red-flag symptoms in free text (see module docstring)."""

    def __init__(self) -> None:
        """Compile the concept phrase lists into one lemma matcher."""
        self.nlp = get_nlp()
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="LEMMA")
        for concept, phrases in CONCEPTS.items():
            self.matcher.add(concept, list(self.nlp.pipe(_variants(phrases))))
        self.token_matcher = Matcher(self.nlp.vocab)
        for concept, patterns in TOKEN_PATTERNS.items():
            self.token_matcher.add(concept, patterns)

    def _negated(self, doc: Doc, start: int, matched: Set[int]) -> bool:
        for i in range(start - 1, max(-1, start - 1 - NEGATION_WINDOW), -1):
            token = doc[i]
            if token.lower_ in CLAUSE_BREAKS:
                return False
            if i in matched:
                continue  # a cue inside another symptom phrase ("can't pee") negates nothing
            if token.lemma_.lower() in NEGATION_CUES or token.lower_ in NEGATION_CUES:
                return True
        return False

    def detect(self, text: str) -> RedFlagResult:
        """Red flags in `text`, empty when there are none (or all are negated)."""
        if not text or not text.strip():
            return RedFlagResult(flags=())
        doc = self.nlp(text[:MAX_CHARS])
        matches = list(self.matcher(doc)) + list(self.token_matcher(doc))
        matched_tokens: Set[int] = {i for _, s, e in matches for i in range(s, e)}
        present: Dict[str, Tuple[int, int]] = {}
        for match_id, start, end in sorted(matches, key=lambda m: m[1]):
            concept = self.nlp.vocab.strings[match_id]
            if concept in present or self._negated(doc, start, matched_tokens):
                continue
            span = doc[start:end]
            present[concept] = (span.start_char, span.end_char)
        flags: List[str] = []
        spans: List[Tuple[int, int]] = []
        for flag, alternatives in RED_FLAGS.items():
            for concepts in alternatives:
                if concepts <= present.keys():
                    flags.append(flag)
                    spans.extend(present[c] for c in concepts)
                    break
        if not flags:
            return RedFlagResult(flags=())
        start = min(s for s, _ in spans)
        end = max(e for _, e in spans)
        return RedFlagResult(flags=tuple(flags), start=start, end=end)


def _variants(phrases: Iterable[str]) -> List[str]:
    """Add "unable to" forms for "can't" phrases; lemmas cover the other spellings."""
    out: List[str] = []
    for phrase in phrases:
        out.append(phrase)
        if "can't " in phrase:
            out.append(phrase.replace("can't ", "unable to "))
            out.append(phrase.replace("can't ", "not able to "))
    return out


@lru_cache(maxsize=1)
def get_detector() -> RedFlagDetector:
    """The process-wide detector (building the matcher takes a fraction of a second)."""
    return RedFlagDetector()


def describe(flags: Sequence[str]) -> str:
    """Plain-words summary of detected flags, for the patient and staff."""
    return "; ".join(DESCRIPTIONS[f] for f in flags if f in DESCRIPTIONS)
