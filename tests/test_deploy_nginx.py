"""The systemd layout without containers: Debian's nginx with deploy/nginx.conf, for real.

Debian's nginx runs deploy/nginx.conf in front of a real `rasa run`, action server and
website, all on loopback.

deploy/nginx.conf is used as written except what a test must change: the listening ports
(free loopback ports instead of 80/443), the upstream ports (where this test's processes
listen) and a self-signed certificate. Through the proxy the widget's socket.io upgrades to a
WebSocket and gets an answer, the REST webhook answers, and neither Rasa's HTTP API (even
with the right token) nor the action server can be reached.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import aiohttp
import pytest
import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import RasaStack, free_port, wait_http

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PUBLIC, STAFF = "clinic.example", "staff.clinic.example"
CREDENTIALS = f"""bot.channels.rest.RestInput:
bot.channels.socketio.SocketIOInput:
  session_persistence: true
  cors_allowed_origins: ["https://{PUBLIC}"]
"""
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, PUBLIC)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(PUBLIC), x509.DNSName(STAFF)]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def proxy_config(folder: Path, http_port: int, https_port: int, upstreams: dict[str, int | list[int]],
                 http_extra: str = "") -> Path:
    """deploy/nginx.conf on test ports and a test certificate, wrapped in a minimal nginx.conf.

    An upstream given a list of ports gets one `server` line per port (more Rasa servers);
    `http_extra` goes into the `http` block (log formats, more servers).
    """
    text = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    text = re.sub(r"^\s*listen \[::\]:\d+[^;]*;\n", "", text, flags=re.M)
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    for name, ports in upstreams.items():
        first, *more = ports if isinstance(ports, list) else [ports]
        servers = f"{first};" + "".join(f"\n    server 127.0.0.1:{port};" for port in more)
        text, count = re.subn(rf"(upstream {name} \{{\s*server 127\.0\.0\.1:)\d+;", rf"\g<1>{servers}", text)
        assert count == 1, name
    cert, key = self_signed(folder)
    text = re.sub(r"ssl_certificate \S+;", f"ssl_certificate {cert};", text)
    text = re.sub(r"ssl_certificate_key \S+;", f"ssl_certificate_key {key};", text)
    (folder / "clinic.conf").write_text(text, encoding="utf-8")
    main = folder / "nginx.conf"
    main.write_text(
        f"user root;\nworker_processes 1;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n  access_log {folder}/access.log;\n  client_body_temp_path {folder}/body;\n"
        f"  proxy_temp_path {folder}/proxy;\n  fastcgi_temp_path {folder}/fastcgi;\n"
        f"  uwsgi_temp_path {folder}/uwsgi;\n  scgi_temp_path {folder}/scgi;\n"
        f"{http_extra}  include {folder}/clinic.conf;\n}}\n",
        encoding="utf-8",
    )
    return main


class Proxy:
    def __init__(self, https_port: int, http_port: int, stack: RasaStack) -> None:
        self.base = f"https://127.0.0.1:{https_port}"
        self.http = f"http://127.0.0.1:{http_port}"
        self.stack = stack

    def get(self, path: str, host: str = PUBLIC, **kwargs: Any) -> requests.Response:
        return requests.get(self.base + path, headers={"Host": host}, verify=False, timeout=30,
                            allow_redirects=False, **kwargs)

    def post(self, path: str, host: str = PUBLIC, **kwargs: Any) -> requests.Response:
        return requests.post(self.base + path, headers={"Host": host}, verify=False, timeout=60,
                             allow_redirects=False, **kwargs)


@pytest.fixture(scope="module")
def proxy(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed: apt-get install -y nginx")
    from tests.conftest import start_stack

    folder = tmp_path_factory.mktemp("nginx")
    stack = start_stack(folder / "stack", model_path, credentials=CREDENTIALS)
    web_port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "bot.web.serve", "--host", "127.0.0.1", "--port",
                            str(web_port), "--rasa-url", f"https://{PUBLIC}"], cwd=ROOT,
                           stderr=subprocess.DEVNULL)
    http_port, https_port = free_port(), free_port()
    rasa_port = int(stack.rasa_url.rsplit(":", 1)[1])
    config = proxy_config(folder, http_port, https_port, {
        "clinic_rasa": rasa_port, "clinic_rasa_socketio": rasa_port, "clinic_web": web_port,
        "clinic_console": free_port()})
    subprocess.run([NGINX, "-t", "-p", str(folder), "-c", str(config)], check=True, capture_output=True)
    nginx = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(config), "-g", "daemon off;"])
    try:
        wait_http(f"http://127.0.0.1:{web_port}/", proc=web)
        running = Proxy(https_port, http_port, stack)
        deadline = time.monotonic() + 60
        while True:
            assert nginx.poll() is None, (folder / "error.log").read_text()
            try:
                running.get("/")
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "nginx did not come up"
                time.sleep(0.2)
        yield running
    finally:
        for proc in (nginx, web):
            proc.terminate()
            proc.wait(timeout=20)
        for name in stack.procs:
            stack.stop(name)


def test_socket_io_upgrades_to_a_websocket_and_the_widget_gets_answers(proxy: Proxy) -> None:
    """The widget's transport, spoken by hand (Engine.IO 4 / Socket.IO 5 over a WebSocket)."""

    async def chat() -> list[Any]:
        session_id = uuid.uuid4().hex
        received: list[Any] = []
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(
                proxy.base + "/socket.io/?EIO=4&transport=websocket", ssl=False,
                headers={"Host": PUBLIC, "Origin": f"https://{PUBLIC}"},
            ) as ws:
                async def event(name: str) -> Any:
                    while True:
                        packet = await asyncio.wait_for(ws.receive_str(), 60)
                        if packet == "2":  # Engine.IO ping
                            await ws.send_str("3")
                        elif packet.startswith("42"):
                            kind, payload = json.loads(packet[2:])
                            if kind == name:
                                return payload
                        elif packet.startswith("40") and name == "connect":
                            return json.loads(packet[2:])

                assert (await asyncio.wait_for(ws.receive_str(), 10)).startswith("0{")  # open
                await ws.send_str("40")
                received.append(await event("connect"))
                await ws.send_str("42" + json.dumps(["session_request", {"session_id": session_id}]))
                received.append(await event("session_confirm"))
                await ws.send_str("42" + json.dumps(["user_uttered", {"message": "hello", "session_id": session_id}]))
                received.append(await event("bot_uttered"))
                received.append(session_id)
        return received

    connected, confirmed, reply, session_id = asyncio.run(chat())
    assert "sid" in connected
    assert confirmed == session_id
    assert "automated assistant" in reply["text"]


