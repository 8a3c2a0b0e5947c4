"""Start the whole assistant on this machine: action server, Rasa, web demo, notifier, console.

`make run` calls this after installing, migrating and training. The addresses come from
settings (`RASA_HOST`, `ACTIONS_HOST`, `WEB_HOST`, all 127.0.0.1 by default). Rasa's HTTP
API is only enabled with an auth token: RASA_AUTH_TOKEN, or in development a random token
kept in var/rasa-auth-token (never committed). Rasa and the action server share
ACTION_SERVER_SECRET (development: var/action-server-secret, see bot/action_auth.py).
Ctrl-C stops all processes together.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from bot.action_auth import action_server_secret
from bot.settings import PROJECT_ROOT, Settings, get_settings


def auth_token(settings: Settings) -> str:
    """The HTTP API token: from the environment, or a generated development one."""
    if settings.rasa_auth_token:
        return settings.rasa_auth_token
    path = settings.data_dir / "rasa-auth-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def latest_model() -> Path:
    """The newest trained model in Rasa's default `models/` folder."""
    models = sorted((PROJECT_ROOT / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise SystemExit("no trained model in models/: run `make train` first")
    return models[-1]


def commands(settings: Settings, rasa_port: int, actions_port: int, web_port: int,
             credentials: Path) -> Dict[str, List[str]]:
    """The processes to start, by name."""
    bin_dir = Path(sys.executable).parent
    return {
        "actions": [str(bin_dir / "rasa"), "run", "actions", "--actions", "actions",
                    "-p", str(actions_port)],
        "rasa": [str(bin_dir / "rasa"), "run", "--enable-api", "--auth-token",
                 auth_token(settings), "-i", settings.rasa_host, "-p", str(rasa_port),
                 "--model", str(latest_model()), "--credentials", str(credentials),
                 "--endpoints", str(PROJECT_ROOT / "endpoints.yml"),
                 "--cors", *settings.allowed_origins],
        "web": [sys.executable, "-m", "bot.web.serve", "--host", settings.web_host,
                "--port", str(web_port), "--rasa-url", f"http://{settings.rasa_host}:{rasa_port}"],
        "notifier": [sys.executable, "-m", "bot.notify.outbox", "--every", "60"],
        "console": [sys.executable, "-m", "bot.console", "serve", "--host", settings.console_host,
                    "--port", str(settings.console_port)],
    }


def environment(settings: Settings) -> Dict[str, str]:
    """Environment of the child processes: bind address, shared secret, request size limit."""
    return dict(
        os.environ,
        SANIC_HOST=settings.actions_host,  # what `rasa run actions` binds
        ACTION_SERVER_SECRET=action_server_secret(settings),  # endpoints.yml sends it
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Start everything and wait; stop everything when one exits or on Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rasa-port", type=int, default=5005)
    parser.add_argument("--actions-port", type=int, default=5055)
    parser.add_argument("--web-port", type=int, default=8080)
    args = parser.parse_args(argv)
    settings = get_settings()
    from bot.channels.enabled import write_credentials
    from bot.check import main as check

    if check() != 0:
        return 1
    store_spooled_records()

    credentials = write_credentials(settings.data_dir / "credentials.yml")
    env = environment(settings)
    procs: Dict[str, subprocess.Popen[bytes]] = {}
    for name, cmd in commands(settings, args.rasa_port, args.actions_port, args.web_port,
                              credentials).items():
        procs[name] = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env)
    print(
        f"\nAssistant starting: chat at http://{settings.web_host}:{args.web_port}/ (demo clinic "
        f"page), Rasa at http://{settings.rasa_host}:{args.rasa_port}, actions at "
        f"http://{settings.actions_host}:{args.actions_port}, staff console at "
        f"http://{settings.console_host}:{settings.console_port}/ (first admin: python -m "
        f"bot.console create-user --role admin ...). Ctrl-C stops.\n",
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
