"""NLU evaluation on the held-out split (tests/nlu/holdout.yml, never trained on).

Runs `rasa test nlu` on the current model and prints accuracy, macro-F1, the weakest
intents and the most frequent confusions, so a change to the training data is judged on
sentences the model has not seen.

    python -m bot.evaluate [--model models/clinic.tar.gz] [--min-macro-f1 0.95]
    python -m bot.evaluate --nlu other_set.yml    # any labelled set in Rasa's NLU format
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from bot.settings import PROJECT_ROOT
from bot.train import rasa_command, training_env

HOLDOUT = PROJECT_ROOT / "tests" / "nlu" / "holdout.yml"


def evaluate(model: Path, out: Path, nlu: Path = HOLDOUT) -> Dict[str, Any]:
    """Run Rasa's NLU test on `nlu` and return the intent report plus the confusions."""
    subprocess.run(
        rasa_command(["test", "nlu", "--model", str(model), "--nlu", str(nlu),
                      "--out", str(out), "--quiet"]),
        cwd=PROJECT_ROOT, check=True, stdout=subprocess.DEVNULL, env=training_env(),
    )
    report = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    errors = json.loads((out / "intent_errors.json").read_text(encoding="utf-8"))
    confusions = collections.Counter(
        (e["intent"], e["intent_prediction"]["name"]) for e in errors
    )
    return {"report": report, "confusions": confusions, "errors": errors}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the figures; exit 1 if macro-F1 is below --min-macro-f1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=PROJECT_ROOT / "models" / "clinic.tar.gz")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results" / "nlu")
    parser.add_argument("--nlu", type=Path, default=HOLDOUT, help="labelled set (default: held-out)")
    parser.add_argument("--min-macro-f1", type=float, default=0.0)
    args = parser.parse_args(argv)
    result = evaluate(args.model, args.out, args.nlu)
    report = result["report"]
    macro = report["macro avg"]["f1-score"]
    print(f"examples: {report['macro avg']['support']} ({args.nlu.name})")
    print(f"accuracy: {report['accuracy']:.3f}")
    print(f"macro-F1: {macro:.3f}")
    intents = {k: v for k, v in report.items() if isinstance(v, dict) and "confused_with" in v}
    print("weakest intents (F1):")
    for name, values in sorted(intents.items(), key=lambda kv: kv[1]["f1-score"])[:8]:
        print(f"  {values['f1-score']:.3f}  {name}")
    print("most frequent confusions (true -> predicted: count):")
    for (true, predicted), n in result["confusions"].most_common(12):
        print(f"  {true} -> {predicted}: {n}")
    return 0 if macro >= args.min_macro_f1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
