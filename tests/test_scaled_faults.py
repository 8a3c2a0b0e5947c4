"""Faults under the scaled layout: a Rasa server killed, PostgreSQL restarted or down, Redis stopped.

Two Rasa servers (each with its action server) behind Debian's nginx, as in
`tests/test_scaled_layout.py`, but on a PostgreSQL cluster and a Redis server of this
module's own (`tests.servers`), so that they can be restarted and stopped for real without
touching the machine's shared ones. Patients talk through the public HTTPS webhook, one
message after the other's reply, so nginx's round-robin alternates each patient between the
two Rasa servers.

What a patient or the staff would notice is checked: every message gets its expected reply
while the fault lasts and after it, the stored conversation holds every message once and in
order, and a booking made across the fault is one row with the reference the patient read.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import redis
import requests
import sqlalchemy as sa

from bot import spool
from bot.channels.store import ChannelCache, MemoryStore, RedisStore
from bot.shared_records import KEY_PREFIX as SHARED_RECORDS
from tests.conftest import RasaStack, free_port, wait_http
from tests.servers import PrivatePostgres, PrivateRedis
from tests.test_deploy_nginx import CREDENTIALS, NGINX, PUBLIC, proxy_config
from tests.test_scaled_layout import BOOKING, QUESTIONS, start_nginx, start_stacks, texts

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # test certificate
NAME, PHONE = "Nur Aisyah Binte Ali", "9456 7890"
Script = List[Tuple[str, Optional[str]]]


@dataclass
class Faults:
    """The running layout, its own database and Redis, and a way to talk through nginx."""

    folder: Path
    stacks: List[RasaStack]
    postgres: PrivatePostgres
    redis_server: PrivateRedis
    database_url: str
    https_port: int
    prefix: str

    def post(self, body: Dict[str, Any]) -> requests.Response:
        return requests.post(f"https://127.0.0.1:{self.https_port}/webhooks/rest/webhook",
                             json=body, headers={"Host": PUBLIC}, verify=False, timeout=150)

    def say(self, sender: str, message: str) -> List[Dict[str, Any]]:
        answer = self.post({"sender": sender, "message": message})
        assert answer.status_code == 200, (message, answer.status_code, answer.text[:300])
        return list(answer.json())

    def talk(self, sender: str, script: Script, sent: List[str], read: List[str]) -> None:
        """Each message after the previous reply; each reply must hold its expected text."""
        for template, expected in script:
            message = template.format(name=NAME, phone=PHONE)
            replies = self.say(sender, message)
            sent.append(message)
            read.append(texts(replies))
            assert replies, (message, "no reply")
            if expected is not None:
                assert expected in texts(replies), (message, texts(replies))

    def served_by(self, sender: str) -> List[str]:
        """The Rasa server that answered each of this patient's messages, from nginx's log."""
        lines = (self.folder / "faults.log").read_text(encoding="utf-8").splitlines()
        entries = [json.loads(line) for line in lines if line.strip()]
        # a retried request lists every server tried ("dead, alive"): the last one answered
        return [entry["upstream"].split(", ")[-1] for entry in entries
                if entry["uri"] == "/webhooks/rest/webhook" and json.loads(entry["body"])["sender"] == sender]

    def address(self, stack: RasaStack) -> str:
        return stack.rasa_url.removeprefix("http://")

    def stored_messages(self, sender: str) -> List[str]:
        return [json.loads(data)["text"] for (data,) in self.query(
            "SELECT data FROM events WHERE sender_id = :c AND type_name = 'user' ORDER BY id", c=f"rest:{sender}")]

    def bookings(self, sender: str) -> List[str]:
        return [reference for (reference,) in self.query(
            "SELECT reference FROM booking_requests WHERE conversation_id = :c", c=f"rest:{sender}")]

    def query(self, sql: str, **params: Any) -> List[Any]:
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params).all())
        finally:
            engine.dispose()


def wait_for_log(faults: Faults, sender: str, count: int) -> List[str]:
    """The servers that answered, once nginx logged them (just after the client read the response)."""
    deadline = time.monotonic() + 10
    while len(served := faults.served_by(sender)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} lines in nginx's log"
        time.sleep(0.1)
    return served


def references(read: List[str]) -> List[str]:
    return re.findall(r"Your reference is (BK-\w+)", "\n".join(read))


@pytest.fixture(scope="module")
def faults(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faults]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed: make nginx")
    folder = tmp_path_factory.mktemp("faults")
    postgres, redis_server = PrivatePostgres(free_port()), PrivateRedis(free_port())
    stacks: List[RasaStack] = []
    nginx: Optional[subprocess.Popen[bytes]] = None
    try:
        postgres.start()
        redis_server.start()
        prefix = "faults" + uuid.uuid4().hex[:10]
        lock_store = (f"lock_store:\n  type: bot.lock_store.AtomicRedisLockStore\n  url: {redis_server.url}\n"
                      f"  key_prefix: {prefix}\n  retry_redis_after: 1\n")
        stacks = start_stacks(folder, model_path, postgres.url, {
            "credentials": CREDENTIALS,
            "extra_env": {"SPOOL_FLUSH_SECONDS": "2", "SPOOL_REDIS_URL": redis_server.url,
                          "CHANNEL_CACHE_URL": redis_server.url},
            "extra_endpoints": lock_store,
        })
        rasa_ports = [int(stack.rasa_url.rsplit(":", 1)[1]) for stack in stacks]
        http_port, https_port = free_port(), free_port()
        http_extra = (
            "  log_format faults escape=json '{\"uri\":\"$uri\",\"upstream\":\"$upstream_addr\","
            "\"status\":\"$status\",\"body\":\"$request_body\"}';\n"
            f"  access_log {folder}/faults.log faults;\n"
        )
        config = proxy_config(folder, http_port, https_port, {
            "clinic_rasa": rasa_ports, "clinic_rasa_socketio": rasa_ports,
            "clinic_web": free_port(), "clinic_console": free_port()}, http_extra=http_extra)
        nginx = start_nginx(folder, config, https_port)
        yield Faults(folder, stacks, postgres, redis_server, postgres.url, https_port, prefix)
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=20)
        for stack in stacks:
            for proc in stack.procs.values():
                if proc.poll() is None:
                    proc.terminate()
        for stack in stacks:
            for name in stack.procs:
                stack.stop(name)
        redis_server.close()
        postgres.close()


def test_a_killed_rasa_server_leaves_patients_answered_by_the_other_and_it_rejoins(faults: Faults) -> None:
    booker, asker = f"kill-{uuid.uuid4().hex[:8]}", f"kill-{uuid.uuid4().hex[:8]}"
    sent: Dict[str, List[str]] = {booker: [], asker: []}
    read: Dict[str, List[str]] = {booker: [], asker: []}
    # one patient's messages in a row: round-robin alternates them between the two servers
    faults.talk(booker, BOOKING[:4], sent[booker], read[booker])  # in the middle of the booking form
    faults.talk(asker, QUESTIONS[0][:4], sent[asker], read[asker])
    victim, survivor = faults.stacks
    assert set(wait_for_log(faults, booker, 4)) == {faults.address(victim), faults.address(survivor)}

    victim.procs["rasa"].kill()  # no shutdown: a crash
    victim.procs["rasa"].wait(timeout=20)
    for turn in range(4, len(BOOKING)):
        faults.talk(booker, BOOKING[turn:turn + 1], sent[booker], read[booker])
        faults.talk(asker, QUESTIONS[0][turn:turn + 1], sent[asker], read[asker])
    served = wait_for_log(faults, booker, len(BOOKING))
    assert set(served[4:]) == {faults.address(survivor)}
    for sender in (booker, asker):
        assert faults.stored_messages(sender) == sent[sender]
    given = references(read[booker])
    assert len(given) == 1 and faults.bookings(booker) == given

    victim.launch("rasa")  # restarted by its supervisor: nginx sends it patients again
    victim.wait_for_model()
    returner = f"kill-{uuid.uuid4().hex[:8]}"
    sent[returner], read[returner] = [], []
    deadline = time.monotonic() + 120  # nginx retries a failed server after fail_timeout (10 s)
    while faults.address(victim) not in wait_for_log(faults, returner, len(sent[returner])):
        assert time.monotonic() < deadline, "the restarted server got no patient"
        faults.talk(returner, [("what is sciatica", "sciatic nerve")], sent[returner], read[returner])
        time.sleep(1)
    assert faults.stored_messages(returner) == sent[returner]


def test_a_rest_message_whose_server_is_killed_mid_answer_is_answered_once_when_resent(faults: Faults) -> None:
    """The client reads a 502 and re-sends the message with its `message_id`, as a client should."""
    patient = f"inflight-{uuid.uuid4().hex[:8]}"
    sent: List[str] = []
    read: List[str] = []
    victim, survivor = faults.stacks
    faults.talk(patient, [("what exercises help my knee pain", None)], sent, read)
    if wait_for_log(faults, patient, 1)[-1] == faults.address(victim):
        victim, survivor = survivor, victim  # round-robin: the next request goes to `victim`
    body = {"sender": patient, "message": "what about my back?", "message_id": "msg-2"}
    claim = RedisStore(faults.redis_server.url, "clinic:channels:").key(
        "rest:message-ids", ChannelCache(MemoryStore(), "", 0, "").hashed(f"rest:{patient}|msg-2"))
    client = redis.Redis.from_url(faults.redis_server.url)
    victim.procs["actions"].send_signal(signal.SIGSTOP)  # the victim can claim the message, never answer it
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(faults.post, body)
            deadline = time.monotonic() + 30
            while not client.exists(claim):
                assert time.monotonic() < deadline, "the message never reached a server"
                time.sleep(0.05)
            victim.procs["rasa"].kill()  # mid-answer: a crash
            assert in_flight.result(timeout=60).status_code == 502
        statuses: List[int] = []
        deadline = time.monotonic() + 60  # the dead server's claim and conversation lock (10 s each) lapse
        while True:
            answer = faults.post(body)
            statuses.append(answer.status_code)
            if answer.status_code == 200:
                break
            assert answer.status_code == 409 and time.monotonic() < deadline, statuses
            time.sleep(float(answer.headers["Retry-After"]))
        assert statuses[0] == 409  # at first the dead server's claim looks alive: "send it again later"
        assert "stabilise the spine" in texts(answer.json()), statuses  # answered in context
        assert faults.post(body).headers.get("X-Message-Status") == "duplicate"
        sent.append(body["message"])
        assert faults.stored_messages(patient) == sent  # once, in order
    finally:
        client.close()
        victim.procs["actions"].send_signal(signal.SIGCONT)
        victim.procs["rasa"].wait(timeout=20)
        victim.launch("rasa")
        victim.wait_for_model()


def test_a_postgresql_restart_between_turns_loses_nothing_and_the_booking_is_stored_once(faults: Faults) -> None:
    booker = f"pg-{uuid.uuid4().hex[:8]}"
    sent: List[str] = []
    read: List[str] = []
    faults.talk(booker, BOOKING[:4], sent, read)
    before = faults.postgres.backend_pids()
    assert before, "the servers hold pooled connections"

    faults.postgres.restart()  # every pooled connection of both Rasa and action servers is cut
    assert not before & faults.postgres.backend_pids()
    faults.talk(booker, BOOKING[4:], sent, read)
    assert faults.stored_messages(booker) == sent
    given = references(read)
    assert len(given) == 1 and faults.bookings(booker) == given
    assert set(wait_for_log(faults, booker, len(sent))) == {faults.address(s) for s in faults.stacks}


def test_a_message_while_postgresql_is_down_is_answered_and_stored_once_when_it_is_back(faults: Faults) -> None:
    patient = f"pg-down-{uuid.uuid4().hex[:8]}"
    sent: List[str] = []
    read: List[str] = []
    faults.talk(patient, QUESTIONS[0][:3], sent, read)  # both servers have served this patient

    faults.postgres.stop()
    faults.talk(patient, [("what is sciatica", "sciatic nerve")], sent, read)  # from memory, spooled
    faults.postgres.start()
    deadline = time.monotonic() + 60  # each server stores its spool every SPOOL_FLUSH_SECONDS
    while faults.stored_messages(patient) != sent:
        assert time.monotonic() < deadline, (faults.stored_messages(patient), sent)
        time.sleep(0.5)
    faults.talk(patient, [("what is a hyaluronic acid injection?", "knee joint")], sent, read)
    assert faults.stored_messages(patient) == sent


def test_while_postgresql_is_down_the_next_server_continues_the_conversation_and_order_holds(
    faults: Faults,
) -> None:
    patient = f"pg-shared-{uuid.uuid4().hex[:8]}"
    sent: List[str] = []
    read: List[str] = []
    faults.talk(patient, [("hello", "automated assistant"), ("what is sciatica", "sciatic nerve"),
                          ("what is a hyaluronic acid injection?", "knee joint")], sent, read)

    faults.postgres.stop()
    # one server answers the first, the other the follow-up: it must know the topic is exercise
    # (its own memory says hyaluronic acid or sciatica), from the copy the first server shared
    faults.talk(patient, [("what exercises help my knee pain", None), ("what about my back?", "stabilise the spine")],
                sent, read)
    served = wait_for_log(faults, patient, len(sent))
    assert served[-1] != served[-2], "nginx sent both messages to one server"
    faults.postgres.start()
    deadline = time.monotonic() + 60
    while faults.stored_messages(patient) != sent:  # each message once, in the order sent
        assert time.monotonic() < deadline, (faults.stored_messages(patient), sent)
        time.sleep(0.5)
    faults.talk(patient, [("tell me more", None)], sent, read)
    assert faults.stored_messages(patient) == sent


def test_a_booking_kept_by_an_action_server_that_then_dies_is_stored_once_by_the_other(faults: Faults) -> None:
    booker = f"kept-{uuid.uuid4().hex[:8]}"
    sent: List[str] = []
    read: List[str] = []
    faults.talk(booker, BOOKING[:-2], sent, read)  # the details are read back for confirmation
    faults.postgres.stop()
    # whichever server answers, it continues the copy stored last (bot.shared_spool `recent`)
    faults.talk(booker, [("/affirm", None)], sent, read)
    assert "I've kept it" in read[-1], read[-1]
    served = wait_for_log(faults, booker, len(sent))[-1]
    [keeper] = [stack for stack in faults.stacks if faults.address(stack) == served]
    keeper.procs["actions"].kill()  # a crash: its disk and memory are gone with it
    keeper.procs["actions"].wait(timeout=20)
    queue = f"{SHARED_RECORDS}records:{spool.database_folder(faults.database_url)}:pending"
    client = redis.Redis.from_url(faults.redis_server.url)
    try:
        assert client.llen(queue) == 1, "the booking waits in the shared queue"
        faults.postgres.start()
        deadline = time.monotonic() + 60  # the other action server tries every SPOOL_FLUSH_SECONDS
        while client.llen(queue):
            assert time.monotonic() < deadline, "the other action server never stored the booking"
            time.sleep(0.5)
        assert len(faults.bookings(booker)) == 1
    finally:
        client.close()
        keeper.launch("actions")
        wait_http(f"{keeper.actions_url}/health", proc=keeper.procs["actions"])


def test_with_redis_stopped_patients_are_answered_and_locking_returns_to_redis(faults: Faults) -> None:
    patient = f"redis-{uuid.uuid4().hex[:8]}"
    counter = f"{faults.prefix}:lock:rest:{patient}:last"
    red = faults.redis_server
    sent: List[str] = []
    read: List[str] = []
    faults.talk(patient, QUESTIONS[1][:2], sent, read)
    client = redis.Redis.from_url(red.url)
    assert int(client.get(counter) or 0) == 2  # both turns were locked in Redis

    red.stop()
    faults.talk(patient, QUESTIONS[1][2:6], sent, read)  # each server locks in its memory
    for stack in faults.stacks:
        assert "LOCK STORE DOWN" in stack.log("rasa")

    red.start()  # empty: Redis without persistence comes back with no tickets
    deadline = time.monotonic() + 60
    while not client.exists(counter):
        assert time.monotonic() < deadline, "the lock store never used Redis again"
        faults.talk(patient, [("what is sciatica", "sciatic nerve")], sent, read)
    assert faults.stored_messages(patient) == sent
    assert set(wait_for_log(faults, patient, len(sent))) == {faults.address(s) for s in faults.stacks}
    client.close()
