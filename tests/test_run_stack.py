"""`python -m bot.run` (what `make run` starts): secrets stay out of the process list.

Starts the real supervisor with every process on free loopback ports (the action server on a
port other than 5055, so Rasa only finds it through ACTION_SERVER_URL), then checks what any
user of the machine could see in `ps` and what the HTTP API answers without the token.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from bot.storage.migrate import upgrade
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def command_lines() -> list[str]:
    """Every process's command line, as `ps` shows it to any user."""
    lines = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return lines


class Stack:
    def __init__(self, tmp: Path, model: Path) -> None:
        self.token = secrets.token_urlsafe(32)
        self.secret = secrets.token_urlsafe(32)
        self.rasa_port, self.actions_port, self.web_port = free_port(), free_port(), free_port()
        url = f"sqlite:///{tmp / 'clinic.db'}"
        upgrade(url)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WHATSAPP_", "TWILIO_"))}
        env.update(BOT_DATA_DIR=str(tmp / "var"), DATABASE_URL=url, RASA_AUTH_TOKEN=self.token,
                   ACTION_SERVER_SECRET=self.secret, RASA_TELEMETRY_ENABLED="false",
                   TF_CPP_MIN_LOG_LEVEL="2", SQLALCHEMY_SILENCE_UBER_WARNING="1")
        env.pop("ACTION_SERVER_URL", None)
        self.log = tmp / "run.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.run", "--rasa-port", str(self.rasa_port),
             "--actions-port", str(self.actions_port), "--web-port", str(self.web_port)],
            cwd=ROOT, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.rasa_port}"
        deadline = time.monotonic() + 400
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bot.run exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            try:
                status = requests.get(f"{self.url}/status", params={"token": self.token}, timeout=3)
                if status.ok and status.json().get("model_file"):
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the stack did not start:\n{self.output()[-3000:]}")
            time.sleep(1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def stack(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("run"), model_path)
    yield running
    running.stop()


def test_no_process_shows_the_api_token_or_the_action_secret(stack: Stack) -> None:
    lines = command_lines()
    assert any("bot.rasa_server run --enable-api" in line for line in lines)  # Rasa is running
    assert not [line for line in lines if stack.token in line]
    assert not [line for line in lines if stack.secret in line]


def test_the_http_api_still_refuses_requests_without_the_token(stack: Stack) -> None:
    assert requests.get(f"{stack.url}/status", timeout=10).status_code == 401
    assert requests.get(f"{stack.url}/conversations/x/tracker", timeout=10).status_code == 401
    wrong = requests.get(f"{stack.url}/status", params={"token": "wrong"}, timeout=10)
    assert wrong.status_code == 401


def test_rasa_finds_the_action_server_on_the_port_given_to_bot_run(stack: Stack) -> None:
    replies = requests.post(f"{stack.url}/webhooks/rest/webhook", timeout=60,
                            json={"sender": "run-stack-1", "message": "what is a hyaluronic acid injection?"})
    assert "lubricate the knee joint" in " ".join(r.get("text", "") for r in replies.json())


def test_the_default_start_logs_which_messaging_channels_are_off(stack: Stack) -> None:
    assert "telegram channel off: set TELEGRAM_ACCESS_TOKEN" in stack.output()
