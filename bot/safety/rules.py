"""Emergency and red-flag rules: precise, explainable, and read from the reviewed data file.

A classifier can be talked out of an emergency by an odd phrasing; these rules cannot, and
each decision can be explained ("fever" + "back pain" in the patient's words). A flag fires
when every concept of one of its alternatives is mentioned and each mention is:
* not negated: a cue ("no", "not", "don't have", "without") before it in the same clause,
  where a comma ends the clause unless a list of symptoms goes on ("no fever, chills or
  sweats" negates all three; "no fever, my knee is hot" negates only the fever);
* not past or resolved: "last month", "years ago", "used to", "gone now", "had ... now
  only" in its clause, unless something says it is still going on ("since", "still", "now");
* not someone else's history for history flags ("my grandfather had bowel cancer"); a
  relative's symptom happening now ("my dad can't pass urine") does fire;
* not in a general question about the condition ("what is the risk of a clot after
  surgery?") unless the patient also says it is happening to them.
Temperatures count as fever from the data file's thresholds ("38.9 temp", "101F").
Concepts are phrase lists matched on spaCy lookup lemmas, so no trained spaCy pipeline
is needed.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc

from bot.nlp import get_nlp
from bot.safety.data import Flag, SafetyData, get_safety_data

MAX_CHARS = 20000  # a whole long message is read: a symptom at the end still counts
MAX_OPTIONS = 6  # mentions of one concept tried when pairing concepts
_LONG_RUN = re.compile(r"\S{41,}")

NEGATION_CUES = {
    "no", "not", "n't", "never", "without", "deny", "denies", "nor", "neither", "none",
    "negative", "nothing", "nt", "almost", "nearly", "zero", "dont", "didnt", "havent", "doesnt", "isnt", "wasnt",
}
PSEUDO_NEGATIONS = {("not", "sure"), ("not", "only"), ("no", "idea"), ("not", "just"),
                    ("no", "matter"), ("not", "even"), ("no", "one"), ("not", "know")}
INABILITY = {"can", "could", "will", "would"}
CLAUSE_BREAKS = {".", ";", "!", "?", "but", "however", "though", "although", "except",
                 "yet", "whereas", "apart"}
SENTENCE_BREAKS = {".", ";", "!", "?"}
NEGATION_WINDOW = 7

_PAST = re.compile(
    r"\b(?:last\s+(?:month|year|summer|winter|spring|autumn|fall|christmas|decade)"
    r"|(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|several|few|many|couple\s+of)"
    r"\s+(?:months?|years?|yrs?|decades?)\s+(?:ago|back|before)"
    r"|(?:months|years|decades|ages|long\s+time|long\s+while)\s+ago|long\s+ago"
    r"|in\s+(?:19|20)\d\d|in\s+(?:january|february|march|april|june|july|august|september|october|november|december)"
    r"|ages\s+ago|back\s+in|used\s+to|in\s+the\s+past|previously|back\s+then"
    r"|as\s+a\s+(?:child|kid|teen|teenager|baby|boy|girl|student)"
    r"|when\s+i\s+was\s+(?:young|younger|little|small|a\s+kid|a\s+child|pregnant|a\s+teenager)"
    r"|in\s+my\s+(?:teens|twenties|thirties|youth)|when\s+i\s+was\s+\d+"
    r"|once\s+(?:had|collapsed|fainted|passed|fell)|(?:had|collapsed|fainted|fell)\s+once"
    r"|childhood|once\s+had|history\s+of|died\s+(?:of|from)|passed\s+away|late\s+(?:father|mother|dad|mum|mom|husband|wife))\b"
)
_RESOLVED = re.compile(
    r"\b(?:(?:went|go|gone|goes|going)\s+away|long\s+gone|wore\s+off|worn\s+off|shook\s+it\s+off"
    r"|(?:it's|its|it\s+is|i'm|im|all)\s+(?:fine|ok|okay|good)\b(?!\s+(?:but|except))"
    r"|(?:is|was|has|it's|its|all)\s+gone(?=\s*(?:$|[.,;!?]|now|away|completely|thankfully))"
    r"|gone\s+now|resolved|cleared(?:\s+up)?|recovered|(?:better|fine|ok|okay|good|normal|alright)\s+now"
    r"|back\s+to\s+normal|now\s+(?:only|just|it's\s+just|its\s+just|i\s+only|i\s+just)"
    r"|no\s+longer(?!\s+(?:feel|control|walk|stand|lift|hold|move|pee|wee|pass|breathe|see|speak))"
    r"|not\s+any\s*more|has\s+stopped|had\s+stopped|settled(?:\s+down)?|healed|sorted\s+now"
    r"|faded|subsided|eased\s+off|disappeared|calmed\s+down|went\s+down"
    r"|(?:fine|ok|okay|better|normal)\s+after|said\s+(?:it\s+was\s+|it's\s+|its\s+)?(?:fine|ok|okay|nothing))\b"
)
_NOT_RESOLVED = re.compile(r"(?:never|not|n't|nt|wont|dont|doesnt|didnt|won't|don't)\s+(?:\w+\s+)?$")
_RECENT = re.compile(
    r"\b(?:today|tonight|this\s+(?:morning|afternoon|evening)|just|earlier|right\s+now|now|since|still"
    r"|(?:\d+|a\s+few|few|an?)\s+(?:minutes?|mins?|hours?|hrs?)\s+ago|yesterday|last\s+night)\b"
)
_HAD_BEFORE = re.compile(r"\bhad\s+(?:a|an|the|his|her|their)?\s*(?:\w+\s+){0,2}$")
_ONGOING = re.compile(
    r"\b(?:since|still|currently|right\s+now|at\s+the\s+moment|today|tonight|this\s+(?:morning|afternoon|evening|week)"
    r"|keeps?|keeping|again|getting|anymore|any\s+more|now)\b"
)
_ABOUT = re.compile(
    r"\b(?:(?:risk|risks|chance|chances|likelihood|danger|dangers)\s+of|prevent|preventing|prevention|avoid"
    r"|(?:sign|signs|symptom|symptoms)\s+of|warning\s+signs?|red\s+flags?"
    r"|what\s+(?:is|are|does|causes)\s+(?!happening|going\s+on|wrong)|what's\s+(?:a|an|the)\b"
    r"|(?:should|can|could|may)\s+i\s+(?:double|take|use|try|avoid|stop|still|have|fly|drive|exercise)"
    r"|at\s+risk|worried\s+about|worry\s+about|concerned\s+about|afraid\s+of|scared\s+of"
    r"|mean|does\s+(?:\w+\s+){0,5}always|always|risk|risks"
    r"|how\s+(?:common|likely|often|do\s+i\s+know|can\s+i\s+tell|much|many|long|do\s+you)"
    r"|(?:can|could|does|do|will|would|might|may)\s+(?:\w+\s+){0,4}(?:cause|lead\s+to|give|result|make|harm|damage|affect|hurt)"
    r"|is\s+it\s+(?:safe|possible|common|likely|dangerous)|when\s+should|should\s+i\s+worry"
    r"|in\s+case|what\s+if|if\s+(?:you|the|a|someone|one))\b"
)
_ABOUT_STRONG = re.compile(
    r"\b(?:(?:should|can|could|may)\s+i\s+(?:double|take|use|try|have|fly|drive)"
    r"|what\s+(?:should|do|would)\s+i\s+do\s+if|what\s+(?:happens|would\s+happen|will\s+happen)\s+if"
    r"|in\s+case|what\s+if|suppose|supposing|if\s+ever|how\s+(?:do|can|would)\s+i\s+(?:know|tell)\s+if"
    r"|(?:can|could|does|do|will|would|might|may)\s+(?:\w+\s+){0,4}(?:cause|lead\s+to|trigger|give\s+you)"
    r"|if\s+(?:i|my|you)\b(?=[^.?!]*\b(?:will|would|should|do\s+i|can\s+i|who\s+do\s+i)\b)"
    r"|(?:risk|risks|chance|chances)\s+of|how\s+(?:do|can)\s+i\s+(?:prevent|avoid|stop))\b"
)
_ABOUT_END = re.compile(r"\b(?:dangerous|serious|bad|worrying)\s*\?\s*$")
_PERSONAL_NOW = re.compile(
    r"\b(?:i\s+(?:have|got|am|can't|cannot|cant|can\s+not|couldn't|keep|feel|think\s+i)|i've\s+got|i've|i'm|im"
    r"|my\s+\w+\s+(?:is|are|has|have|feels?|keeps?)|right\s+now|since|currently|at\s+the\s+moment|today|tonight"
    r"|i\s+(?:took|ate|swallowed|drank|fell|hit)|i've\s+taken|i\s+have\s+taken"
    r"|still|now|is\s+this|is\s+that|could\s+this|could\s+it\s+be|is\s+it\s+normal)\b"
)
_RELATIVE = re.compile(
    r"\b(?:grand(?:father|mother|pa|ma|dad|mum|mom)|father|mother|mum|mom|dad|daddy|mummy|parents?"
    r"|brother|sister|sibling|aunt|auntie|uncle|cousin|relative|family|son|daughter|husband|wife"
    r"|friend|colleague|neighbour|neighbor|boss)\b"
)
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|im|i've|me|myself)\b")
_TEMPERATURE = re.compile(
    r"(?<![\d.,])(\d{2,3}(?:[.,]\d{1,2})?)\s*(°|º|˚|deg(?:rees?)?\.?)?\s*"
    r"(c|f|celsius|fahrenheit|centigrade)?(?![a-z\d])"
)
_TEMPERATURE_CONTEXT = re.compile(
    r"\b(?:temp|temps|temperature|fever|feverish|thermometer|degrees?|deg)\b|°|º"
)


@dataclass(frozen=True)
class Finding:
    """One flag found in a message: what fired, and the patient's words that fired it."""

    flag: str
    tier: str
    category: str
    say: str
    start: int
    end: int
    words: str


