"""Two Rasa servers and two action servers behind Debian's nginx, on PostgreSQL and Redis.

The layout of README "More than one Rasa server", run for real on loopback:

* deploy/nginx.conf with both Rasa servers listed in its two upstreams: `clinic_rasa`
  (webhooks, round-robin) and `clinic_rasa_socketio` (the widget, ip_hash);
* each Rasa server on the project's tracker store in one fresh PostgreSQL database and the
  atomic Redis lock store (`bot.lock_store.AtomicRedisLockStore`, one key prefix);
* their action endpoint an internal nginx server on a loopback port, round-robin over the
  two action servers (one upstream, as a deployment with M action servers would have).

Seven patients talk at once through the public REST webhook, each sending the next message
only after reading the reply; three of them book through the form. Their sends are taken in
a fixed rotation (an odd number of patients), so nginx's round-robin hands each patient's
consecutive messages to alternate Rasa servers: every turn reads the conversation the other
server stored. The checks are what a patient or the staff would notice: the stored
conversation holds every message once and in order, each followed by exactly the replies
the patient read; the form asked the right next question every time; each booking is one
row with the reference the patient was given.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import psycopg2
import pytest
import redis
import requests
import sqlalchemy as sa

from bot import load
from tests.conftest import PG_URL, RasaStack, free_port, start_stack
from tests.test_deploy_nginx import CREDENTIALS, NGINX, PUBLIC, proxy_config

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # test certificate
REDIS_URL = "redis://127.0.0.1:6379/13"
SEND_GAP_SECONDS = 0.1  # between two patients' sends: nginx sees them in rotation order
TURN_TIMEOUT_SECONDS = 120.0
DRIVE_TIMEOUT_SECONDS = 600.0
MODEL_LOAD_SECONDS = 300.0

# (message, text the reply must contain or None). Every script has the same length, so the
# rotation keeps its period (the number of patients) to the end.
BOOKING = [*load.BOOKING, ("thank you", None)]
QUESTIONS = [
    [
        ("hello", "automated assistant"),
        ("what exercises help my knee pain", None),
        ("what about my back?", "stabilise the spine"),
        ("what is sciatica", "sciatic nerve"),
        ("what is a hyaluronic acid injection?", "knee joint"),
        ("does bad posture cause back pain", None),
        ("will physio help", None),
        ("what painkillers can i take", None),
        ("will losing weight help my knees", None),
        ("thanks", None),
    ],
    [
        ("what causes lower back and knee pain", None),
        ("what is sciatica", "sciatic nerve"),
        ("can arthritis affect my knees", None),
        ("what are the treatment options", None),
        ("what exercises help my knee pain", None),
        ("what about my back?", "stabilise the spine"),
        ("is a cortisone shot good for back pain", None),
        ("can tight hamstrings cause knee pain", None),
        ("what is a hyaluronic acid injection?", "knee joint"),
        ("thanks", None),
    ],
]
PATIENTS: List[Tuple[str, List[Tuple[str, Optional[str]]]]] = [
    ("booking", BOOKING), ("questions", QUESTIONS[0]), ("booking", BOOKING),
    ("questions", QUESTIONS[1]), ("booking", BOOKING), ("questions", QUESTIONS[0]),
    ("questions", QUESTIONS[1]),
]
NAMES = ["Tan Wei Ming", "Siti Nurhaliza", "Rajesh Kumar"]
PHONES = ["9123 4567", "8234 5678", "9345 6789"]
assert len(PATIENTS) % 2 == 1, "an odd rotation alternates each patient between two servers"
assert len({len(script) for _, script in PATIENTS}) == 1


@dataclass
class Patient:
    """One conversation: what was sent, what came back."""

    sender: str
    kind: str
    script: List[Tuple[str, Optional[str]]]
    name: str = ""
    phone: str = ""
    sent: List[str] = field(default_factory=list)
    replies: List[List[Dict[str, Any]]] = field(default_factory=list)

    @property
    def conversation_id(self) -> str:
        """How the REST channel names it in the tracker store (`bot.channels.sender`)."""
        return f"rest:{self.sender}"


class Rotation:
    """Lets patients send in a fixed order, round after round; any failure stops everyone."""

    def __init__(self, patients: int) -> None:
        self.patients = patients
        self.turn = 0
        self.failed = False
        self.cond = threading.Condition()

    def wait(self, index: int, round_: int) -> None:
        with self.cond:
            mine = round_ * self.patients + index
            if not self.cond.wait_for(lambda: self.failed or self.turn == mine, TURN_TIMEOUT_SECONDS):
                raise TimeoutError(f"patient {index} never got turn {round_}")
            if self.failed:
                raise RuntimeError("another patient failed")

    def advance(self) -> None:
        with self.cond:
            self.turn += 1
            self.cond.notify_all()

    def fail(self) -> None:
        with self.cond:
            self.failed = True
            self.cond.notify_all()


@dataclass
class Layout:
    """The running layout and the conversations driven through it."""

    folder: Path
    stacks: List[RasaStack]
    database_url: str
    https_port: int
    actions: List[str]
    red: redis.Redis
    prefix: str
    patients: List[Patient] = field(default_factory=list)

    def rasa_addresses(self) -> set[str]:
        return {stack.rasa_url.removeprefix("http://") for stack in self.stacks}

    def access_log(self) -> List[Dict[str, Any]]:
        lines = (self.folder / "scaled.log").read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def wait_for_log(self, uri: str, count: int) -> None:
        """Wait for `count` lines: nginx logs a request just after the client read its response."""
        deadline = time.monotonic() + 10
        while sum(entry["uri"] == uri for entry in self.access_log()) < count:
            assert time.monotonic() < deadline, f"{uri}: fewer than {count} lines in nginx's log"
            time.sleep(0.1)

    def query(self, sql: str, **params: Any) -> List[Any]:
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params).all())
        finally:
            engine.dispose()


def texts(replies: List[Dict[str, Any]]) -> str:
    return "\n".join(r.get("text") or "" for r in replies)


def send(https_port: int, sender: str, message: str, rotation: Rotation) -> List[Dict[str, Any]]:
    """POST one message through nginx; the next patient's turn starts once it is written."""
    conn = http.client.HTTPSConnection("127.0.0.1", https_port, timeout=90,
                                       context=ssl._create_unverified_context())
    try:
        body = json.dumps({"sender": sender, "message": message})
        conn.request("POST", "/webhooks/rest/webhook", body=body,
                     headers={"Host": PUBLIC, "Content-Type": "application/json"})
        time.sleep(SEND_GAP_SECONDS)  # nginx has read it and picked its server
        rotation.advance()
        response = conn.getresponse()
        data = response.read()
        assert response.status == 200, (message, response.status, data[:300])
        return list(json.loads(data))
    finally:
        conn.close()


