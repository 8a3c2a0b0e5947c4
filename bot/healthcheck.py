"""Container and systemd health check: `python -m bot.healthcheck [URL]`, exit 0 when it answers.

Docker's HEALTHCHECK and compose run it inside each service (the URL is the argument,
default Rasa's `GET /`); any HTTP answer below 500 counts as up, so a
route that needs a token (401) still shows the server is serving. Standard library only:
it runs every few seconds and must stay cheap.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from typing import Optional, Sequence

DEFAULT_URL = "http://127.0.0.1:5005/"


def healthy(url: str, timeout: float = 5.0) -> bool:
    """Whether `url` answers with a status below 500 within `timeout` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - fixed local URL
            return int(answer.status) < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (urllib.error.URLError, OSError):
        return False


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Exit 0 when the URL (the argument, else Rasa's) answers."""
    args = list(sys.argv[1:] if argv is None else argv)
    url = args[0] if args else DEFAULT_URL
    return 0 if healthy(url) else 1


if __name__ == "__main__":
    raise SystemExit(main())
