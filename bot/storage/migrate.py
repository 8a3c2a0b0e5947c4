"""Bring a database up to the current schema: ``python -m bot.storage.migrate``.

Runs ``alembic upgrade head`` in-process with paths found from this file, so it
works from any working directory (setup scripts, containers, tests). The URL is the
one given, else DATABASE_URL through `bot.settings`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bot.settings import get_settings
from bot.storage.database import DatabaseUnavailable

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None, schema: str | None = None) -> Config:
    """Build the Alembic configuration for `url` (settings' URL when None).

    Args:
        url: SQLAlchemy URL of the database to migrate.
        schema: PostgreSQL schema to create (if missing) and migrate.

    Returns:
        A `Config` whose script location does not depend on the working directory.
    """
    config = Config(str(ALEMBIC_INI)) if ALEMBIC_INI.exists() else Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    resolved = url or get_settings().database_url
    # ConfigParser treats % as interpolation; URLs may contain %-escapes.
    config.set_main_option("sqlalchemy.url", resolved.replace("%", "%%"))
    config.attributes["schema"] = schema
    config.attributes["configure_logger"] = False
    return config


def upgrade(
    url: str | None = None, *, schema: str | None = None, revision: str = "head"
) -> None:
    """Run ``alembic upgrade`` programmatically.

    Args:
        url: Database URL; None means `get_settings().database_url`.
        schema: PostgreSQL schema to migrate (created if missing); None for the default.
        revision: Target revision, normally ``head``.

    Raises:
        DatabaseUnavailable: The database could not be reached.
    """
    try:
        command.upgrade(alembic_config(url, schema), revision)
    except OperationalError as exc:
        raise DatabaseUnavailable(f"cannot migrate: {str(exc.orig).strip()}") from exc


def downgrade(
    url: str | None = None, *, schema: str | None = None, revision: str = "base"
) -> None:
    """Run ``alembic downgrade`` (tests and local resets only: drops data)."""
    command.downgrade(alembic_config(url, schema), revision)


def _redacted(url: str) -> str:
    return str(make_url(url).render_as_string(hide_password=True))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description="Upgrade the clinic database schema.")
    parser.add_argument(
        "--url", help="database URL (default: DATABASE_URL from settings)"
    )
    parser.add_argument(
        "--schema", help="PostgreSQL schema (default: the user's default)"
    )
    parser.add_argument(
        "--revision", default="head", help="target revision (default: head)"
    )
    args = parser.parse_args(argv)
    url = args.url or get_settings().database_url
    try:
        upgrade(url, schema=args.schema, revision=args.revision)
    except DatabaseUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"database at {_redacted(url)} is at revision {args.revision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
