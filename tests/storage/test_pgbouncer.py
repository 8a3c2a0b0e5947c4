"""PostgreSQL behind a real PgBouncer in transaction mode (DB_POOLER=pgbouncer).

Debian's pgbouncer (`make pgbouncer` installs it) runs on a free loopback port in front of the
local PostgreSQL with a pool of ONE server connection, so every client shares it: a setting
that leaked from one transaction to the next would show. Without DB_POOLER the connection is
refused (PgBouncer rejects libpq's startup options); with it, bookings are stored and read
back, each schema's transactions see only their own tables, and the statement time-out still
cancels a query that runs too long.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from bot.settings import Settings
from bot.storage.database import Database
from bot.storage.migrate import upgrade
from bot.storage.repository import Repository
from tests.conftest import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@pytest.fixture(scope="module")
def pgbouncer_url(postgres_url: str) -> Iterator[str]:
    """A PgBouncer (transaction mode, one server connection) in front of the test database."""
    if not os.path.exists(PGBOUNCER):
        pytest.fail("pgbouncer is not installed: run `make pgbouncer` (Debian's package)")
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    folder.chmod(0o777)  # pgbouncer refuses to run as root: it runs as nobody and logs here
    port = free_port()
    (folder / "userlist.txt").write_text('"postgres" ""\n', encoding="utf-8")
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        "test = host=127.0.0.1 port=5432 dbname=test\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder}/userlist.txt\n"
        "pool_mode = transaction\ndefault_pool_size = 1\nmax_client_conn = 50\n"
        f"logfile = {folder}/pgbouncer.log\npidfile = {folder}/pgbouncer.pid\n",
        encoding="utf-8",
    )
    for path in folder.iterdir():
        path.chmod(0o644)
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen([PGBOUNCER, *user, str(folder / "pgbouncer.ini")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (folder / "pgbouncer.log").read_text() if (folder / "pgbouncer.log").exists() else ""
                pytest.fail(f"pgbouncer did not start: {log[-2000:]}")
            time.sleep(0.1)
    yield f"postgresql://postgres@127.0.0.1:{port}/test"
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def schemas(postgres_url: str) -> Iterator[Callable[[], str]]:
    """Migrated schemas on the real server (made directly, used through PgBouncer)."""
    made: list[str] = []

    def make() -> str:
        schema = f"t_pgb_{uuid.uuid4().hex[:12]}"
        upgrade(postgres_url, schema=schema)
        made.append(schema)
        return schema

    yield make
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        for schema in made:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def test_without_the_setting_pgbouncer_refuses_the_connection(
    pgbouncer_url: str, schemas: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DB_POOLER", raising=False)
    db = Database(pgbouncer_url, schema=schemas())
    with pytest.raises(OperationalError, match="unsupported startup parameter"):
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    db.dispose()


def test_bookings_are_stored_and_read_through_pgbouncer(
    pgbouncer_url: str, schemas: Callable[[], str], booking_fields: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DB_POOLER", "pgbouncer")
    db = Database(pgbouncer_url, schema=schemas())
    repo = Repository(db, settings=Settings.from_env({"BOT_ENV": "test"}))
    booking = repo.create_booking_request(**booking_fields())
    stored = repo.get_booking(booking.reference)
    assert stored is not None and stored.reference == booking.reference
    db.dispose()


def test_each_transaction_sees_only_its_own_schema_on_a_shared_server_connection(
    pgbouncer_url: str, schemas: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_POOLER", "pgbouncer")
    first, second = Database(pgbouncer_url, schema=schemas()), Database(pgbouncer_url, schema=schemas())
    for db, note in ((first, "first"), (second, "second"), (first, "first again")):
        with db.engine.begin() as connection:
            connection.execute(text("CREATE TABLE IF NOT EXISTS pgb_probe (note text)"))
            connection.execute(text("INSERT INTO pgb_probe (note) VALUES (:n)"), {"n": note})
    with first.engine.connect() as connection:
        assert connection.execute(text("SELECT note FROM pgb_probe ORDER BY note")).scalars().all() == [
            "first", "first again"]
    with second.engine.connect() as connection:
        assert connection.execute(text("SELECT note FROM pgb_probe")).scalars().all() == ["second"]
        # the search_path was this transaction's own: nothing stays on the server connection
        assert connection.execute(text("SHOW statement_timeout")).scalar_one() != "0"
    first.dispose()
    second.dispose()


def test_the_statement_time_out_still_cancels_a_long_query(
    pgbouncer_url: str, schemas: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_POOLER", "pgbouncer")
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_SECONDS", "0.5")
    db = Database(pgbouncer_url, schema=schemas())
    start = time.monotonic()
    with pytest.raises(OperationalError, match="statement timeout"):
        with db.engine.connect() as connection:
            connection.execute(text("SELECT pg_sleep(5)"))
    assert time.monotonic() - start < 4
    db.dispose()