@dataclass(frozen=True)
class RedFlagResult:
    """The flags found in one message (empty when there are none)."""

    findings: Tuple[Finding, ...] = ()
    dismissed: FrozenSet[str] = frozenset()  # concepts mentioned but negated, past or hypothetical

    @property
    def flags(self) -> Tuple[str, ...]:
        """The ids of the flags found, in data-file order."""
        return tuple(f.flag for f in self.findings)

    @property
    def start(self) -> int:
        """Where the first finding's words start (0 when none)."""
        return min((f.start for f in self.findings), default=0)

    @property
    def end(self) -> int:
        """Where the last finding's words end (0 when none)."""
        return max((f.end for f in self.findings), default=0)

    def __bool__(self) -> bool:
        """True when any flag was found."""
        return bool(self.findings)


@dataclass(frozen=True)
class _Mention:
    concept: str
    start: int  # token index
    end: int
    sentence: int


def _lower_same_length(text: str) -> str:
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else "".join(
        c.lower() if len(c.lower()) == 1 else c for c in text
    )


class RedFlagDetector:
    """Finds emergency and red-flag mentions in free text (see module docstring)."""

    def __init__(self, data: Optional[SafetyData] = None) -> None:
        """Compile the data file's concept phrase lists into one lemma matcher."""
        self.data = data or get_safety_data()
        self.nlp = get_nlp()
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="LEMMA")
        for concept, phrases in self.data.concepts.items():
            self.matcher.add(concept, list(self.nlp.pipe(_variants(phrases))))
        self._patterns = {
            concept: [re.compile(r) for r in regexes] for concept, regexes in self.data.patterns.items()
        }

    # -- segmentation -------------------------------------------------------------------

    @staticmethod
    def _segments(doc: Doc, matched: Set[int]) -> Tuple[List[int], List[int]]:
        """Sentence and clause index of every token."""
        sentences: List[int] = []
        clauses: List[int] = []
        sentence = clause = 0
        for token in doc:
            if "\n" in token.text:
                sentence += 1
                clause += 1
            sentences.append(sentence)
            clauses.append(clause)
            if token.lower_ in SENTENCE_BREAKS:
                sentence += 1
                clause += 1
            elif token.lower_ in CLAUSE_BREAKS and token.i not in matched:
                clause += 1
        return sentences, clauses

    def _negated(self, doc: Doc, start: int, matched: Set[int], starts: Set[int]) -> bool:
        for i in range(start - 1, max(-1, start - 1 - NEGATION_WINDOW), -1):
            token = doc[i]
            if token.lower_ in CLAUSE_BREAKS or token.lower_ in SENTENCE_BREAKS or "\n" in token.text:
                return False
            if token.lower_ == "," and (i + 1) not in starts and doc[i + 1].lower_ not in {"or", "nor", "and"}:
                return False  # a comma ends the clause unless a list of symptoms goes on
            if i in matched:
                continue  # a cue inside another phrase ("can't pee") negates nothing
            lemma = token.lemma_.lower()
            if lemma in NEGATION_CUES or token.lower_ in NEGATION_CUES:
                if i > 0 and doc[i - 1].lemma_.lower() in INABILITY and lemma in {"not", "n't", "nt"}:
                    continue  # "cannot", "won't": not being able to is a symptom, not a denial
                following = doc[i + 1].lower_ if i + 1 < len(doc) else ""
                if (token.lower_, following) in PSEUDO_NEGATIONS or (lemma, following) in PSEUDO_NEGATIONS:
                    continue
                return True
        return False

    # -- temperature ----------------------------------------------------------------------

    def _temperatures(self, text: str) -> List[Tuple[int, int]]:
        """Character spans of temperature readings at or above the fever thresholds."""
        spans: List[Tuple[int, int]] = []
        for match in _TEMPERATURE.finditer(text):
            value = float(match.group(1).replace(",", "."))
            unit = (match.group(3) or "").lower()
            context = text[max(0, match.start() - 30): match.end() + 30]
            after = text[match.end(): match.end() + 12]
            if re.match(r"\s*(?:years?|yrs?|kg|kilos?|lbs?|pounds?|%|mins?|minutes?|days?|hours?|weeks?)\b", after):
                continue
            marked = bool(match.group(2)) or bool(unit) or bool(_TEMPERATURE_CONTEXT.search(context))
            if not marked:
                continue
            celsius = unit.startswith("c") or (not unit.startswith("f") and value < 50)
            low = self.data.celsius_min if celsius else self.data.fahrenheit_min
            high = 44.0 if celsius else 111.0
            if low <= value <= high:
                spans.append((match.start(), match.end()))
        return spans

    # -- detection ---------------------------------------------------------------------

    def _mentions(self, doc: Doc, text: str, denied: Set[str]) -> Tuple[List[_Mention], List[int], List[int]]:
        raw = [(self.nlp.vocab.strings[m], s, e) for m, s, e in self.matcher(doc)]
        spans = [(self.data.fever_concept, s, e) for s, e in self._temperatures(text)]
        spans += [
            (concept, m.start(), m.end())
            for concept, regexes in self._patterns.items()
            for regex in regexes
            for m in regex.finditer(text)
        ]
        for concept, start_char, end_char in spans:
            span = doc.char_span(start_char, end_char, alignment_mode="expand")
            if span is not None:
                raw.append((concept, span.start, span.end))
        matched = {i for _, s, e in raw for i in range(s, e)}
        starts = {s for _, s, _ in raw}
        sentences, clauses = self._segments(doc, matched)
        mentions: List[_Mention] = []
        for concept, s, e in sorted(raw, key=lambda m: (m[1], -m[2])):
            if self._negated(doc, s, matched, starts):
                denied.add(concept)
            else:
                mentions.append(_Mention(concept, s, e, sentences[s]))
        return mentions, sentences, clauses

    def _is_past(self, ctx: _Context, mention: _Mention) -> bool:
        text = ctx.text
        c_start, c_end = ctx.clause_span(mention.start)
        s_start, s_end = ctx.sentence_span(mention.start)
        m_start, m_end = ctx.char_span(mention)
        # what is still going on is read in the mention's own part of the clause (up to commas)
        p_start = text.rfind(",", c_start, m_start) + 1 or c_start
        p_end = text.find(",", m_end, c_end)
        part = text[max(p_start, c_start): p_end if p_end != -1 else c_end]
        ongoing = bool(_ONGOING.search(_RESOLVED.sub(" ", _PAST.sub(" ", part))))
        for r_start, r_end in ctx.resolved(mention.start):
            if r_start < m_end and m_start < r_end:
                continue  # part of the symptom itself ("if i was gone")
            if c_start <= r_start < c_end or not ongoing:
                return True
        if ctx.has_past(mention.start):
            return not ongoing
        return self._relative_had(ctx, mention, part)

    def _relative_had(self, ctx: _Context, mention: _Mention, part: str) -> bool:
        """A relative's past event ("my brother had a clot"), unless recent ("this morning")."""
        return (
            bool(_HAD_BEFORE.search(text_before(ctx.doc, mention)))
            and not _RECENT.search(part)
            and self._is_someone_elses_history(ctx, mention)
        )

    @staticmethod
    def _is_someone_elses_history(ctx: _Context, mention: _Mention) -> bool:
        c_start, _ = ctx.clause_span(mention.start)
        m_start, _ = ctx.char_span(mention)
        before = ctx.text[max(c_start, m_start - 160): m_start]
        relatives = list(_RELATIVE.finditer(before))
        if not relatives:
            return False
        return not _FIRST_PERSON.search(before[relatives[-1].end():])

    @staticmethod
    def _is_about(ctx: _Context, mention: _Mention) -> bool:
        strong_at, about = ctx.about(mention.start)
        if strong_at is not None and strong_at <= ctx.char_span(mention)[0]:
            return True  # "what should I do if my wound starts oozing?"
        return about

    def _usable(self, flag: Flag, ctx: _Context, mention: _Mention) -> bool:
        key = (flag.history, mention.start, mention.end)
        if key not in ctx.usable:
            if flag.history:
                past = self._is_someone_elses_history(ctx, mention)
            else:
                past = self._is_past(ctx, mention)
            ctx.usable[key] = not past and not self._is_about(ctx, mention)
        return ctx.usable[key]

    def detect(self, text: str) -> RedFlagResult:
        """Flags in `text`, empty when there are none (or all are negated, past or hypothetical)."""
        if not text or not text.strip():
            return RedFlagResult()
        # runs of 40+ characters without a space are cut (same length, so offsets hold):
        # spaCy's tokenizer takes quadratic time on them, and no symptom is written that way
        text = _LONG_RUN.sub(lambda m: m.group(0)[:40] + " " * (len(m.group(0)) - 40),
                             _lower_same_length(text[:MAX_CHARS]))
        doc = self.nlp(text)
        dismissed: Set[str] = set()
        mentions, sentences, clauses = self._mentions(doc, text, dismissed)
        ctx = _Context(doc, text, sentences, clauses)
        by_concept: Dict[str, List[_Mention]] = {}
        for mention in mentions:
            by_concept.setdefault(mention.concept, []).append(mention)
        findings: Dict[str, Finding] = {}
        for flag in self.data.flags.values():
            finding = self._match_flag(flag, ctx, by_concept, dismissed)
            if finding is not None:
                findings[flag.id] = finding
        superseded: Set[str] = set()
        for flag_id in findings:
            superseded |= self.data.flags[flag_id].supersedes
        return RedFlagResult(
            findings=tuple(f for key, f in findings.items() if key not in superseded),
            dismissed=frozenset(dismissed),
        )

    def _match_flag(self, flag: Flag, ctx: _Context, by_concept: Dict[str, List[_Mention]],
                    dismissed: Set[str]) -> Optional[Finding]:
        doc, text = ctx.doc, ctx.text
        for alternative in flag.when:
            options: List[List[_Mention]] = []
            for concept in alternative.concepts:
                mentioned = by_concept.get(concept, [])
                usable: List[_Mention] = []
                for mention in mentioned:
                    if self._usable(flag, ctx, mention):
                        usable.append(mention)
                        if len(usable) == MAX_OPTIONS:
                            break
                if mentioned and not usable:
                    dismissed.add(concept)
                if not usable:
                    break
                options.append(usable)
            else:
                blocked = {
                    m.sentence for c in alternative.unless for m in by_concept.get(c, [])
                }
                chosen = _closest(options, alternative.near, blocked)
                if chosen is None:
                    continue
                start = min(m.start for m in chosen)
                end = max(m.end for m in chosen)
                span = doc[start:end]
                return Finding(
                    flag=flag.id,
                    tier=flag.tier,
                    category=flag.category,
                    say=alternative.say,
                    start=span.start_char,
                    end=span.end_char,
                    words=text[span.start_char: span.end_char][:120],
                )
        return None


