"""Start the whole assistant on this machine: action server, Rasa, web demo, notifier, retention, console.

`make run` calls this after installing, migrating and training. Addresses and ports come
from settings (`RASA_HOST`/`RASA_PORT`, `ACTIONS_HOST`/`ACTIONS_PORT`, `WEB_HOST`/`WEB_PORT`,
`CONSOLE_HOST`/`CONSOLE_PORT`; 127.0.0.1 by default; the command-line options override the
ports). Rasa's HTTP API is only enabled with an auth token: RASA_AUTH_TOKEN, or in
development a random token kept in var/rasa-auth-token (never committed); it reaches Rasa
through the environment (bot.rasa_server), never the command line. Rasa and the action
server share ACTION_SERVER_SECRET (development: var/action-server-secret, see
bot/action_auth.py); Rasa finds the action server at ACTION_SERVER_URL (endpoints.yml),
which this sets from the actions address. Channels: credentials.yml, as for a plain
`rasa run` (bot/channels/enabled.py). Ctrl-C stops all processes together.

This process only supervises: it imports nothing heavy (no Rasa, TensorFlow, spaCy or
database engine). The start-up checks (settings, profile, knowledge base, records spooled
during an outage) run in a child process, `python -m bot.run --checks`, before anything
else starts.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from bot.action_auth import action_server_secret
from bot.rasa_server import api_token
from bot.settings import PROJECT_ROOT, Settings, get_settings

ANY_ADDRESS = {"0.0.0.0", "::", ""}  # noqa: S104 - names of the wildcard addresses


def latest_model() -> Path:
    """The newest trained model in Rasa's default `models/` folder."""
    models = sorted((PROJECT_ROOT / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise SystemExit("no trained model in models/: run `make train` first")
    return models[-1]


def local_url(host: str, port: int, path: str = "") -> str:
    """The URL a process on this machine uses to reach `host:port` (wildcards: loopback)."""
    host = "127.0.0.1" if host in ANY_ADDRESS else host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def console_address(settings: Settings, port: Optional[int] = None) -> tuple[str, int]:
    """Where the staff console binds (CONSOLE_HOST / CONSOLE_PORT, or --console-port)."""
    return settings.console_host, port or settings.console_port


def commands(settings: Settings, rasa_port: int, actions_port: int, web_port: int,
             credentials: Path = PROJECT_ROOT / "credentials.yml",
             console_port: Optional[int] = None) -> Dict[str, List[str]]:
    """The processes to start, by name; no secret appears on any command line."""
    bin_dir = Path(sys.executable).parent
    cmds = {
        "actions": [str(bin_dir / "rasa"), "run", "actions", "--actions", "actions",
                    "-p", str(actions_port)],
        "rasa": [sys.executable, "-m", "bot.rasa_server", "run", "--enable-api",
                 "-i", settings.rasa_host, "-p", str(rasa_port),
                 "--model", str(latest_model()), "--credentials", str(credentials),
                 "--endpoints", str(PROJECT_ROOT / "endpoints.yml"),
                 "--cors", *settings.allowed_origins],
        "web": [sys.executable, "-m", "bot.web.serve", "--host", settings.web_host,
                "--port", str(web_port), "--rasa-url", local_url(settings.rasa_host, rasa_port)],
        "notifier": [sys.executable, "-m", "bot.notify.outbox", "--every", "60"],
        "retention": [sys.executable, "-m", "bot.storage.retention", "purge", "--every", "86400"],
    }
    host, port = console_address(settings, console_port)
    cmds["console"] = [sys.executable, "-m", "bot.console", "serve", "--host", host,
                       "--port", str(port)]
    return cmds


def environment(settings: Settings, actions_port: Optional[int] = None) -> Dict[str, str]:
    """Environment of the child processes: bind address, secrets, action server URL, limits."""
    port = actions_port or settings.actions_port
    return dict(
        os.environ,
        SANIC_HOST=settings.actions_host,  # what `rasa run actions` binds
        ACTION_SERVER_SECRET=action_server_secret(settings),  # endpoints.yml sends it
        ACTION_SERVER_URL=local_url(settings.actions_host, port, "/webhook"),  # endpoints.yml
        RASA_AUTH_TOKEN=api_token(settings),  # bot.rasa_server adds it inside Rasa's process
        SANIC_REQUEST_MAX_SIZE=str(settings.request_max_bytes),
    )


def store_spooled_records() -> None:
    """Store records kept during an earlier outage before anything else starts."""
    from bot.records import flush_spool

    try:
        saved = flush_spool()
    except Exception as exc:  # noqa: BLE001 - the action server's timer retries
        print(f"spooled records not stored yet ({type(exc).__name__}); retried later", file=sys.stderr)
        return
    if saved:
        print(f"stored {saved} record(s) kept during an earlier database outage", flush=True)


def start_up_checks() -> int:
    """Settings, profile and knowledge base valid; spooled records stored (in a child)."""
    from bot.check import main as check

    if check() != 0:
        return 1
    store_spooled_records()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Start everything and wait; stop everything when one exits or on Ctrl-C."""
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rasa-port", type=int, default=settings.rasa_port)
    parser.add_argument("--actions-port", type=int, default=settings.actions_port)
    parser.add_argument("--web-port", type=int, default=settings.web_port)
    parser.add_argument("--console-port", type=int, default=None)
    parser.add_argument("--checks", action="store_true",
                        help="only run the start-up checks (what the supervisor runs first)")
    args = parser.parse_args(argv)
    if args.checks:
        return start_up_checks()

    env = environment(settings, args.actions_port)
    checks = subprocess.run([sys.executable, "-m", "bot.run", "--checks"], cwd=PROJECT_ROOT, env=env)
    if checks.returncode != 0:
        return 1
    procs: Dict[str, subprocess.Popen[bytes]] = {}
    cmds = commands(settings, args.rasa_port, args.actions_port, args.web_port,
                    console_port=args.console_port)
    for name, cmd in cmds.items():
        procs[name] = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env)
    console = (
        f", staff console at {local_url(*console_address(settings, args.console_port))}/ "
        "(first admin: python -m bot.console create-user --role admin ...)"
    )
    print(
        f"\nAssistant starting: chat at {local_url(settings.web_host, args.web_port)}/ (demo clinic "
        f"page), Rasa at {local_url(settings.rasa_host, args.rasa_port)}, actions at "
        f"{local_url(settings.actions_host, args.actions_port)}{console}. Ctrl-C stops.\n",
        flush=True,
    )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping", file=sys.stderr)
                code = proc.returncode or 1
                stopping = True
        time.sleep(0.5)
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
