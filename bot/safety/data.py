"""The clinically reviewed safety data (`data/safety/flags.yml`), loaded and checked.

Flag vocabulary, tiers, advice and sources are data a clinician can review without reading
code. This module turns the file into typed objects and refuses a file with a dangling
reference (a concept, source or tier that does not exist), so a typo fails at start-up and in
the tests rather than silently disabling a flag.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Tuple

import yaml

SAFETY_DIR = Path(__file__).resolve().parents[2] / "data" / "safety"
FLAGS_PATH = SAFETY_DIR / "flags.yml"
DETECTOR_TRAINING_PATH = SAFETY_DIR / "detector_training.yml"

TIERS = ("emergency", "urgent")
CATEGORIES = ("back_knee", "post_surgery", "general", "crisis")
RESPONSES = ("alert", "crisis")
ANSWERS = ("yes", "no")


class SafetyDataError(ValueError):
    """The safety data file is malformed or refers to something that does not exist."""


@dataclass(frozen=True)
class Source:
    """A published guidance page a flag follows."""

    key: str
    title: str
    url: str


@dataclass(frozen=True)
class Alternative:
    """One way a flag is recognised: all `concepts` mentioned (within `near` words)."""

    concepts: Tuple[str, ...]
    say: str
    near: Optional[int] = None
    unless: FrozenSet[str] = frozenset()


@dataclass(frozen=True)
class Flag:
    """One emergency or red flag: how it is recognised and what the patient is told."""

    id: str
    name: str
    category: str
    tier: str
    response: str
    history: bool
    when: Tuple[Alternative, ...]
    advice: str
    sources: Tuple[Source, ...]
    screen_question: str
    screen_reassuring: str
    examples: Tuple[str, ...]
    supersedes: FrozenSet[str]
    say: str = ""  # how a worrying screening answer is said back

    @property
    def is_crisis(self) -> bool:
        """Suicidal thoughts or self-harm: the crisis response, not a symptom alert."""
        return self.response == "crisis"


@dataclass(frozen=True)
class Tier:
    """What a tier means and the headline advice every flag of that tier gets."""

    name: str
    meaning: str
    headline: str
    action: str


@dataclass(frozen=True)
class SafetyData:
    """Everything in `data/safety/flags.yml`."""

    version: int
    tiers: Mapping[str, Tier]
    sources: Mapping[str, Source]
    concepts: Mapping[str, Tuple[str, ...]]
    patterns: Mapping[str, Tuple[str, ...]]
    flags: Mapping[str, Flag]
    crisis: Mapping[str, str]
    negatives: Tuple[str, ...]
    fever_concept: str
    celsius_min: float
    fahrenheit_min: float
    fingerprint: str


def _require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in mapping or mapping[key] in (None, ""):
        raise SafetyDataError(f"{where}: missing {key!r}")
    return mapping[key]


def _alternative(raw: Mapping[str, Any], concepts: Mapping[str, Any], where: str) -> Alternative:
    names = tuple(str(c) for c in _require(raw, "all", where))
    unless = frozenset(str(c) for c in raw.get("unless") or ())
    for name in (*names, *unless):
        if name not in concepts:
            raise SafetyDataError(f"{where}: unknown concept {name!r}")
    near = raw.get("near")
    return Alternative(
        concepts=names,
        say=str(_require(raw, "say", where)),
        near=int(near) if near is not None else None,
        unless=unless,
    )


def _missing(where: str, key: str) -> str:
    raise SafetyDataError(f"{where}: missing {key!r}")


def _flag(key: str, raw: Mapping[str, Any], data: Mapping[str, Any], sources: Mapping[str, Source]) -> Flag:
    where = f"flags.{key}"
    tier = str(_require(raw, "tier", where))
    category = str(_require(raw, "category", where))
    response = str(raw.get("response", "alert"))
    if tier not in TIERS:
        raise SafetyDataError(f"{where}: tier must be one of {TIERS}")
    if category not in CATEGORIES:
        raise SafetyDataError(f"{where}: category must be one of {CATEGORIES}")
    if response not in RESPONSES:
        raise SafetyDataError(f"{where}: response must be one of {RESPONSES}")
    screen = _require(raw, "screen", where)
    reassuring = str(_require(screen, "reassuring", f"{where}.screen")).lower()
    if reassuring not in ANSWERS:
        raise SafetyDataError(f"{where}.screen: reassuring must be yes or no")
    source_keys = [str(s) for s in _require(raw, "sources", where)]
    for source in source_keys:
        if source not in sources:
            raise SafetyDataError(f"{where}: unknown source {source!r}")
    when = tuple(
        _alternative(alt, data["concepts"], f"{where}.when[{i}]")
        for i, alt in enumerate(_require(raw, "when", where))
    )
    return Flag(
        id=key,
        name=str(_require(raw, "name", where)),
        category=category,
        tier=tier,
        response=response,
        history=bool(raw.get("history", False)),
        when=when,
        advice=str(_require(raw, "advice", where)),
        sources=tuple(sources[s] for s in source_keys),
        screen_question=str(_require(screen, "question", f"{where}.screen")),
        screen_reassuring=reassuring,
        examples=tuple(str(e) for e in raw.get("examples") or ()),
        supersedes=frozenset(str(s) for s in raw.get("supersedes") or ()),
        say=str(raw.get("say") or (when[0].say if when else "")) or _missing(where, "say"),
    )


def parse_safety_data(data: Mapping[str, Any], fingerprint: str = "") -> SafetyData:
    """Validate the parsed YAML and build `SafetyData`."""
    for key in ("tiers", "sources", "concepts", "flags", "crisis", "temperature"):
        _require(data, key, "flags.yml")
    tiers = {
        name: Tier(
            name=name,
            meaning=str(_require(raw, "meaning", f"tiers.{name}")),
            headline=str(_require(raw, "headline", f"tiers.{name}")),
            action=str(_require(raw, "action", f"tiers.{name}")),
        )
        for name, raw in data["tiers"].items()
    }
    if set(tiers) != set(TIERS):
        raise SafetyDataError(f"tiers must be exactly {TIERS}")
    sources = {
        key: Source(key=key, title=str(_require(raw, "title", f"sources.{key}")),
                    url=str(_require(raw, "url", f"sources.{key}")))
        for key, raw in data["sources"].items()
    }
    concepts = {str(k): tuple(str(p) for p in v) for k, v in data["concepts"].items()}
    patterns = {str(k): tuple(str(p) for p in v) for k, v in (data.get("patterns") or {}).items()}
    for concept, regexes in patterns.items():
        if concept not in concepts:
            raise SafetyDataError(f"patterns: unknown concept {concept!r}")
        for regex in regexes:
            try:
                re.compile(regex)
            except re.error as exc:
                raise SafetyDataError(f"patterns.{concept}: {exc}") from exc
    flags = {str(k): _flag(str(k), raw, data, sources) for k, raw in data["flags"].items()}
    for flag in flags.values():
        unknown = flag.supersedes - flags.keys()
        if unknown:
            raise SafetyDataError(f"flags.{flag.id}: supersedes unknown flags {sorted(unknown)}")
    temperature = data["temperature"]
    fever = str(_require(temperature, "concept", "temperature"))
    if fever not in concepts:
        raise SafetyDataError(f"temperature: unknown concept {fever!r}")
    crisis = {str(k): str(v) for k, v in data["crisis"].items()}
    for key in ("opening", "help", "person"):
        _require(crisis, key, "crisis")
    return SafetyData(
        version=int(data.get("version", 1)),
        tiers=tiers,
        sources=sources,
        concepts=concepts,
        patterns=patterns,
        flags=flags,
        crisis=crisis,
        negatives=tuple(str(n) for n in data.get("negatives") or ()),
        fever_concept=fever,
        celsius_min=float(temperature["celsius_min"]),
        fahrenheit_min=float(temperature["fahrenheit_min"]),
        fingerprint=fingerprint,
    )


def files_fingerprint(*paths: Path) -> str:
    """A hash of the safety files, so a changed file retrains the detector."""
    digest = hashlib.sha256()
    for path in paths:
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def load_safety_data(path: Path = FLAGS_PATH) -> SafetyData:
    """Read and validate the safety data file."""
    raw = path.read_bytes()
    data = yaml.safe_load(raw) or {}
    return parse_safety_data(data, fingerprint=hashlib.sha256(raw).hexdigest())


@lru_cache(maxsize=1)
def get_safety_data() -> SafetyData:
    """The process-wide safety data, read once."""
    return load_safety_data()


def load_detector_training(path: Path = DETECTOR_TRAINING_PATH) -> Tuple[Dict[str, List[str]], List[str]]:
    """Extra detector phrasings per flag, and hard negatives (empty when the file is absent)."""
    if not path.exists():
        return {}, []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    flags = {str(k): [str(t) for t in v or ()] for k, v in (data.get("flags") or {}).items()}
    return flags, [str(t) for t in data.get("negatives") or ()]
