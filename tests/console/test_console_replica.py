"""REPORTING_DATABASE_URL: the console's reports and lists come from a read replica.

A clinic group that outgrows one database host points the console's heavy reading (the
conversation list and search, the dashboard) at a replica, while everything staff write
(sign-in, notes, statuses) and the live inbox stay on DATABASE_URL. Here the "replica" is a
second migrated database holding different rows, so each page shows where it read from.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from console_seed import add_users, seed_clinic, summary
from console_support import ConsoleServer, RecordingHandoff, console_settings, serve

from bot.console.app import create_app
from bot.storage.database import Database
from bot.storage.migrate import upgrade
from bot.storage.models import utcnow


def test_lists_and_dashboard_read_the_replica_and_writes_stay_on_the_primary(
    console_db: Database, tmp_path: Any
) -> None:
    users = add_users(console_db)
    ids = seed_clinic(console_db)
    replica_url = f"sqlite:///{tmp_path / 'replica.db'}"
    upgrade(replica_url)
    replica = Database(replica_url)
    summary(replica, "web:replicaonly01", utcnow() - timedelta(hours=1), topics="sciatica")
    settings = console_settings(REPORTING_DATABASE_URL=replica_url)
    url, stop = serve(create_app(console_db, settings=settings, handoff=RecordingHandoff()))
    try:
        server = ConsoleServer(url, console_db, users, ids, RecordingHandoff())
        session = server.login("receptionist")  # the sign-in is written to the primary
        listed = session.get(url + "/conversations").text
        assert "web:replicaonly01" in listed and ids["red"] not in listed
        assert ">1 conversation." in listed
        # the inbox (live work) still comes from the primary
        assert "BK-7Q4M2" in session.get(url + "/").text
        # the dashboard counts the replica's one conversation, not the primary's booking
        dashboard = " ".join(re.sub(r"<[^>]+>", " ", session.get(url + "/dashboard").text).split())
        assert "1 Conversations" in dashboard and "0 Booking requests" in dashboard
    finally:
        stop()
        replica.dispose()
