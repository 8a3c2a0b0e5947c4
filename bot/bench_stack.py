"""The assistant side by side with Rasa's own `rasa init` bot, both started in the same run.

A figure measured alone on a 2-core machine moves with whatever else runs; the ratio to a
reference measured in the same minutes holds. This starts our stack (action server + `rasa
run` with the project's tracker store, SQLite or `--postgres`) and the `rasa init` assistant
(its default config, in-memory tracker store), then, alternating between the two:

- per-message latency p50/p95/p99 over REST at 1, 20 and 50 concurrent conversations, and
  throughput; errors are counted, not hidden;
- per-message latency of 20 conversations at once, each sending a message every 3 s (a
  patient reads and types in between: the closed loop above measures a saturated queue);
- latency at turns 1-10 against turns 91-100 of one 100-turn conversation;
- start-up time (process start to the first answered message) and the RSS of each process;
- with `--training`: cold training (empty Rasa cache) and warm (cache filled, nothing changed);
- with `--nlu`: 5-fold cross-validated macro-F1 of our pipeline and Rasa's default pipeline on
  our training data, and both on the held-out split.

It writes `bench/results/<date>.json` and prints a table (`make bench`).

    python -m bot.bench_stack [--rounds 2] [--postgres URL] [--training] [--nlu]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import aiohttp

from bot.settings import PROJECT_ROOT
from bot.train import rasa_command, training_env

BIN = Path(sys.executable).parent
RESULTS = PROJECT_ROOT / "bench" / "results"
REFERENCE_DIR = PROJECT_ROOT / "var" / "bench" / "rasa-init"
OURS_MESSAGES = [
    "hi", "what is sciatica", "my knee hurts when i climb stairs, why?", "what about injections?",
    "tell me more", "is physiotherapy better than surgery", "how can i prevent back pain",
    "what is prp", "thanks", "bye",
]
# in the order of `rasa init`'s stories and rules, so each message gets a reply (an unanswered
# "no" out of context counts as an error and leaves the turn out of the latency samples); the
# moods are its own training examples: its small NLU reads "i am feeling sad" as mood_great
REFERENCE_MESSAGES = [
    "hi", "I am sad", "no", "are you a bot?", "hello there", "I am great",
    "good morning", "very sad", "yes", "bye",
]
CONCURRENCY = (1, 20, 50)
PACED_CONVERSATIONS = 20
PACED_INTERVAL_SECONDS = 3.0  # a message every 3 s per patient: faster than anyone types on a phone


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, StopIteration):
            continue
    return round(total / 1024, 1)


def percentile(samples: List[float], q: float) -> float:
    """The q-quantile (nearest rank) of `samples`, in ms."""
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))], 1)


@dataclass
class Bot:
    """One running assistant: its processes and where its REST channel listens."""

    name: str
    url: str
    messages: List[str]
    procs: Dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started_seconds: float = 0.0

    def stop(self) -> None:
        """Terminate every process of this bot."""
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    def rss(self) -> Dict[str, float]:
        """RSS per process and in total, in MB."""
        figures = {name: rss_mb(proc.pid) for name, proc in self.procs.items()}
        return {**figures, "total": round(sum(figures.values()), 1)}


async def send(session: aiohttp.ClientSession, url: str, sender: str, text: str) -> Optional[float]:
    """One message; its latency in ms, or None when it got no answer."""
    start = time.perf_counter()
    try:
        async with session.post(url, json={"sender": sender, "message": text}) as response:
            body = await response.json(content_type=None)
            if response.status != 200 or not body:
                return None
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return None
    return (time.perf_counter() - start) * 1000


async def load(bot: Bot, concurrent: int, per_conversation: int) -> Dict[str, Any]:
    """`concurrent` conversations of `per_conversation` messages each, all at once."""
    samples: List[float] = []
    errors = 0
    url = f"{bot.url}/webhooks/rest/webhook"
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:

        async def conversation() -> None:
            nonlocal errors
            sender = f"bench-{uuid.uuid4().hex[:12]}"
            for i in range(per_conversation):
                latency = await send(session, url, sender, bot.messages[i % len(bot.messages)])
                if latency is None:
                    errors += 1
                else:
                    samples.append(latency)

        start = time.perf_counter()
        await asyncio.gather(*(conversation() for _ in range(concurrent)))
        seconds = time.perf_counter() - start
    return {"samples": samples, "errors": errors, "seconds": seconds}


async def paced(bot: Bot, conversations: int, per_conversation: int, interval: float) -> Dict[str, Any]:
    """`conversations` patients at once, each sending a message every `interval` seconds.

    The closed loop of `load` sends the next message the moment an answer arrives, so its
    latency is the queue of a saturated server; real patients read and type in between.
    Starts are spread over one interval, as patients do not all press send together.
    """
    samples: List[float] = []
    errors = 0
    url = f"{bot.url}/webhooks/rest/webhook"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120),
                                     connector=aiohttp.TCPConnector(limit=0)) as session:

        async def conversation(index: int) -> None:
            nonlocal errors
            sender = f"bench-paced-{uuid.uuid4().hex[:12]}"
            await asyncio.sleep(interval * index / conversations)
            for i in range(per_conversation):
                started = time.perf_counter()
                latency = await send(session, url, sender, bot.messages[i % len(bot.messages)])
                if latency is None:
                    errors += 1
                else:
                    samples.append(latency)
                await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))

        start = time.perf_counter()
        await asyncio.gather(*(conversation(i) for i in range(conversations)))
        seconds = time.perf_counter() - start
    return {"samples": samples, "errors": errors, "seconds": seconds}


async def long_conversation(bot: Bot, turns: int = 100) -> List[Optional[float]]:
    """One conversation of `turns` messages; the latency of each turn."""
    url = f"{bot.url}/webhooks/rest/webhook"
    sender = f"bench-long-{uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        return [await send(session, url, sender, bot.messages[i % len(bot.messages)]) for i in range(turns)]


def wait_answering(bot: Bot, start: float, timeout: float = 300) -> float:
    """Seconds from `start` until the bot answers a first message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in bot.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{bot.name}: {name} exited with {proc.returncode}")
        if asyncio.run(long_conversation(bot, turns=1))[0] is not None:
            return round(time.perf_counter() - start, 1)
        time.sleep(0.5)
    raise RuntimeError(f"{bot.name} did not answer within {timeout} s")


