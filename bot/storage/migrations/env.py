"""Alembic environment: which database to migrate and how to reach it.

The URL comes, in order, from ``-x url=...``, from ``sqlalchemy.url`` set by
`bot.storage.migrate.upgrade`, or from `get_settings().database_url`; ``-x schema=``
(or the ``schema`` attribute) picks a PostgreSQL schema. Connections are built with
`create_engine_for`, so migrations see the database exactly as the bot does.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import text

# `bot` is importable: alembic.ini puts the project root on sys.path
# (prepend_sys_path) and bot.storage.migrate runs inside the project.
from bot.settings import get_settings
from bot.storage.database import create_engine_for
from bot.storage.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get(
    "configure_logger", True
):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    x_args = context.get_x_argument(as_dictionary=True)
    configured = config.get_main_option("sqlalchemy.url")
    return x_args.get("url") or configured or get_settings().database_url


def _schema() -> str | None:
    x_args = context.get_x_argument(as_dictionary=True)
    return x_args.get("schema") or config.attributes.get("schema") or None


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (``alembic upgrade head --sql``)."""
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations against the database in one transaction."""
    engine = create_engine_for(_url(), schema=_schema())
    try:
        with engine.connect() as connection:
            schema = _schema()
            if connection.dialect.name == "postgresql":
                # the bot's statement time limit is for conversations, not for migrations
                connection.execute(text("SET statement_timeout = 0"))
                connection.commit()  # alembic must open (and commit) its own transaction
            if schema and connection.dialect.name == "postgresql":
                # The name was checked against SCHEMA_PATTERN by create_engine_for.
                connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                connection.commit()
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
