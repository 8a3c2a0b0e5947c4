"""Safety triage: emergencies and red flags come before everything else.

* `data`: the clinically reviewed file `data/safety/flags.yml` (tiers, advice, sources).
* `rules`: the precise, explainable detector built from that file.
* `detector`: a trained classifier that catches wording nobody wrote a rule for; when it
  suspects a flag the rules don't confirm, the assistant asks one screening question.
* `reply`: what the patient reads, composed from the data file and the practice profile.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from bot.safety.rules import Finding, RedFlagDetector, RedFlagResult, get_detector

RED_FLAG_INTENT = "report_red_flag"
RED_FLAG_ENTITY = "red_flag"
SUSPECT_ENTITY = "safety_suspect"
FULL_TEXT_KEY = "full_text"


def safety_text(text: Optional[str], metadata: Optional[Mapping[str, Any]]) -> str:
    """What the safety rules read: the full text when a channel cut the message for NLU."""
    full = metadata.get(FULL_TEXT_KEY) if isinstance(metadata, Mapping) else None
    return full if isinstance(full, str) and full else str(text or "")

__all__ = [
    "FULL_TEXT_KEY",
    "Finding",
    "RED_FLAG_ENTITY",
    "RED_FLAG_INTENT",
    "RedFlagDetector",
    "RedFlagResult",
    "SUSPECT_ENTITY",
    "get_detector",
    "safety_text",
]
