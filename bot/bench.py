"""Benchmarks: how fast a patient gets an answer, and how much memory the bot needs.

Measures on this machine (`make bench`), not in tests: the red-flag detector per message,
a full NLU parse with the trained model, a knowledge-base answer, the resident memory
of a process holding the loaded model, and the staff console's conversation list and
filters over 100,000 seeded conversation summaries (SQLite and PostgreSQL).

    python -m bot.bench [--model models/clinic.tar.gz] [--repeat 200]
    python -m bot.bench --only console [--conversations 100000] [--postgres URL]
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


def seed_summaries(url: str, count: int, schema: Optional[str] = None) -> None:
    """Fill a fresh database with `count` varied conversation summaries."""
    from datetime import datetime, timedelta

    from bot.storage.database import Database
    from bot.storage.migrate import upgrade
    from bot.storage.models import UTC, ConversationSummary

    upgrade(url, schema=schema)
    db = Database(url, schema=schema)
    topics = ["sciatica", "knee_pain", "opening_hours", "exercises", "posture", "injections",
              "prices", "arthritis", "booking", "mri"]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    table = ConversationSummary.__table__
    with db.engine.begin() as connection:
        for first in range(0, count, 5000):
            rows = []
            for i in range(first, min(count, first + 5000)):
                began = start + timedelta(minutes=4.7 * i)
                rows.append({
                    "conversation_id": f"bench-{i:07d}", "channel": ("socketio", "telegram", "whatsapp")[i % 3],
                    "started_at": began, "last_event_at": began + timedelta(minutes=6),
                    "turns": 2 + i % 9, "events_seen": 12, "topics": ",".join(topics[i % 10:i % 10 + 1 + i % 2]),
                    "red_flag": i % 97 == 0, "crisis": i % 409 == 0, "booking": i % 11 == 0,
                    "handoff": i % 23 == 0, "not_understood": i % 6 == 0, "thumbs_down": i % 31 == 0,
                    "staff_replied": i % 29 == 0, "taken_over": i % 29 == 0, "tags": "",
                    "search_text": f"patient {i} asks about {topics[i % 10]} and pain when walking",
                })
            connection.execute(table.insert(), rows)
    db.dispose()


def console_benchmarks(url: str, label: str, count: int, repeat: int, schema: Optional[str] = None) -> None:
    """p50/p95 of the console's list and filter queries over `count` summaries."""
    from datetime import datetime

    from bot.storage import console as store
    from bot.storage.database import Database
    from bot.storage.models import UTC

    start = time.perf_counter()
    seed_summaries(url, count, schema)
    print(f"{'seed ' + label:<34} {time.perf_counter() - start:8.2f} s  ({count:,} summaries)")
    db = Database(url, schema=schema)
    cases = {
        "list, newest page": (store.ConversationFilter(), 1),
        "list, page 200": (store.ConversationFilter(), 200),
        "filter flag=red_flag": (store.ConversationFilter(flag="red_flag"), 1),
        "filter channel+month": (store.ConversationFilter(
            channel="telegram", since=datetime(2026, 3, 1, tzinfo=UTC),
            until=datetime(2026, 4, 1, tzinfo=UTC)), 1),
        "filter topic=mri": (store.ConversationFilter(topic="mri"), 1),
        "text search": (store.ConversationFilter(text="patient 4242 asks"), 1),
    }
    for name, (filters, page) in cases.items():
        def query(f: store.ConversationFilter = filters, p: int = page) -> object:
            return store.list_conversations(db, f, page=p)

        samples = timed(query, repeat)
        report(f"console {label}: {name}", samples)
    db.dispose()


def console_main(args: argparse.Namespace) -> int:
    """The console benchmarks on SQLite and (when reachable) PostgreSQL."""
    import tempfile
    import uuid

    from sqlalchemy import create_engine, text

    with tempfile.TemporaryDirectory() as folder:
        console_benchmarks(f"sqlite:///{folder}/bench.db", "sqlite", args.conversations, args.console_repeat)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        console_benchmarks(args.postgres, "postgres", args.conversations, args.console_repeat, schema)
    finally:
        engine = create_engine(args.postgres)
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run every benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=PROJECT_ROOT / "models" / "clinic.tar.gz")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--only", choices=["all", "console"], default="all")
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--console-repeat", type=int, default=40)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args(argv)
    if args.only == "console":
        return console_main(args)

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
    return console_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
