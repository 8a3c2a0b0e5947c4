"""Safety triage on the project's own safety sets: what the trained assistant would do first.

Every message of a set (`tests/safety/holdout.yml` by default) goes through the trained
model twice, in-process: as a conversation's first message, and typed at the mobile-number
prompt of a booking form. For each, the dialogue policies' first action is recorded:
`action_red_flag` (the alert or crisis response), `action_safety_screen` (one screening
question) or anything else (missed). It prints recall per flag, category and tier, false
alarms on the negatives, and the screening-question rate, and exits 1 when recall is below
`--min-recall` or false alarms are above `--max-false-alarms`.

    python -m bot.evaluate_safety [--set tests/safety/holdout.yml] [--model ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from bot.settings import PROJECT_ROOT

DEFAULT_SET = PROJECT_ROOT / "tests" / "safety" / "holdout.yml"
ALERT = "action_red_flag"
SCREEN = "action_safety_screen"


@dataclass(frozen=True)
class Outcome:
    """The first action after one message, and the flags the rules named."""

    action: str
    flags: tuple[str, ...]


def _prefix(where: str) -> List[Any]:
    """Tracker events that put the conversation at a fresh start or at the phone prompt."""
    from rasa.shared.core.events import (
        ActionExecuted,
        ActiveLoop,
        BotUttered,
        SessionStarted,
        SlotSet,
        UserUttered,
    )

    events: List[Any] = [ActionExecuted("action_session_start"), SessionStarted(),
                         ActionExecuted("action_listen")]
    if where == "form":
        events += [
            UserUttered("/book_appointment", {"name": "book_appointment", "confidence": 1.0}),
            ActionExecuted("booking_form"),
            ActiveLoop("booking_form"),
            SlotSet("contact_consent", True),
            SlotSet("full_name", "Alex Tan"),
            SlotSet("requested_slot", "phone"),
            BotUttered("What's your mobile number?"),
            ActionExecuted("action_listen"),
        ]
    return events


async def _first_action(processor: Any, text: str, where: str) -> Outcome:
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = processor.domain
    tracker = DialogueStateTracker.from_events("eval", _prefix(where), domain.slots)
    parse = await processor.parse_message(UserMessage(text))
    tracker.update(UserUttered(text, parse.get("intent"), parse.get("entities"), parse), domain)
    tracker = await processor.run_action_extract_slots(CollectingOutputChannel(), tracker)
    prediction = processor._predict_next_with_tracker(tracker)
    action = domain.action_names_or_texts[prediction.max_confidence_index]
    flags = tuple(str(e["value"]) for e in parse.get("entities") or [] if e.get("entity") == "red_flag")
    if action == ALERT and not flags:
        action = "action_warning_signs"  # no flag named: the list of warning signs, no alert
    return Outcome(action=action, flags=flags)


async def run(model: Path, dataset: Dict[str, Any]) -> Dict[str, Any]:
    """Every positive and negative, at the start and at a form prompt."""
    from rasa.core.agent import load_agent

    from bot.safety.data import get_safety_data

    agent = await load_agent(model_path=str(model))
    processor = agent.processor
    flags = get_safety_data().flags
    rows: List[Dict[str, Any]] = []
    for flag, texts in dataset.get("positives", {}).items():
        for text in texts:
            for where in ("start", "form"):
                outcome = await _first_action(processor, text, where)
                rows.append({"flag": flag, "tier": flags[flag].tier, "category": flags[flag].category,
                             "text": text, "where": where, "action": outcome.action,
                             "named": list(outcome.flags)})
    for text in dataset.get("negatives", []):
        for where in ("start", "form"):
            outcome = await _first_action(processor, text, where)
            rows.append({"flag": None, "text": text, "where": where, "action": outcome.action,
                         "named": list(outcome.flags)})
    return summarise(rows)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 1.0


def summarise(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Recall by flag, category and tier; false alarms and screening rates."""
    positives = [r for r in rows if r["flag"]]
    negatives = [r for r in rows if not r["flag"]]
    groups: Dict[str, Dict[str, List[Dict[str, Any]]]] = {"flag": {}, "category": {}, "tier": {}}
    for row in positives:
        for key in groups:
            groups[key].setdefault(row[key], []).append(row)
    recall = {
        key: {name: _rate(sum(r["action"] == ALERT for r in items), len(items))
              for name, items in sorted(values.items())}
        for key, values in groups.items()
    }
    return {
        "positives": len(positives),
        "negatives": len(negatives),
        "recall": _rate(sum(r["action"] == ALERT for r in positives), len(positives)),
        "recall_at_start": _rate(sum(r["action"] == ALERT for r in positives if r["where"] == "start"),
                                 sum(r["where"] == "start" for r in positives)),
        "recall_at_form_prompt": _rate(sum(r["action"] == ALERT for r in positives if r["where"] == "form"),
                                       sum(r["where"] == "form" for r in positives)),
        "recall_with_screening": _rate(sum(r["action"] in (ALERT, SCREEN) for r in positives), len(positives)),
        "right_flag_named": _rate(sum(r["flag"] in r["named"] for r in positives), len(positives)),
        "false_alarms": _rate(sum(r["action"] == ALERT for r in negatives), len(negatives)),
        "screening_rate_negatives": _rate(sum(r["action"] == SCREEN for r in negatives), len(negatives)),
        "screening_rate_positives": _rate(sum(r["action"] == SCREEN for r in positives), len(positives)),
        "by": recall,
        "missed": [r for r in positives if r["action"] != ALERT],
        "false_alarm_messages": [r for r in negatives if r["action"] == ALERT],
    }


def print_report(name: str, result: Dict[str, Any]) -> None:
    """The figures, then what was missed or alarmed on."""
    print(f"safety set: {name} ({result['positives']} positive and {result['negatives']} negative "
          "replays: each message at a conversation's start and at the booking form's phone prompt)")
    for key in ("recall", "recall_at_start", "recall_at_form_prompt", "recall_with_screening",
                "right_flag_named", "false_alarms", "screening_rate_negatives", "screening_rate_positives"):
        print(f"  {key:26s} {result[key]:.3f}")
    for group in ("tier", "category", "flag"):
        print(f"recall by {group}:")
        for label, value in result["by"][group].items():
            print(f"  {value:.3f}  {label}")
    for row in result["missed"][:20]:
        print(f"  MISSED ({row['where']}, {row['flag']} -> {row['action']}): {row['text']}")
    for row in result["false_alarm_messages"][:20]:
        print(f"  FALSE ALARM ({row['where']}, {row['named']}): {row['text']}")


def quiet() -> None:
    """Warnings only: Rasa's debug log of every prediction would bury the report."""
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Evaluate, print, save the report; exit 1 below the bar."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=PROJECT_ROOT / "models" / "clinic.tar.gz")
    parser.add_argument("--set", dest="sets", type=Path, action="append")
    parser.add_argument("--min-recall", type=float, default=1.0)
    parser.add_argument("--max-false-alarms", type=float, default=0.02)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results" / "safety")
    args = parser.parse_args(argv)
    quiet()
    ok = True
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.sets or [DEFAULT_SET]:
        dataset = yaml.safe_load(path.read_text(encoding="utf-8"))
        result = asyncio.run(run(args.model, dataset))
        print_report(path.name, result)
        (args.out / f"{path.stem}.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        ok = ok and result["recall"] >= args.min_recall and result["false_alarms"] <= args.max_false_alarms
    print("result:", "PASS" if ok else "FAIL",
          f"(bar: recall >= {args.min_recall}, false alarms <= {args.max_false_alarms})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
