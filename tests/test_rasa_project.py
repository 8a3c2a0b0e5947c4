"""Rasa's own checks: the data validates, test stories pass, the held-out NLU split scores.

Uses the one trained model (`model_path`) and Rasa's CLI exactly as an engineer would.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bot.train import training_env
from tests.conftest import BIN, ROOT

MIN_MACRO_F1 = 0.93  # measured 0.957-0.974 (README, "NLU quality"); sessions differ by up to 0.01
MIN_UNSEEN_MACRO_F1 = 0.90  # tests/nlu/unseen (written without sight of the data): measured 0.927-0.95


def rasa(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "rasa"), *args], cwd=ROOT, capture_output=True, text=True, timeout=1200,
        env=training_env({"PATH": str(BIN) + ":/usr/bin:/bin", "HOME": str(tmp),
                          "RASA_TELEMETRY_ENABLED": "false", "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}),
    )


def test_training_data_and_domain_validate(tmp_path: Path) -> None:
    result = rasa("data", "validate", "--quiet", tmp=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_end_to_end_test_stories_pass(model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = rasa("test", "core", "--model", str(model_path), "--stories", "tests/stories",
                  "--out", str(out), "--fail-on-prediction-errors", tmp=tmp_path)
    failed = out / "failed_test_stories.yml"
    detail = failed.read_text(encoding="utf-8") if failed.exists() else result.stdout[-3000:]
    assert result.returncode == 0, detail


@pytest.fixture(scope="module")
def holdout_report(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    tmp = tmp_path_factory.mktemp("nlu")
    result = rasa("test", "nlu", "--model", str(model_path), "--nlu", "tests/nlu/holdout.yml",
                  "--out", str(tmp), tmp=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads((tmp / "intent_report.json").read_text(encoding="utf-8")))


def test_held_out_macro_f1_meets_the_target(holdout_report: dict) -> None:  # type: ignore[type-arg]
    assert holdout_report["macro avg"]["f1-score"] >= MIN_MACRO_F1


def test_sentences_written_unseen_are_understood(model_path: Path, tmp_path: Path) -> None:
    """Paraphrases and forum-style questions by a writer who never saw the training data."""
    result = rasa("test", "nlu", "--model", str(model_path), "--nlu", "tests/nlu/unseen",
                  "--out", str(tmp_path), tmp=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "intent_report.json").read_text(encoding="utf-8"))
    assert report["macro avg"]["f1-score"] >= MIN_UNSEEN_MACRO_F1


def test_red_flags_are_never_missed_on_held_out_data(holdout_report: dict) -> None:  # type: ignore[type-arg]
    assert holdout_report["report_red_flag"]["recall"] >= 0.9


def test_holdout_is_never_trained_on() -> None:
    import re

    import yaml

    def sentences(path: Path) -> set[str]:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        found = set()
        for block in data.get("nlu", []):
            for line in str(block.get("examples", "")).splitlines():
                text = re.sub(r"\[([^\]]+)\]\{[^}]*\}|\[([^\]]+)\]\([^)]*\)", lambda m: m.group(1) or m.group(2),
                              line.lstrip("- ").strip())
                found.add(text.lower())
        return found

    training = set().union(*(sentences(p) for p in (ROOT / "data" / "nlu").glob("*.yml")))
    evaluation = sorted((ROOT / "tests" / "nlu").rglob("*.yml"))
    assert len(evaluation) == 5  # holdout, unseen/ and dev/ (paraphrases, forum questions)
    for path in evaluation:
        assert not sentences(path) & training, path
