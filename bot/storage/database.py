"""Lazy database connections, one transaction per unit of work.

Nothing connects at import time: a `Database` builds its engine on first use, from an
explicit URL or from `get_settings().database_url`. `session_scope()` commits or
rolls back as a whole, and turns "the database cannot be reached" into
`DatabaseUnavailable`, so a Rasa action can tell the patient their request was not
saved instead of pretending it was.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    StatementError,
)
from sqlalchemy.exc import (
    TimeoutError as PoolTimeoutError,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from bot.settings import get_settings

SCHEMA_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_UNAVAILABLE_ERRORS = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeoutError,
)


_abandon = threading.local()


@contextmanager
def abandon_when(event: threading.Event) -> Iterator[None]:
    """Commit nothing in this thread once `event` is set (the caller gave up waiting).

    A caller on the event loop waits for database work with a time budget; when the
    budget runs out it keeps the record elsewhere (a spool) and sets `event`. A worker
    thread that wakes up later must then not commit a second copy: `session_scope`
    raises `DatabaseUnavailable` instead of committing.
    """
    previous = getattr(_abandon, "event", None)
    _abandon.event = event
    try:
        yield
    finally:
        _abandon.event = previous


def _abandoned() -> bool:
    event = getattr(_abandon, "event", None)
    return bool(event is not None and event.is_set())


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached or opened; nothing was saved.

    Raised instead of SQLAlchemy's `OperationalError` and friends so callers need
    not import SQLAlchemy to tell a patient "we could not save this, please call".
    The original error is chained as `__cause__`.
    """


def is_data_error(exc: BaseException) -> bool:
    """Whether the database refused a record's content (not an outage).

    A value too long, invalid characters, a broken constraint; psycopg2 refuses NUL
    characters with a plain ValueError before sending anything.
    """
    if isinstance(exc, (DataError, IntegrityError)):
        return True
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return isinstance(exc.orig, (ValueError, TypeError))
    return isinstance(exc, ValueError)


def _check_schema(schema: str | None) -> str | None:
    if schema is not None and not SCHEMA_PATTERN.match(schema):
        raise ValueError(f"schema must match {SCHEMA_PATTERN.pattern}, got {schema!r}")
    return schema


def create_engine_for(
    url: str, *, schema: str | None = None, echo: bool = False
) -> Engine:
    """Build an engine with the options each backend needs.

    SQLite: the file's parent folder is created and connections may cross threads
    (Rasa runs actions on an event loop, the outbox in worker threads), foreign
    keys are enforced, and the file is in write-ahead-log mode: the Rasa server, the
    action server and the console share it, and a commit no longer waits for every
    reader to finish (still one fsync per commit: a booking shown is a booking kept).
    PostgreSQL: stale pooled connections are detected before use,
    connecting, waiting for a pooled connection and each statement give up after the
    limits in settings (DB_*_TIMEOUT_SECONDS), so a stalled server fails like a
    refused one, and `schema` (if given) becomes the `search_path`, which isolates
    test runs in one database. Errors never carry bound values (patient data).

    Args:
        url: SQLAlchemy database URL.
        schema: PostgreSQL schema to use instead of `public`; ignored for SQLite.
        echo: Log every SQL statement (debugging only).

    Returns:
        An engine; it has not connected yet.

    Raises:
        DatabaseUnavailable: The SQLite file's folder cannot be created.
        ValueError: `schema` is not a plain lower-case identifier.
    """
    _check_schema(schema)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True, "hide_parameters": True}
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        connect_args["check_same_thread"] = False
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailable(
                    f"cannot create folder for {database}: {exc}"
                ) from exc
            # SQLAlchemy 1.4 opens a file database anew for every session (NullPool): a
            # connection, four pragmas and a close on each read and write of every message.
            # A pool keeps them open (SQLAlchemy 2.0's default); each is used by one thread
            # at a time, and SQLite's own locking orders the writers.
            kwargs["poolclass"] = QueuePool
            kwargs["pool_timeout"] = get_settings().db_pool_timeout_seconds
    elif parsed.get_backend_name() == "postgresql":
        kwargs["pool_pre_ping"] = True
        kwargs["pool_timeout"] = get_settings().db_pool_timeout_seconds
        connect_args.update(postgres_connect_args(url, schema))
    per_transaction: list[str] = []
    if parsed.get_backend_name() == "postgresql" and behind_pgbouncer():
        # PgBouncer refuses libpq's startup `options`, and in transaction mode a plain SET
        # would stay on the server connection for whoever gets it next: each transaction
        # sets its own statement timeout and search_path instead (SET LOCAL ends with it).
        connect_args.pop("options", None)
        per_transaction = transaction_settings(schema)
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if per_transaction:
        event.listen(engine, "begin", functools.partial(_set_local, per_transaction))
    return engine


def behind_pgbouncer() -> bool:
    """DATABASE_URL points at PgBouncer in transaction mode (DB_POOLER=pgbouncer)."""
    return get_settings().db_pooler == "pgbouncer"


