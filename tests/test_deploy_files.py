"""The deployment files describe one layout: compose.yaml, Dockerfile, Caddyfile, nginx, systemd.

Docker cannot run on the development machine, so this keeps the files in step instead: the
same services with the same commands, ports and environment variables in compose.yaml and
deploy/systemd/, the same routes in deploy/Caddyfile and deploy/nginx.conf, and neither
proxy ever routing Rasa's HTTP API or the action server. tests/test_deploy_nginx.py runs the
nginx layout for real.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
APP_SERVICES = {"migrate", "actions", "rasa", "notifier", "retention", "web", "console"}
# What must never be reachable through the proxy: Rasa's HTTP API and the action server.
PRIVATE_PATHS = ["/", "/status", "/version", "/model", "/model/parse", "/conversations/x/tracker",
                 "/conversations/x/messages", "/conversations/x/execute", "/webhook", "/health"]
PUBLIC_RASA_PATHS = ["/socket.io/?EIO=4&transport=polling", "/webhooks/rest/webhook",
                     "/webhooks/telegram/webhook", "/webhooks/whatsapp/webhook"]


def compose() -> Dict[str, dict]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))["services"])


def unit(name: str) -> Dict[str, List[str]]:
    """A systemd unit's [Service] keys (repeatable keys keep every value)."""
    keys: Dict[str, List[str]] = {}
    section = ""
    for line in (DEPLOY / "systemd" / f"clinic-{name}.service").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    return keys


def normalised(command: List[str]) -> List[str]:
    """A command with the interpreter path and the bind address taken out."""
    out = [Path(word).name if word.startswith("/opt/clinic/.venv/bin/") else word for word in command]
    for flag in ("-i", "--host"):
        if flag in out:
            out[out.index(flag) + 1] = "<host>"
    return out


def unit_environment(name: str) -> Dict[str, str]:
    return dict(value.split("=", 1) for value in unit(name).get("Environment", []))


def caddy_routes() -> Dict[str, List[Tuple[Optional[str], str]]]:
    """Site -> [(path matcher or None for the rest, upstream host:port)]."""
    text = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    sites: Dict[str, List[Tuple[Optional[str], str]]] = {}
    for site, body in re.findall(r"^(\{\$\w+\})\s*\{\n(.*?)^\}", text, re.M | re.S):
        sites[site] = [(matcher or None, upstream) for matcher, upstream in
                       re.findall(r"handle(?:\s+(\S+))?\s*\{\s*(?:#[^\n]*\n\s*)*reverse_proxy\s+(\S+)", body)]
        assert body.count("reverse_proxy") == len(sites[site]), f"{site}: a reverse_proxy outside handle"
    return sites


def nginx_routes() -> Dict[str, List[Tuple[str, str]]]:
    """server_name -> [(location prefix, upstream host:port)] for the TLS servers."""
    text = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    upstreams = dict(re.findall(r"upstream\s+(\w+)\s*\{\s*server\s+([^;\s]+);", text))
    routes: Dict[str, List[Tuple[str, str]]] = {}
    for server in re.split(r"^server\s*\{", text, flags=re.M)[1:]:
        if "ssl_certificate " not in server:
            assert "proxy_pass" not in server, "the port-80 server only redirects"
            continue
        name = re.search(r"server_name\s+([^;]+);", server).group(1)  # type: ignore[union-attr]
        routes[name] = [(prefix, upstreams[up]) for prefix, up in
                        re.findall(r"location\s+(\S+)\s*\{[^}]*?proxy_pass\s+http://(\w+);", server, re.S)]
        assert server.count("proxy_pass") == len(routes[name])
    return routes


def route(routes: List[Tuple[Optional[str], str]], path: str) -> str:
    """The upstream a request path reaches: the longest matching prefix, else the catch-all."""
    best, upstream = -1, ""
    for prefix, target in routes:
        plain = (prefix or "/").rstrip("*")
        if path.startswith(plain) and len(plain) > best:
            best, upstream = len(plain), target
    return upstream


def test_compose_and_systemd_run_the_same_services_with_the_same_commands() -> None:
    services = compose()
    app = {name for name, svc in services.items() if svc.get("image") == "clinic-assistant:latest"}
    assert app == APP_SERVICES
    units = {p.stem.removeprefix("clinic-") for p in (DEPLOY / "systemd").glob("clinic-*.service")}
    assert units == APP_SERVICES
    for name in APP_SERVICES:
        exec_start = unit(name)["ExecStart"][0].split()
        assert normalised(services[name]["command"]) == normalised(exec_start), name


def test_compose_and_systemd_set_the_same_variables_in_each_service() -> None:
    services = compose()
    for name in APP_SERVICES:
        assert set(services[name].get("environment", {})) == set(unit_environment(name)), name
        assert services[name]["env_file"] == ".env"
        assert unit(name)["EnvironmentFile"] == ["/etc/clinic/clinic.env"]
    port = services["actions"]["command"][services["actions"]["command"].index("-p") + 1]
    assert services["rasa"]["environment"]["ACTION_SERVER_URL"] == f"http://actions:{port}/webhook"
    assert unit_environment("rasa")["ACTION_SERVER_URL"] == f"http://127.0.0.1:{port}/webhook"


