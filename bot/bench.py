"""Benchmarks: how fast a patient gets an answer, and how much memory the bot needs.

Measures on this machine (`make bench`), not in tests: the red-flag detector per message,
a full NLU parse with the trained model, a knowledge-base answer, and the resident memory
of a process holding the loaded model.

    python -m bot.bench [--model models/clinic.tar.gz] [--repeat 200]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from bot.settings import PROJECT_ROOT

MESSAGES = [
    "what is sciatica",
    "my knee hurts when i climb stairs, what could it be?",
    "can i get a cortisone shot for my back",
    "i cant control my bladder and my back is killing me",
    "no numbness, no fever, just a sore lower back after gardening all weekend",
    "hi",
    "book appointment pls",
]


def timed(fn: Callable[[], object], repeat: int) -> List[float]:
    """Wall-clock milliseconds of `repeat` calls."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def report(name: str, samples: List[float]) -> None:
    """One line: median and 95th percentile."""
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    print(f"{name:<34} p50 {statistics.median(ordered):8.2f} ms   p95 {p95:8.2f} ms   n={len(ordered)}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run every benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=PROJECT_ROOT / "models" / "clinic.tar.gz")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)

    from bot.knowledge_base import get_knowledge_base
    from bot.safety import get_detector

    detector = get_detector()
    cycle = iter(MESSAGES * args.repeat)
    report("safety rules (per message)", timed(lambda: detector.detect(next(cycle)), args.repeat))
    long_message = "my knee hurts at night and my back aches when i sit, " * 380
    report("safety rules (20,000-character message)", timed(lambda: detector.detect(long_message), 20))
    kb = get_knowledge_base()
    report("knowledge-base answer", timed(lambda: kb.answer("injections", "knee"), args.repeat))

    import logging

    from rasa.core.agent import load_agent
    from rasa.utils.log_utils import configure_structlog

    logging.getLogger("rasa").setLevel(logging.WARNING)
    configure_structlog(logging.WARNING)

    start = time.perf_counter()
    agent = asyncio.run(load_agent(model_path=str(args.model)))
    print(f"{'model load':<34} {time.perf_counter() - start:8.2f} s")
    loop = asyncio.new_event_loop()
    cycle = iter(MESSAGES * args.repeat)
    samples = timed(lambda: loop.run_until_complete(agent.parse_message(next(cycle))), args.repeat)
    report("NLU parse (trained model)", samples)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'peak RSS with model loaded':<34} {rss_mb:8.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
