"""Tiny static server for the demo clinic site and the widget: `python -m bot.web.serve`.

For local development and the browser tests only; on the real website the clinic hosts
`bot/web/static/` itself. Standard library only, binds 127.0.0.1 by default, serves two
fixed folders with explicit content types, and refuses any path that leaves them. Demo pages
get the Rasa URL filled in and a strict Content-Security-Policy, which also proves the widget
needs nothing from other hosts.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bot.settings import get_settings

WEB_DIR = Path(__file__).resolve().parent
DEMO_DIR = WEB_DIR / "demo"
STATIC_DIR = WEB_DIR / "static"
RASA_URL_MARKER = "{{RASA_URL}}"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def resolve(root: Path, url_path: str) -> Path | None:
    """Map a URL path to a file strictly inside `root`, or None (traversal, dotfiles)."""
    relative = unquote(url_path)
    if "\x00" in relative or "\\" in relative:
        return None
    parts = [part for part in relative.split("/") if part]
    if not parts or any(part.startswith(".") for part in parts):
        return None
    candidate = root.joinpath(*parts).resolve()
    if not candidate.is_relative_to(root.resolve()) or not candidate.is_file():
        return None
    if candidate.suffix not in CONTENT_TYPES:
        return None
    return candidate


def route(url: str) -> Path | None:
    """`/static/...` is the widget, `/` and `/<page>.html` are the demo site."""
    path = urlsplit(url).path
    if path.startswith("/static/"):
        return resolve(STATIC_DIR, path[len("/static/") :])
    if path == "/":
        return DEMO_DIR / "index.html"
    return resolve(DEMO_DIR, path)


def _js_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\x3c")


def render_page(template: str, rasa_url: str) -> str:
    """Fill the Rasa URL and the practice's details (from the profile) into a demo page.

    Values are escaped for a JS string inside HTML. An emergency number that is still a
    placeholder is left empty, so the widget says "your local emergency number".
    """
    from bot.profile import get_profile

    profile = get_profile()
    values = {
        RASA_URL_MARKER: rasa_url,
        "{{PRACTICE_NAME}}": str(profile.practice_name),
        "{{EMERGENCY_NUMBER}}": profile.contact("emergency_number") or "",
    }
    for marker, value in values.items():
        template = template.replace(marker, _js_string(value))
    return template


def content_security_policy(page: str, rasa_url: str) -> str:
    """Same-origin everything, plus the bot's socket; inline scripts only by hash."""
    digests = (hashlib.sha256(body.encode()).digest() for body in _INLINE_SCRIPT.findall(page))
    hashes = " ".join(f"'sha256-{base64.b64encode(d).decode()}'" for d in digests)
    rasa = urlsplit(rasa_url)
    ws_scheme = "wss" if rasa.scheme == "https" else "ws"
    sockets = f"{rasa.scheme}://{rasa.netloc} {ws_scheme}://{rasa.netloc}"
    return (
        "default-src 'self'; "
        f"script-src 'self' {hashes}; "
        "style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {sockets}; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    )


class DemoHandler(BaseHTTPRequestHandler):
    """GET/HEAD of demo pages and widget files; everything else is 404 or 405."""

    server_version = "ClinicDemo/1"
    sys_version = ""
    rasa_url: str = "http://127.0.0.1:5005"
    quiet: bool = False

    def do_GET(self) -> None:
        """Serve a file with its body."""
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        """Serve a file's headers only."""
        self._serve(with_body=False)

    def do_POST(self) -> None:
        """Static site: nothing accepts data."""
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)

    def _serve(self, with_body: bool) -> None:
        path = route(self.path)
        if path is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        body = path.read_bytes()
        headers = {
            "Content-Type": CONTENT_TYPES[path.suffix],
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-cache",
        }
        if path.suffix == ".html":
            page = render_page(body.decode("utf-8"), self.rasa_url)
            body = page.encode("utf-8")
            headers["Content-Security-Policy"] = content_security_policy(page, self.rasa_url)
        self.send_response(HTTPStatus.OK)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Log like http.server unless quiet (the tests)."""
        if not self.quiet:
            super().log_message(format, *args)


def make_server(
    host: str = "127.0.0.1", port: int = 8080, rasa_url: str | None = None, quiet: bool = False
) -> ThreadingHTTPServer:
    """A ready-to-serve server; call `serve_forever()` (the tests run it in a thread)."""
    handler = type(
        "ConfiguredDemoHandler",
        (DemoHandler,),
        {"rasa_url": rasa_url or get_settings().rasa_url, "quiet": quiet},
    )
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m bot.web.serve --port 8080 [--rasa-url URL]`."""
    parser = argparse.ArgumentParser(description="Serve the demo clinic site and widget.")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--rasa-url", default=None, help="Rasa server the widget connects to (RASA_URL)"
    )
    args = parser.parse_args(argv)
    rasa_url = args.rasa_url or get_settings().rasa_url
    server = make_server(args.host, args.port, rasa_url)
    print(f"Demo site on http://{args.host}:{args.port}/ (widget talks to {rasa_url}); Ctrl+C stops.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