def test_systemd_services_bind_loopback_and_compose_publishes_only_the_proxy() -> None:
    services = compose()
    assert [name for name, svc in services.items() if "ports" in svc] == ["caddy"]
    assert sorted(services["caddy"]["ports"]) == ["443:443", "443:443/udp", "80:80"]
    assert not any(svc.get("network_mode") == "host" for svc in services.values())
    for name in APP_SERVICES:
        command = unit(name)["ExecStart"][0].split()
        for flag in ("-i", "--host"):
            if flag in command:
                assert command[command.index(flag) + 1] == "127.0.0.1", name
    assert unit_environment("actions")["SANIC_HOST"] == "127.0.0.1"


def _port(command: List[str]) -> str:
    return command[command.index("-p" if "-p" in command else "--port") + 1]


def test_both_proxies_route_the_same_paths_to_the_same_services() -> None:
    services = compose()
    caddy = caddy_routes()
    nginx = nginx_routes()
    assert set(caddy) == {"{$PUBLIC_HOST}", "{$STAFF_HOST}"} and len(nginx) == 2
    public_nginx, staff_nginx = nginx["clinic.example"], nginx["staff.clinic.example"]
    for path in PUBLIC_RASA_PATHS + ["/", "/static/widget.js", "/services.html"] + PRIVATE_PATHS:
        compose_target = route(caddy["{$PUBLIC_HOST}"], path).split(":")  # type: ignore[arg-type]
        nginx_target = route(public_nginx, path).split(":")  # type: ignore[arg-type]
        assert compose_target[1] == nginx_target[1], path  # same port
        service = compose_target[0]
        assert _port(services[service]["command"]) == compose_target[1], path
    assert route(caddy["{$STAFF_HOST}"], "/queue").split(":")[1] == _port(services["console"]["command"])  # type: ignore[arg-type]
    assert route(staff_nginx, "/queue").endswith(":" + _port(services["console"]["command"]))  # type: ignore[arg-type]


def test_neither_proxy_routes_rasas_api_or_the_action_server() -> None:
    caddy, nginx = caddy_routes(), nginx_routes()
    tables: List[List[Tuple[Optional[str], str]]] = [*caddy.values(), *nginx.values()]  # type: ignore[list-item]
    actions_port = _port(compose()["actions"]["command"])
    for routes in tables:
        assert not any(target.endswith(":" + actions_port) for _, target in routes)
        for path in PRIVATE_PATHS:
            assert not route(routes, path).endswith(":5005"), path
    for path in PUBLIC_RASA_PATHS:
        assert route(caddy["{$PUBLIC_HOST}"], path) == "rasa:5005"  # type: ignore[arg-type]
        assert route(nginx["clinic.example"], path) == "127.0.0.1:5005"  # type: ignore[arg-type]


def test_nginx_upgrades_socket_io_to_websocket() -> None:
    text = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    block = re.search(r"location /socket\.io/ \{(.*?)\}", text, re.S).group(1)  # type: ignore[union-attr]
    assert "proxy_http_version 1.1;" in block
    assert "proxy_set_header Upgrade $http_upgrade;" in block
    assert re.search(r"proxy_set_header Connection \$\w+;", block)


def test_the_image_is_pinned_non_root_locked_and_health_checked() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M).group(1)  # type: ignore[union-attr]
    assert re.fullmatch(r"python:3\.10\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base)
    assert text.count("FROM ${PYTHON_IMAGE}") == 2  # build and runtime stages
    assert re.search(r"^USER clinic$", text, re.M)
    assert "-r requirements.txt -c constraints.txt" in text
    assert "HEALTHCHECK" in text and "bot.healthcheck" in text
    cmd = yaml.safe_load(re.search(r"^CMD (\[.*?\])$", text, re.M | re.S).group(1).replace("\\\n", ""))  # type: ignore[union-attr]
    rasa = compose()["rasa"]["command"]
    assert cmd == rasa[: rasa.index("--cors")]


def test_clinic_target_starts_every_service() -> None:
    target = (DEPLOY / "systemd" / "clinic.target").read_text(encoding="utf-8")
    wants = re.search(r"^Wants=(.*)$", target, re.M).group(1).split()  # type: ignore[union-attr]
    assert sorted(wants) == sorted(f"clinic-{name}.service" for name in APP_SERVICES)


def test_make_run_starts_the_same_services_as_a_deployment(model_path: Path, tmp_path: Path) -> None:
    """`make run` migrates first, then starts every long-running service the layouts start."""
    from bot.run import commands
    from bot.settings import Settings

    started = commands(Settings.from_env({"BOT_DATA_DIR": str(tmp_path)}), 5005, 5055, 8080)
    assert set(started) == APP_SERVICES - {"migrate"}
    for name in ("notifier", "retention"):
        assert normalised(started[name])[1:] == compose()[name]["command"][1:], name