def talk(layout: Layout, index: int, patient: Patient, rotation: Rotation, errors: List[BaseException]) -> None:
    """One patient: each message only after the reply to the previous one."""
    try:
        for round_, (template, expected) in enumerate(patient.script):
            message = template.format(name=patient.name, phone=patient.phone)
            rotation.wait(index, round_)
            patient.sent.append(message)
            replies = send(layout.https_port, patient.sender, message, rotation)
            patient.replies.append(replies)
            assert replies, (patient.sender, message, "no reply")
            if expected is not None:
                assert expected in texts(replies), (patient.sender, message, texts(replies))
    except BaseException as error:  # reported to the test
        errors.append(error)
        rotation.fail()


@pytest.fixture(scope="module")
def scaled_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this module (exact counts), dropped afterwards."""
    name = f"scaled_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(PG_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def start_stacks(folder: Path, model: Path, url: str, extra: Dict[str, Any]) -> List[RasaStack]:
    """Both stacks at once (model loading dominates), the second after the first's migration."""
    futures: List[Future[RasaStack]] = []
    with ThreadPoolExecutor(2) as pool:
        for n in (1, 2):
            futures.append(pool.submit(start_stack, folder / f"stack{n}", model, database_url=url, **extra))
            deadline = time.monotonic() + 60
            # start_stack opens the action server's log after migrating: no two migrations at once
            while not (folder / f"stack{n}" / "actions.log").exists() and not futures[-1].done():
                assert time.monotonic() < deadline, "the first stack did not migrate"
                time.sleep(0.1)
    stacks, errors = [], []
    for future in futures:
        try:
            stacks.append(future.result())
        except Exception as error:  # noqa: BLE001 - the other stack is stopped first
            errors.append(error)
    for stack in stacks:  # start_stack waits for the model a while, then goes on regardless
        deadline = time.monotonic() + MODEL_LOAD_SECONDS
        while not errors and not requests.get(f"{stack.rasa_url}/status", params={"token": stack.token},
                                              timeout=10).json().get("model_file"):
            if time.monotonic() > deadline or stack.procs["rasa"].poll() is not None:
                errors.append(RuntimeError("model not loaded:\n" + stack.log("rasa")[-3000:]))
            time.sleep(1)
    if errors:
        for stack in stacks:
            for name in stack.procs:
                stack.stop(name)
        raise errors[0]
    return stacks