class _Context:
    """One message being read: its tokens, sentences and clauses, and what was worked out."""

    def __init__(self, doc: Doc, text: str, sentences: List[int], clauses: List[int]) -> None:
        self.doc, self.text, self.sentences, self.clauses = doc, text, sentences, clauses
        self._sentence_spans = _group_spans(doc, sentences)
        self._clause_spans = _group_spans(doc, clauses)
        self._resolved: Dict[int, List[Tuple[int, int]]] = {}
        self._past: Dict[int, bool] = {}
        self._about: Dict[int, Tuple[Optional[int], bool]] = {}
        self.usable: Dict[Tuple[bool, int, int], bool] = {}

    def sentence_span(self, token: int) -> Tuple[int, int]:
        """Characters of the sentence that holds `token`."""
        return self._sentence_spans[self.sentences[token]]

    def clause_span(self, token: int) -> Tuple[int, int]:
        """Characters of the clause that holds `token`."""
        return self._clause_spans[self.clauses[token]]

    def char_span(self, mention: _Mention) -> Tuple[int, int]:
        """Characters of a mention."""
        last = self.doc[mention.end - 1]
        return self.doc[mention.start].idx, last.idx + len(last.text)

    def resolved(self, token: int) -> List[Tuple[int, int]]:
        """Resolution phrases ("gone now") in the sentence of `token`, not themselves negated."""
        sentence = self.sentences[token]
        if sentence not in self._resolved:
            start, end = self._sentence_spans[sentence]
            self._resolved[sentence] = [
                (m.start(), m.end()) for m in _RESOLVED.finditer(self.text, start, end)
                if not _NOT_RESOLVED.search(self.text[max(start, m.start() - 40): m.start()])
            ]
        return self._resolved[sentence]

    def has_past(self, token: int) -> bool:
        """Whether the sentence of `token` says when in the past ("years ago")."""
        sentence = self.sentences[token]
        if sentence not in self._past:
            start, end = self._sentence_spans[sentence]
            self._past[sentence] = bool(_PAST.search(self.text, start, end))
        return self._past[sentence]

    def about(self, token: int) -> Tuple[Optional[int], bool]:
        """Where a hypothetical starts in the sentence, and whether it is a general question."""
        sentence = self.sentences[token]
        if sentence not in self._about:
            start, end = self._sentence_spans[sentence]
            text = self.text[start:end]
            strong = _ABOUT_STRONG.search(text)
            general = bool(_ABOUT.search(text) or _ABOUT_END.search(text)) and not _PERSONAL_NOW.search(text)
            self._about[sentence] = (start + strong.start() if strong else None, general)
        return self._about[sentence]


