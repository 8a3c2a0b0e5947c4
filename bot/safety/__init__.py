"""Safety triage: emergencies and red flags come before everything else.

* `data`: the clinically reviewed file `data/safety/flags.yml` (tiers, advice, sources).
* `rules`: the precise, explainable detector built from that file.
* `detector`: a trained classifier that catches wording nobody wrote a rule for; when it
  suspects a flag the rules don't confirm, the assistant asks one screening question.
* `reply`: what the patient reads, composed from the data file and the practice profile.
"""

from __future__ import annotations

from bot.safety.rules import Finding, RedFlagDetector, RedFlagResult, get_detector

RED_FLAG_INTENT = "report_red_flag"
RED_FLAG_ENTITY = "red_flag"
SUSPECT_ENTITY = "safety_suspect"

__all__ = [
    "Finding",
    "RED_FLAG_ENTITY",
    "RED_FLAG_INTENT",
    "RedFlagDetector",
    "RedFlagResult",
    "SUSPECT_ENTITY",
    "get_detector",
]