def start_nginx(folder: Path, config: Path, https_port: int) -> subprocess.Popen[bytes]:
    """Debian's nginx on a checked test configuration, once it answers on its HTTPS port."""
    subprocess.run([NGINX, "-t", "-p", str(folder), "-c", str(config)], check=True, capture_output=True)
    nginx = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(config), "-g", "daemon off;"])
    deadline = time.monotonic() + 30
    while True:
        assert nginx.poll() is None, (folder / "error.log").read_text()
        try:
            requests.get(f"https://127.0.0.1:{https_port}/", headers={"Host": PUBLIC}, verify=False, timeout=5)
            return nginx
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "nginx did not come up"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def layout(model_path: Path, scaled_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layout]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed: make nginx")
    from bot.storage.migrate import upgrade

    folder = tmp_path_factory.mktemp("scaled")
    prefix = "scaled" + uuid.uuid4().hex[:10]
    red = redis.Redis.from_url(REDIS_URL)
    red.ping()
    upgrade(scaled_database)
    http_port, https_port, actions_port = free_port(), free_port(), free_port()
    lock_store = (f"lock_store:\n  type: bot.lock_store.AtomicRedisLockStore\n  url: {REDIS_URL}\n"
                  f"  key_prefix: {prefix}\n")
    stacks: List[RasaStack] = []
    nginx: Optional[subprocess.Popen[bytes]] = None
    try:
        stacks = start_stacks(folder, model_path, scaled_database, {
            "credentials": CREDENTIALS,
            "extra_env": {"ACTION_SERVER_SECRET": uuid.uuid4().hex},  # one secret: any Rasa, any action server
            "action_url": f"http://127.0.0.1:{actions_port}/webhook",
            "extra_endpoints": lock_store,
        })
        rasa_ports = [int(stack.rasa_url.rsplit(":", 1)[1]) for stack in stacks]
        actions = [stack.actions_url.removeprefix("http://") for stack in stacks]
        # the action servers' upstream: an internal server on loopback, never the public one
        http_extra = (
            "  log_format scaled escape=json '{\"uri\":\"$uri\",\"upstream\":\"$upstream_addr\","
            "\"status\":\"$status\",\"end\":\"$msec\",\"seconds\":\"$request_time\","
            "\"body\":\"$request_body\"}';\n"
            f"  access_log {folder}/scaled.log scaled;\n"
            "  log_format actions '$upstream_addr $status';\n"
            "  upstream clinic_actions {\n"
            + "".join(f"    server {address};\n" for address in actions)
            + "  }\n"
            f"  server {{\n    listen 127.0.0.1:{actions_port};\n"
            f"    access_log {folder}/actions.log actions;\n    client_max_body_size 16m;\n"
            "    location = /webhook { proxy_pass http://clinic_actions; }\n"
            "    location / { return 404; }\n  }\n"
        )
        config = proxy_config(folder, http_port, https_port, {
            "clinic_rasa": rasa_ports, "clinic_rasa_socketio": rasa_ports,
            "clinic_web": free_port(), "clinic_console": free_port()}, http_extra=http_extra)
        nginx = start_nginx(folder, config, https_port)
        running = Layout(folder, stacks, scaled_database, https_port, actions, red, prefix)
        drive(running)
        yield running
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=20)
        for stack in stacks:  # all four shut down at once, then each is waited for
            for proc in stack.procs.values():
                if proc.poll() is None:
                    proc.terminate()
        for stack in stacks:
            for name in stack.procs:
                stack.stop(name)
        keys = list(red.scan_iter(f"{prefix}:*"))
        if keys:
            red.delete(*keys)
        red.close()