def _group_spans(doc: Doc, groups: List[int]) -> Dict[int, Tuple[int, int]]:
    spans: Dict[int, Tuple[int, int]] = {}
    for token in doc:
        group = groups[token.i]
        end = token.idx + len(token.text)
        spans[group] = (spans[group][0], end) if group in spans else (token.idx, end)
    return spans


def text_before(doc: Doc, mention: _Mention) -> str:
    """The few words before a mention, lower-cased."""
    return " ".join(t.lower_ for t in doc[max(0, mention.start - 5): mention.start]) + " "


def _closest(options: Sequence[Sequence[_Mention]], near: Optional[int],
             blocked: Set[int]) -> Optional[Tuple[_Mention, ...]]:
    """The combination of mentions (one per concept) spanning the fewest words."""
    best: Optional[Tuple[_Mention, ...]] = None
    best_width = 10**9
    for combo in itertools.product(*options):
        if any(m.sentence in blocked for m in combo):
            continue
        if len({(m.start, m.end) for m in combo}) < len(combo):
            continue  # one word can't be two concepts ("inflamed" is not red AND swollen)
        width = max(m.end for m in combo) - min(m.start for m in combo)
        if near is not None and width > near + sum(m.end - m.start for m in combo):
            continue
        if width < best_width:
            best, best_width = combo, width
    return best


