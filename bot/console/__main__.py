"""Command line of the staff console: serve it, and create staff accounts.

Serve with `python -m bot.console serve [--host 127.0.0.1] [--port 8090]`; add an account
with `python -m bot.console create-user --role admin --username ana --name "Ana Lim"`
(password from a prompt, or `--password-file FILE`, or `--password-file -` for stdin).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Optional, Sequence

from bot.settings import get_settings
from bot.storage.models import STAFF_ROLES


def read_password(source: str | None) -> str:
    """The new password: from a file, from stdin ("-"), or typed twice at a prompt."""
    if source == "-":
        return sys.stdin.readline().rstrip("\r\n")
    if source:
        return Path(source).read_text(encoding="utf-8").rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise SystemExit("the passwords differ")
    return first


def create_user(args: argparse.Namespace) -> int:
    """Add an account from the command line (the first admin, typically)."""
    from sqlalchemy.exc import IntegrityError

    from bot.console.auth import PasswordRejected, hash_password
    from bot.storage import console as store
    from bot.storage.database import get_database

    try:
        password_hash = hash_password(read_password(args.password_file))
    except PasswordRejected as exc:
        print(exc, file=sys.stderr)
        return 2
    db = get_database()
    try:
        user = store.create_user(db, username=args.username, display_name=args.name,
                                 role=args.role, password_hash=password_hash)
    except IntegrityError:
        print(f"a user named {args.username!r} exists already", file=sys.stderr)
        return 1
    store.audit(db, user=None, username="command-line", action="create_user",
                target_kind="staff_user", target_id=str(user.id), detail=f"{user.username} ({user.role})")
    print(f"created {user.role} {user.username} ({user.display_name})")
    return 0


def serve(args: argparse.Namespace) -> int:
    """Run the console with uvicorn."""
    import uvicorn

    from bot.console.app import create_app

    settings = get_settings()
    host = args.host or settings.console_host
    port = args.port or settings.console_port
    print(f"Staff console at http://{host}:{port}/", flush=True)
    uvicorn.run(create_app(), host=host, port=port, log_level="warning",
                proxy_headers=False, server_header=False, ws="none")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse the command line and run the command."""
    parser = argparse.ArgumentParser(prog="python -m bot.console", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="run the console web app")
    serve_cmd.add_argument("--host", default=None, help="default: CONSOLE_HOST (127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, default=None, help="default: CONSOLE_PORT (8090)")
    user_cmd = sub.add_parser("create-user", help="add a staff account")
    user_cmd.add_argument("--role", required=True, choices=STAFF_ROLES)
    user_cmd.add_argument("--username", required=True)
    user_cmd.add_argument("--name", required=True, help="the name colleagues and patients see")
    user_cmd.add_argument("--password-file", default=None,
                          help="read the password from this file ('-' for stdin); else a prompt")
    args = parser.parse_args(argv)
    return create_user(args) if args.command == "create-user" else serve(args)


if __name__ == "__main__":
    raise SystemExit(main())