def test_the_rest_webhook_answers_through_the_proxy(proxy: Proxy) -> None:
    answer = proxy.post("/webhooks/rest/webhook", json={"sender": "nginx-1", "message": "what is sciatica"})
    assert answer.status_code == 200
    assert "sciatic nerve" in " ".join(r.get("text", "") for r in answer.json())


def test_rasas_http_api_is_not_reachable_through_the_proxy_even_with_the_token(proxy: Proxy) -> None:
    token = {"token": proxy.stack.token}
    assert requests.get(f"{proxy.stack.rasa_url}/conversations/nginx-1/tracker", params=token,
                        timeout=30).status_code == 200  # it is there, on loopback
    for path in ("/conversations/nginx-1/tracker", "/status", "/version", "/domain"):
        answer = proxy.get(path, params=token)
        assert answer.status_code == 404, path  # the website's 404, not Rasa
        assert "sender_id" not in answer.text and "model_file" not in answer.text, path
    assert proxy.post("/model/parse", params=token, json={"text": "hi"}).status_code in {404, 405, 501}
    assert "Hello from Rasa" not in proxy.get("/").text  # `/` is the website


def test_the_action_server_is_not_reachable_through_the_proxy(proxy: Proxy) -> None:
    assert requests.get(f"{proxy.stack.actions_url}/health", timeout=10).status_code == 200  # on loopback
    assert proxy.get("/health").status_code == 404
    webhook = proxy.post("/webhook", json={"next_action": "action_submit_booking"})
    assert webhook.status_code in {404, 405, 501}
    assert "action" not in webhook.text.lower() or "unauthorized" not in webhook.text.lower()


def test_plain_http_redirects_to_https(proxy: Proxy) -> None:
    answer = requests.get(proxy.http + "/webhooks/rest/webhook", headers={"Host": PUBLIC},
                          allow_redirects=False, timeout=10)
    assert answer.status_code == 301
    assert answer.headers["Location"] == f"https://{PUBLIC}/webhooks/rest/webhook"