def drive(layout: Layout) -> None:
    """All patients at once, in rotation; fails with the first patient's error."""
    booking = 0
    for kind, script in PATIENTS:
        patient = Patient(f"scaled-{uuid.uuid4().hex[:10]}", kind, script)
        if kind == "booking":
            patient.name, patient.phone = NAMES[booking], PHONES[booking]
            booking += 1
        layout.patients.append(patient)
    rotation = Rotation(len(layout.patients))
    errors: List[BaseException] = []
    threads = [threading.Thread(target=talk, args=(layout, index, patient, rotation, errors))
               for index, patient in enumerate(layout.patients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, start + DRIVE_TIMEOUT_SECONDS - time.monotonic()))
    if errors:
        raise errors[0]
    assert not any(thread.is_alive() for thread in threads)
    layout.wait_for_log("/webhooks/rest/webhook", sum(len(patient.sent) for patient in layout.patients))


def test_each_patients_messages_alternated_between_the_two_rasa_servers(layout: Layout) -> None:
    served: Dict[str, List[str]] = defaultdict(list)
    messages: Dict[str, List[str]] = defaultdict(list)
    spans: List[Tuple[float, float]] = []
    for entry in layout.access_log():
        if entry["uri"] == "/webhooks/rest/webhook":
            body = json.loads(entry["body"])
            assert entry["status"] == "200", entry
            served[body["sender"]].append(entry["upstream"])
            messages[body["sender"]].append(body["message"])
            spans.append((float(entry["end"]) - float(entry["seconds"]), float(entry["end"])))
    # the conversations overlapped: several patients' messages were in flight at once
    in_flight = max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)
    assert in_flight >= 3, in_flight
    servers = layout.rasa_addresses()
    assert len(servers) == 2
    for patient in layout.patients:
        upstreams = served[patient.sender]
        assert messages[patient.sender] == patient.sent  # every message went through nginx
        assert set(upstreams) == servers, (patient.sender, upstreams)
        assert all(a != b for a, b in zip(upstreams, upstreams[1:], strict=False)), (patient.sender, upstreams)


def test_both_action_servers_ran_actions_through_the_internal_upstream(layout: Layout) -> None:
    lines = (layout.folder / "actions.log").read_text(encoding="utf-8").split()
    upstreams, statuses = lines[0::2], lines[1::2]
    assert set(upstreams) == set(layout.actions)
    assert set(statuses) == {"200"}


def test_every_message_is_stored_once_in_order_with_the_replies_the_patient_read(layout: Layout) -> None:
    for patient in layout.patients:
        events = [(kind, json.loads(data)) for kind, data in layout.query(
            "SELECT type_name, data FROM events WHERE sender_id = :c ORDER BY id", c=patient.conversation_id)]
        users = [index for index, (kind, _) in enumerate(events) if kind == "user"]
        assert [events[i][1]["text"] for i in users] == patient.sent, patient.sender
        ids = [events[i][1].get("message_id") for i in users]
        assert len(set(ids)) == len(ids), "a message stored twice"
        for turn, (start, end) in enumerate(zip(users, users[1:] + [len(events)], strict=True)):
            stored = [data.get("text") for kind, data in events[start + 1:end] if kind == "bot"]
            read = [reply.get("text") for reply in patient.replies[turn]]
            assert stored and stored == read, (patient.sender, patient.sent[turn], stored, read)


