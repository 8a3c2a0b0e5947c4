"""Start Rasa's server with the HTTP API token from the environment, never the command line.

`rasa run --auth-token T` shows T to every user of the machine (`ps`, /proc/<pid>/cmdline).
`python -m bot.rasa_server run [rasa run options]` is `rasa run` with `--auth-token` taken
from RASA_AUTH_TOKEN (settings, so also `.env`; in development the generated
var/rasa-auth-token) and added inside the process, so the process list never shows it.
A token given on the command line is refused. It also sets the variables endpoints.yml reads
(ACTION_SERVER_URL, ACTION_SERVER_SECRET) from settings when they are unset, so a start from
`.env` alone works. Rasa is imported only in `main`, after all that.
"""

from __future__ import annotations

import os
import secrets
import sys
from typing import List, MutableMapping, Optional, Sequence

from bot.action_auth import action_server_secret
from bot.settings import Settings, get_settings, rasa_api_token


def api_token(settings: Settings) -> str:
    """The HTTP API token: RASA_AUTH_TOKEN, or the development one, generated if missing."""
    path = settings.data_dir / "rasa-auth-token"
    if not settings.rasa_auth_token and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        path.chmod(0o600)
    return rasa_api_token(settings)


def rasa_argv(argv: Sequence[str], settings: Settings) -> List[str]:
    """Rasa's command line: `argv` plus the token when the HTTP API is on.

    Raises:
        SystemExit: `--auth-token` was given on the command line.
    """
    if any(arg == "--auth-token" or arg.startswith("--auth-token=") for arg in argv):
        raise SystemExit("pass the HTTP API token in RASA_AUTH_TOKEN, not on the command line")
    args = ["rasa", *argv]
    if "--enable-api" in argv:
        # one argument, "=" form: a token that starts with "-" (secrets.token_urlsafe gives one
        # in 64) is otherwise read by argparse as an option, and Rasa refuses to start
        args.append(f"--auth-token={api_token(settings)}")
    return args


def prepare_environment(settings: Settings, environ: Optional[MutableMapping[str, str]] = None) -> None:
    """Set what endpoints.yml reads, from settings, where the environment leaves it unset."""
    environ = os.environ if environ is None else environ
    environ.setdefault("ACTION_SERVER_URL", settings.action_server_url)
    environ.setdefault("ACTION_SERVER_SECRET", action_server_secret(settings))


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run `rasa <argv>` in this process (e.g. `python -m bot.rasa_server run --enable-api`)."""
    settings = get_settings()
    prepare_environment(settings)
    sys.argv = rasa_argv(sys.argv[1:] if argv is None else argv, settings)
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