def transaction_settings(schema: str | None = None) -> list[str]:
    """The SET LOCAL statements each transaction runs behind a transaction-mode pooler."""
    statement_ms = int(get_settings().db_statement_timeout_seconds * 1000)
    statements = [f"SET LOCAL statement_timeout = {statement_ms}"]
    if schema:
        statements.append(f"SET LOCAL search_path = {schema}")  # checked by _check_schema
    return statements


def _set_local(statements: list[str], connection: Any) -> None:
    for statement in statements:
        connection.exec_driver_sql(statement)


def postgres_connect_args(url: str, schema: str | None = None) -> dict[str, Any]:
    """Connection options (libpq) that bound every wait on PostgreSQL, from settings.

    The URL's own ``options`` (e.g. a ``search_path``) are kept: connect arguments
    replace URL query values, so both are merged here.
    """
    settings = get_settings()
    options = make_url(url).query.get("options") or ""
    if isinstance(options, tuple):
        options = " ".join(options)
    statement_ms = int(settings.db_statement_timeout_seconds * 1000)
    parts = [options, f"-c statement_timeout={statement_ms}"]
    if schema:
        parts.append(f"-csearch_path={schema}")
    return {
        "connect_timeout": max(1, round(settings.db_connect_timeout_seconds)),
        "options": " ".join(part for part in parts if part),
        # a connection that silently died, or a network that drops everything, is
        # noticed instead of waited on forever (sent data unacknowledged for 10 s)
        "tcp_user_timeout": 10_000,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }


def redacted_url(url: str) -> str:
    """The URL without its password, for logs and for naming the spool of a database."""
    return re.sub(r"//([^:/@]+):[^@]+@", r"//\1:***@", url)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")  # kept in the file; "memory" for :memory:
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


class Database:
    """One database: its URL, its lazily built engine and its sessions.

    Args:
        url: SQLAlchemy URL; `None` means `get_settings().database_url`, read on
            first use rather than at construction.
        schema: PostgreSQL schema to work in (tests use a fresh one per run).
        echo: Log SQL statements.
    """

    def __init__(
        self, url: str | None = None, *, schema: str | None = None, echo: bool = False
    ):
        """Remember where the database is; nothing connects until first use."""
        self._url = url
        self.schema = _check_schema(schema)
        self.echo = echo
        self._engine: Engine | None = None
        self._sessionmaker: sessionmaker | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The database URL, from settings unless one was given."""
        return self._url or get_settings().database_url

    @property
    def engine(self) -> Engine:
        """The engine, created on first access."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = create_engine_for(
                        self.url, schema=self.schema, echo=self.echo
                    )
        return self._engine

    @property
    def dialect(self) -> str:
        """Backend name, e.g. ``sqlite`` or ``postgresql`` (no connection needed)."""
        return str(make_url(self.url).get_backend_name())

    def session(self) -> Session:
        """Return a new session; prefer `session_scope()`, which also commits."""
        if self._sessionmaker is None:
            self._sessionmaker = sessionmaker(
                bind=self.engine, expire_on_commit=False, future=True
            )
        return self._sessionmaker()

    @contextmanager
    def session_scope(self) -> Iterator[Session]:
        """Run a unit of work in one transaction: commit at the end, roll back on error.

        Yields:
            A session whose changes are committed when the block exits normally.

        Raises:
            DatabaseUnavailable: The database could not be reached, opened or was lost
                mid-transaction; nothing from the block was committed.
        """
        session = self.session()
        try:
            yield session
            if _abandoned():
                raise DatabaseUnavailable("gave up waiting for the database; nothing committed")
            session.commit()
        except _UNAVAILABLE_ERRORS as exc:
            _quiet_rollback(session)
            raise DatabaseUnavailable(
                f"database unavailable: {_first_line(exc)}"
            ) from exc
        except BaseException:
            _quiet_rollback(session)
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close pooled connections (tests, and before a process forks)."""
        if self._engine is not None:
            self._engine.dispose()


def _quiet_rollback(session: Session) -> None:
    with suppress(Exception):  # the connection may already be gone
        session.rollback()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_databases: dict[tuple[str | None, str | None], Database] = {}
_databases_lock = threading.Lock()


def get_database(url: str | None = None, schema: str | None = None) -> Database:
    """Return the shared `Database` for this URL and schema (one pool per process).

    Args:
        url: SQLAlchemy URL; `None` means the URL from settings.
        schema: PostgreSQL schema, see `Database`.

    Returns:
        The same object for the same arguments, so connection pools are reused.
    """
    key = (url, schema)
    with _databases_lock:
        if key not in _databases:
            _databases[key] = Database(url, schema=schema)
        return _databases[key]


@contextmanager
def session_scope(
    url: str | None = None, schema: str | None = None
) -> Iterator[Session]:
    """Shortcut for ``get_database(url, schema).session_scope()``.

    Yields:
        A session committed at the end of the block.

    Raises:
        DatabaseUnavailable: The database could not be reached.
    """
    with get_database(url, schema).session_scope() as session:
        yield session