def _variants(phrases: Iterable[str]) -> List[str]:
    """Add "unable to" / "not able to" forms of "can't" phrases; lemmas cover other spellings."""
    out: List[str] = []
    for phrase in phrases:
        out.append(phrase)
        if "can't " in phrase:
            out.append(phrase.replace("can't ", "unable to "))
            out.append(phrase.replace("can't ", "not able to "))
            out.append(phrase.replace("can't ", "cant "))
            for adverb in ("really", "quite", "properly", "even", "hardly", "barely"):
                out.append(phrase.replace("can't ", f"can't {adverb} "))
                out.append(phrase.replace("can't ", f"can {adverb} not "))
        if "won't " in phrase:
            out.append(phrase.replace("won't ", "wont "))
            out.append(phrase.replace("won't ", "will not "))
        if "don't " in phrase:
            out.append(phrase.replace("don't ", "dont "))
            out.append(phrase.replace("don't ", "do not "))
        if " my " in f" {phrase} ":
            for other in ("his", "her", "the"):
                out.append(f" {phrase} ".replace(" my ", f" {other} ").strip())
    return out


@lru_cache(maxsize=1)
def get_detector() -> RedFlagDetector:
    """The process-wide rule detector (building the matcher takes a fraction of a second)."""
    return RedFlagDetector()
