"""Shared fixtures: the trained model, real Rasa + action servers, databases, trackers.

The model is trained once (`make test` trains before pytest; this only trains if no
model exists) and reused by every test. `rasa_stack` starts a real action server and a
real `rasa run` on free loopback ports with their own database, so end-to-end tests talk
HTTP to the real thing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import requests
import sqlalchemy as sa

from tests.standins.database_link import DatabaseLink

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL = ROOT / "models" / "clinic.tar.gz"
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 120.0, proc: Optional[subprocess.Popen[bytes]] = None) -> None:
    """Wait until `url` answers (any status), or fail with the process's output."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not come up in {timeout} s")


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The trained model (trained here only if `make train` has not made one)."""
    if not MODEL.exists():
        subprocess.run(
            [str(BIN / "python"), "-m", "bot.train", "--fixed-model-name", "clinic"],
            cwd=ROOT, check=True,
        )
    return MODEL


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for one test."""
    return f"sqlite:///{tmp_path / 'clinic.db'}"


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema on the local server for one test, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs on SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'clinic.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


@dataclass
class RasaStack:
    """A running action server + Rasa server pair."""

    rasa_url: str
    actions_url: str
    database_url: str
    data_dir: Path
    env: Dict[str, str]
    token: str
    procs: Dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: Dict[str, Path] = field(default_factory=dict)
    commands: Dict[str, List[str]] = field(default_factory=dict)

    def say(self, sender: str, text: str, metadata: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
        """Send a message through the REST channel and return the bot's replies."""
        body: Dict[str, Any] = {"sender": sender, "message": text}
        if metadata:
            body["metadata"] = metadata
        response = requests.post(f"{self.rasa_url}/webhooks/rest/webhook", json=body, timeout=60)
        response.raise_for_status()
        return list(response.json())

    def tracker(self, sender: str) -> Dict[str, Any]:
        """The conversation as Rasa's HTTP API shows it (auth token required)."""
        response = requests.get(
            f"{self.rasa_url}/conversations/{sender}/tracker",
            params={"token": self.token},
            timeout=30,
        )
        response.raise_for_status()
        return dict(response.json())

    def stop(self, name: str) -> None:
        """Stop one process (e.g. the action server, to test its absence)."""
        proc = self.procs.get(name)
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    def launch(self, name: str) -> None:
        """Start one process (again) with its command, environment and log (appended)."""
        self.procs[name] = subprocess.Popen(
            self.commands[name], cwd=ROOT, env=self.env, stdout=self.logs[name].open("ab"),
            stderr=subprocess.STDOUT,
        )

    def wait_for_model(self, timeout: float = 300.0) -> None:
        """Until the Rasa server answers with its model loaded."""
        wait_http(f"{self.rasa_url}/", timeout=timeout, proc=self.procs["rasa"])
        deadline = time.time() + timeout
        while not requests.get(f"{self.rasa_url}/status", params={"token": self.token},
                               timeout=10).json().get("model_file"):
            assert time.time() < deadline, "model not loaded:\n" + self.log("rasa")[-3000:]
            assert self.procs["rasa"].poll() is None, self.log("rasa")[-3000:]
            time.sleep(1)

    def log(self, name: str) -> str:
        """What a process printed so far."""
        return self.logs[name].read_text(encoding="utf-8", errors="replace")


def confirmed_profile(tmp: Path) -> Path:
    """The shipped practice profile with its opening hours confirmed, written under `tmp`.

    Unconfirmed hours are never used to say when staff are in; tests of the wording in and
    out of hours point PRACTICE_PROFILE at this copy.
    """
    import yaml

    from bot.profile import PROFILE_PATH

    profile = yaml.safe_load(PROFILE_PATH.read_text(encoding="utf-8"))
    profile["opening_hours"]["status"] = "confirmed"
    path = tmp / "confirmed_profile.yml"
    path.write_text(yaml.safe_dump(profile), encoding="utf-8")
    return path


def start_stack(
    tmp: Path,
    model: Path,
    database_url: Optional[str] = None,
    extra_env: Optional[Dict[str, str]] = None,
    credentials: Optional[str] = None,
    action_url: Optional[str] = None,
    extra_endpoints: str = "",
) -> RasaStack:
    """Start an action server and a Rasa server on free ports, with their own data dir.

    `action_url` points Rasa at another action endpoint than its own action server (a
    proxy in front of several); `extra_endpoints` is appended to its endpoints.yml (e.g. a
    `lock_store:` section). `extra_env` may override the defaults set here.
    """
    from bot.storage.migrate import upgrade

    data_dir = tmp / "var"
    data_dir.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite:///{data_dir / 'clinic.db'}"
    upgrade(url)
    actions_port, rasa_port = free_port(), free_port()
    token = uuid.uuid4().hex
    # as `bot.run` keeps it in development: the socket.io presence route checks it
    (data_dir / "rasa-auth-token").write_text(token, encoding="utf-8")
    env = dict(
        os.environ,
        ACTION_SERVER_SECRET=uuid.uuid4().hex,
        DATABASE_URL=url,
        BOT_DATA_DIR=str(data_dir),
        SANIC_HOST="127.0.0.1",
        RASA_TELEMETRY_ENABLED="false",
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    env.update(extra_env or {})
    action_url = action_url or f"http://127.0.0.1:{actions_port}/webhook"
    endpoints = tmp / "endpoints.yml"
    endpoints.write_text(
        f'action_endpoint:\n  url: "{action_url}"\n'
        "  headers:\n    X-Action-Secret: ${ACTION_SERVER_SECRET}\n"
        "tracker_store:\n  type: bot.tracker_store.ClinicTrackerStore\n" + extra_endpoints,
        encoding="utf-8",
    )
    creds = tmp / "credentials.yml"
    creds.write_text(credentials or "bot.channels.rest.RestInput:\n", encoding="utf-8")
    stack = RasaStack(
        rasa_url=f"http://127.0.0.1:{rasa_port}",
        actions_url=f"http://127.0.0.1:{actions_port}",
        database_url=url,
        data_dir=data_dir,
        env=env,
        token=token,
    )
    commands = {
        "actions": [str(BIN / "rasa"), "run", "actions", "--actions", "actions", "-p", str(actions_port)],
        "rasa": [
            str(BIN / "rasa"), "run", "--enable-api", "--auth-token", token, "-i", "127.0.0.1",
            "-p", str(rasa_port), "--model", str(model), "--endpoints", str(endpoints),
            "--credentials", str(creds),
        ],
    }
    for name, command in commands.items():
        stack.logs[name] = tmp / f"{name}.log"
        stack.commands[name] = command
        stack.launch(name)
    try:
        wait_http(f"{stack.actions_url}/health", proc=stack.procs["actions"])
        wait_http(f"{stack.rasa_url}/", timeout=240, proc=stack.procs["rasa"])
        deadline = time.time() + 120
        while time.time() < deadline:
            status = requests.get(f"{stack.rasa_url}/status", params={"token": token}, timeout=5)
            if status.ok and status.json().get("model_file"):
                break
            time.sleep(1)
    except Exception as exc:
        for name in stack.procs:
            stack.stop(name)
        output = stack.log("rasa")[-3000:] + stack.log("actions")[-2000:]
        raise RuntimeError("stack did not start:\n" + output) from exc
    return stack


@pytest.fixture(scope="session")
def rasa_server(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaStack]:
    """One real Rasa + action server for the session (SQLite), shared by e2e tests."""
    stack = start_stack(tmp_path_factory.mktemp("stack"), model_path)
    yield stack
    for name in stack.procs:
        stack.stop(name)


@pytest.fixture()
def rasa_stack_factory(model_path: Path, tmp_path: Path) -> Iterator[Callable[..., RasaStack]]:
    """Start stacks with special settings (another database, a fixed clock...)."""
    stacks: List[RasaStack] = []

    def make(**kwargs: Any) -> RasaStack:
        sub = tmp_path / f"stack{len(stacks)}"
        sub.mkdir()
        stack = start_stack(sub, model_path, **kwargs)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        for name in stack.procs:
            stack.stop(name)


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process code uses a temporary data dir and database, never the developer's."""
    from bot.settings import get_settings
    from bot.storage.database import _databases

    monkeypatch.setattr("bot.settings.ENV_FILE", tmp_path / ".env")  # never the developer's .env
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'clinic.db'}")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    for database in list(_databases.values()):
        database.dispose()
    _databases.clear()


@pytest.fixture()
def link() -> Iterator[DatabaseLink]:
    """A cuttable loopback link to the local PostgreSQL, open at first (outage tests)."""
    relay = DatabaseLink()
    relay.open()
    yield relay
    relay.close()
