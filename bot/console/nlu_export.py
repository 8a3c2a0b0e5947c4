"""Staff's "the bot got this wrong" labels written as Rasa NLU training data.

The export is reviewed and merged into data/ by a person (it is never trained on
automatically). Messages marked as a new topic are listed as comments, since they need
a new intent and answer first. The output is Rasa's YAML format 3.1 and passes
`rasa data validate` when saved as data/nlu/corrections.yml.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from bot.storage.models import NluCorrection


def _example(text: str) -> str:
    # one line per example; brackets would read as Rasa entity annotations
    flat = " ".join(text.split())
    return flat.replace("[", "(").replace("]", ")")


def export_yaml(corrections: Iterable[NluCorrection], known_intents: Iterable[str]) -> str:
    """Rasa NLU YAML for these labels (intents not in the domain are left out)."""
    known = set(known_intents)
    by_intent: dict[str, list[str]] = defaultdict(list)
    new_topics: list[tuple[str, str]] = []
    for row in corrections:
        text = _example(row.text or "")
        if not text or text.startswith("/"):
            continue
        if row.corrected_intent and row.corrected_intent in known:
            if text not in by_intent[row.corrected_intent]:
                by_intent[row.corrected_intent].append(text)
        elif row.new_topic:
            new_topics.append((row.new_topic, text))
    out = ['version: "3.1"', "", "# Labelled by clinic staff in the console (/improve).",
           "# Review before merging into data/nlu/.", "nlu:"]
    if not by_intent:
        out[-1] = "nlu: []"
    for intent in sorted(by_intent):
        out.append(f"- intent: {intent}")
        out.append("  examples: |")
        out.extend(f"    - {text}" for text in by_intent[intent])
    if new_topics:
        out.append("")
        out.append("# New topics (need a new intent and answer before they can be trained):")
        out.extend(f"#   {_example(topic)}: {text}" for topic, text in new_topics)
    return "\n".join(out) + "\n"