def test_every_booking_is_stored_once_with_the_reference_the_patient_was_given(layout: Layout) -> None:
    rows = layout.query("SELECT conversation_id, reference, full_name, phone_e164, body_part FROM booking_requests")
    bookings = [patient for patient in layout.patients if patient.kind == "booking"]
    assert len(rows) == len(bookings)
    by_conversation = {row[0]: row for row in rows}
    for patient in bookings:
        given = re.findall(r"Your reference is (BK-\w+)", texts([r for rs in patient.replies for r in rs]))
        row = by_conversation[patient.conversation_id]
        assert given == [row[1]]
        assert row[2] == patient.name and row[3] == "+65" + patient.phone.replace(" ", "")
        assert row[4] == "knee"


def test_the_redis_lock_store_served_every_turn_and_holds_no_lock_afterwards(layout: Layout) -> None:
    for patient in layout.patients:
        queue = f"{layout.prefix}:lock:{patient.conversation_id}"
        assert not layout.red.exists(queue), "a ticket was never released"
        # one ticket per message, numbered by the counter both servers share
        assert int(layout.red.get(f"{queue}:last") or 0) == len(patient.sent)


def test_no_lock_errors_or_tracebacks_in_any_server_log(layout: Layout) -> None:
    for stack in layout.stacks:
        for name in ("rasa", "actions"):
            log = stack.log(name)
            assert "LockError" not in log and "Traceback" not in log, (name, log[-3000:])


def test_socket_io_polling_stays_on_one_server_and_gets_its_answer(layout: Layout) -> None:
    """Engine.IO long-polling is several requests per session: they must reach one server."""
    base = f"https://127.0.0.1:{layout.https_port}/socket.io/?EIO=4&transport=polling"
    headers = {"Host": PUBLIC, "Origin": f"https://{PUBLIC}"}
    session = requests.Session()  # verify=False per request: REQUESTS_CA_BUNDLE would win over session.verify

    requests_sent = 0

    def get(url: str) -> List[str]:
        nonlocal requests_sent
        requests_sent += 1
        answer = session.get(url, headers=headers, timeout=60, verify=False)
        assert answer.status_code == 200, answer.text
        return answer.text.split("\x1e")

    def post(url: str, packet: str) -> None:
        nonlocal requests_sent
        requests_sent += 1
        answer = session.post(url, data=packet, headers=headers, timeout=30, verify=False)
        assert answer.status_code == 200 and answer.text.lower() == "ok", answer.text

    sid = json.loads(get(base)[0][1:])["sid"]
    url = f"{base}&sid={sid}"
    conversation = uuid.uuid4().hex
    post(url, "40")
    assert any(packet.startswith("40") for packet in get(url))
    post(url, "42" + json.dumps(["session_request", {"session_id": conversation}]))
    post(url, "42" + json.dumps(["user_uttered", {"message": "what is sciatica", "session_id": conversation}]))
    answers: List[Any] = []
    deadline = time.monotonic() + 60
    while not any(kind == "bot_uttered" for kind, _ in answers):
        assert time.monotonic() < deadline, answers
        answers += [json.loads(p[2:]) for p in get(url) if p.startswith("42")]
    assert "sciatic nerve" in " ".join(payload.get("text", "") for kind, payload in answers if kind == "bot_uttered")
    post(url, "1")  # Engine.IO close: the server forgets the session
    layout.wait_for_log("/socket.io/", requests_sent)
    polled = [entry["upstream"] for entry in layout.access_log() if entry["uri"] == "/socket.io/"]
    assert len(polled) == requests_sent and len(set(polled)) == 1 and polled[0] in layout.rasa_addresses()
    deadline = time.monotonic() + 10  # the reply is emitted before the turn is stored
    while True:
        stored = layout.query("SELECT data FROM events WHERE sender_id = :c AND type_name = 'user'",
                              c=f"web:{conversation}")
        if stored or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [json.loads(data)["text"] for (data,) in stored] == ["what is sciatica"]