def start_ours(work: Path, model: Path, database_url: Optional[str],
               credentials: str = "bot.channels.rest.RestInput:\n") -> Bot:
    """Action server + `rasa run` with the project's endpoints and the REST channel (or `credentials`)."""
    actions_port, rasa_port = free_port(), free_port()
    url = database_url or f"sqlite:///{work / 'clinic.db'}"
    env = dict(
        os.environ, DATABASE_URL=url, BOT_DATA_DIR=str(work), SANIC_HOST="127.0.0.1",
        ACTION_SERVER_SECRET=uuid.uuid4().hex, RASA_TELEMETRY_ENABLED="false",
        ACTION_SERVER_URL=f"http://127.0.0.1:{actions_port}/webhook",
    )
    subprocess.run([sys.executable, "-m", "bot.storage.migrate"], cwd=PROJECT_ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    credentials_file = work / "credentials.yml"
    credentials_file.write_text(credentials, encoding="utf-8")
    bot = Bot("ours", f"http://127.0.0.1:{rasa_port}", OURS_MESSAGES)
    start = time.perf_counter()
    logs = {name: (work / f"{name}.log").open("wb") for name in ("actions", "rasa")}
    bot.procs["actions"] = subprocess.Popen(
        [str(BIN / "rasa"), "run", "actions", "--actions", "actions", "-p", str(actions_port)],
        cwd=PROJECT_ROOT, env=env, stdout=logs["actions"], stderr=subprocess.STDOUT)
    bot.procs["rasa"] = subprocess.Popen(
        [str(BIN / "rasa"), "run", "-i", "127.0.0.1", "-p", str(rasa_port), "--model", str(model),
         "--endpoints", str(PROJECT_ROOT / "endpoints.yml"), "--credentials", str(credentials_file)],
        cwd=PROJECT_ROOT, env=env, stdout=logs["rasa"], stderr=subprocess.STDOUT)
    bot.started_seconds = wait_answering(bot, start)
    return bot


def reference_project(folder: Path = REFERENCE_DIR) -> Dict[str, Any]:
    """`rasa init` once (it trains its model); later runs reuse the folder."""
    if (folder / "models").is_dir() and any((folder / "models").glob("*.tar.gz")):
        return {"trained_now": False}
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    subprocess.run([str(BIN / "rasa"), "init", "--no-prompt", "--init-dir", str(folder)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {"trained_now": True, "init_seconds": round(time.perf_counter() - start, 1)}


def start_reference(work: Path, folder: Path = REFERENCE_DIR) -> Bot:
    """The `rasa init` assistant as `rasa run` serves it: default config, in-memory store."""
    port = free_port()
    bot = Bot("rasa_init", f"http://127.0.0.1:{port}", REFERENCE_MESSAGES)
    start = time.perf_counter()
    bot.procs["rasa"] = subprocess.Popen(
        [str(BIN / "rasa"), "run", "-i", "127.0.0.1", "-p", str(port), "--model", str(folder / "models")],
        cwd=folder, env=dict(os.environ, RASA_TELEMETRY_ENABLED="false"),
        stdout=(work / "rasa-init.log").open("wb"), stderr=subprocess.STDOUT)
    bot.started_seconds = wait_answering(bot, start)
    return bot


def latency_figures(bots: List[Bot], rounds: int) -> Dict[str, Any]:
    """Alternating load rounds at each concurrency; the long conversation of each bot."""
    figures: Dict[str, Any] = {bot.name: {} for bot in bots}
    for concurrent in CONCURRENCY:
        per_conversation = 30 if concurrent == 1 else 10
        merged: Dict[str, Dict[str, Any]] = {b.name: {"samples": [], "errors": 0, "seconds": 0.0} for b in bots}
        for round_number in range(rounds):
            order = bots if round_number % 2 == 0 else list(reversed(bots))
            for bot in order:
                result = asyncio.run(load(bot, concurrent, per_conversation))
                merged[bot.name]["samples"] += result["samples"]
                merged[bot.name]["errors"] += result["errors"]
                merged[bot.name]["seconds"] += result["seconds"]
        for name, result in merged.items():
            samples = result["samples"] or [float("nan")]
            figures[name][f"concurrent_{concurrent}"] = {
                "p50_ms": percentile(samples, 0.50), "p95_ms": percentile(samples, 0.95),
                "p99_ms": percentile(samples, 0.99), "messages": len(result["samples"]),
                "errors": result["errors"],
                "messages_per_second": round(len(result["samples"]) / result["seconds"], 1),
            }
    for round_number in range(rounds):
        for bot in (bots if round_number % 2 == 0 else list(reversed(bots))):
            result = asyncio.run(paced(bot, PACED_CONVERSATIONS, 10, PACED_INTERVAL_SECONDS))
            figure = figures[bot.name].setdefault("paced_20", {"samples": [], "errors": 0})
            figure["samples"] += result["samples"]
            figure["errors"] += result["errors"]
    for bot in bots:
        figure = figures[bot.name].pop("paced_20")
        samples = figure["samples"] or [float("nan")]
        figures[bot.name]["paced_20"] = {
            "p50_ms": percentile(samples, 0.50), "p95_ms": percentile(samples, 0.95),
            "p99_ms": percentile(samples, 0.99), "messages": len(figure["samples"]), "errors": figure["errors"],
        }
    for bot in bots:
        turns = asyncio.run(long_conversation(bot))
        first = [t for t in turns[:10] if t is not None]
        last = [t for t in turns[-10:] if t is not None]
        figures[bot.name]["turns_1_10_p50_ms"] = percentile(first, 0.5) if first else None
        figures[bot.name]["turns_91_100_p50_ms"] = percentile(last, 0.5) if last else None
        figures[bot.name]["long_conversation_errors"] = sum(1 for t in turns if t is None)
    return figures


def training_figures(work: Path) -> Dict[str, Any]:
    """Cold (empty cache) and warm (cache filled, nothing changed) training of both bots."""
    figures: Dict[str, Any] = {}
    for name, cwd, command in (
        ("ours", PROJECT_ROOT, [sys.executable, "-m", "bot.train", "--out", str(work / "ours-models")]),
        ("rasa_init", REFERENCE_DIR, [str(BIN / "rasa"), "train", "--out", str(work / "ref-models")]),
    ):
        env = dict(training_env(), RASA_CACHE_DIRECTORY=str(work / f"{name}-cache"))
        times = []
        for _ in ("cold", "warm"):
            start = time.perf_counter()
            subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            times.append(round(time.perf_counter() - start, 1))
        figures[name] = {"cold_seconds": times[0], "warm_seconds": times[1]}
    return figures


def macro_f1(out: Path) -> float:
    """Macro-F1 from a `rasa test nlu` intent report."""
    report = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    return round(float(report["macro avg"]["f1-score"]), 3)


def nlu_figures(work: Path) -> Dict[str, Any]:
    """5-fold cross-validation and held-out macro-F1, our pipeline against Rasa's default."""
    figures: Dict[str, Any] = {}
    data, holdout = PROJECT_ROOT / "data" / "nlu", PROJECT_ROOT / "tests" / "nlu" / "holdout.yml"
    for name, config in (("ours", PROJECT_ROOT / "config.yml"), ("rasa_init", REFERENCE_DIR / "config.yml")):
        out = work / f"cv-{name}"
        subprocess.run(rasa_command(["test", "nlu", "--nlu", str(data), "--config", str(config),
                                     "--cross-validation", "--folds", "5", "--out", str(out)]),
                       cwd=PROJECT_ROOT, env=training_env(), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        model_dir = work / f"nlu-{name}"
        subprocess.run(rasa_command(["train", "nlu", "--nlu", str(data), "--config", str(config),
                                     "--out", str(model_dir), "--fixed-model-name", name]),
                       cwd=PROJECT_ROOT, env=training_env(), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        held = work / f"holdout-{name}"
        subprocess.run(rasa_command(["test", "nlu", "--model", str(model_dir / f"{name}.tar.gz"),
                                     "--nlu", str(holdout), "--out", str(held)]),
                       cwd=PROJECT_ROOT, env=training_env(), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        figures[name] = {"cv5_macro_f1": macro_f1(out), "holdout_macro_f1": macro_f1(held)}
    return figures


def print_table(result: Dict[str, Any]) -> None:
    """The side-by-side table (the README's "Measured" section copies it)."""
    ours, ref = result["latency"]["ours"], result["latency"]["rasa_init"]
    print(f"\n{'figure':<44}{'ours':>12}{'rasa init':>12}{'ratio':>8}")

    def row(label: str, a: Optional[float], b: Optional[float]) -> None:
        ratio = f"{a / b:.2f}" if a is not None and b else "-"
        print(f"{label:<44}{a if a is not None else '-':>12}{b if b is not None else '-':>12}{ratio:>8}")

    for concurrent in CONCURRENCY:
        key = f"concurrent_{concurrent}"
        for figure in ("p50_ms", "p95_ms", "p99_ms", "messages_per_second", "errors"):
            row(f"{concurrent} concurrent: {figure}", ours[key][figure], ref[key][figure])
    for figure in ("p50_ms", "p95_ms", "p99_ms", "errors"):
        row(f"20 paced (a message / 3 s each): {figure}", ours["paced_20"][figure], ref["paced_20"][figure])
    row("long conversation: turns 1-10 p50 ms", ours["turns_1_10_p50_ms"], ref["turns_1_10_p50_ms"])
    row("long conversation: turns 91-100 p50 ms", ours["turns_91_100_p50_ms"], ref["turns_91_100_p50_ms"])
    row("start-up s (start to first answer)", result["startup_seconds"]["ours"],
        result["startup_seconds"]["rasa_init"])
    for name in sorted(set(result["rss_mb"]["ours"]) | set(result["rss_mb"]["rasa_init"])):
        row(f"RSS MB: {name}", result["rss_mb"]["ours"].get(name), result["rss_mb"]["rasa_init"].get(name))
    for name in ("training", "nlu"):
        figures: Dict[str, Dict[str, float]] = result.get(name) or {}
        for figure in sorted(figures.get("ours", {})):
            row(f"{name}: {figure}", figures["ours"][figure], figures["rasa_init"][figure])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Start both bots, measure them alternately, write the JSON and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=PROJECT_ROOT / "models" / "clinic.tar.gz")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per concurrency")
    parser.add_argument("--postgres", help="our tracker store on this PostgreSQL URL (default SQLite)")
    parser.add_argument("--training", action="store_true", help="also cold and warm training")
    parser.add_argument("--nlu", action="store_true", help="also 5-fold CV and held-out macro-F1")
    args = parser.parse_args(argv)
    result: Dict[str, Any] = {
        "date": datetime.date.today().isoformat(), "machine": {"cpus": os.cpu_count()},
        "tracker_store": "postgresql" if args.postgres else "sqlite",
        "reference": reference_project(),
    }
    work = Path(tempfile.mkdtemp(prefix="clinic-bench-"))
    bots: List[Bot] = []
    try:
        bots = [start_reference(work), start_ours(work, args.model, args.postgres)]
        result["startup_seconds"] = {bot.name: bot.started_seconds for bot in bots}
        result["latency"] = latency_figures(bots, args.rounds)
        result["rss_mb"] = {bot.name: bot.rss() for bot in bots}
    finally:
        for bot in bots:
            bot.stop()
    if args.training:
        result["training"] = training_figures(work)
    if args.nlu:
        result["nlu"] = nlu_figures(work)
    shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{result['date']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(result)
    print(f"\nwritten to {path.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
