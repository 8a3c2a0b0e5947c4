"""Conversation store that never silently loses a conversation.

Rasa's SQLTrackerStore, configured from the one `DATABASE_URL` setting, with three
changes that matter to a clinic:

* Start-up fails fast with a clear error when the database is unreachable (Rasa would
  retry forever, or a constructor error would make Rasa fall back to memory).
* Rasa wraps every store in `FailSafeTrackerStore`, which on any database error logs one
  line and keeps going on an in-memory store: the bot answers, nothing is kept. Here a
  failed save is caught first: the conversation is written to a local spool file, kept in
  memory so the dialogue keeps its context, staff are alerted once per outage, and every
  later save writes the spooled events to the database as soon as it answers again.
* Rasa's SQL event broker in the same database uses the same `events` table name and
  corrupts the store: that configuration is refused.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Iterable, Optional

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.settings import get_settings

logger = logging.getLogger(__name__)
CONNECT_ATTEMPTS = 3
CONNECT_DELAY_SECONDS = 2.0
RECENT_CONVERSATIONS = 2000  # kept in memory so an outage does not cut a conversation short


class ConversationStoreUnavailable(RuntimeError):
    """The conversation database cannot be used; the server must not start without it."""


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]+@", r"//\1:***@", url)


def check_reachable(url: str, attempts: int = CONNECT_ATTEMPTS) -> None:
    """Connect once (a few tries); raise `ConversationStoreUnavailable` otherwise."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    postgres = parsed.drivername.startswith("postgresql")
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5} if postgres else {})
    last: Optional[Exception] = None
    try:
        for attempt in range(attempts):
            try:
                with engine.connect() as connection:
                    connection.execute(sa.text("SELECT 1"))
                return
            except SQLAlchemyError as exc:
                last = exc
                if attempt + 1 < attempts:
                    time.sleep(CONNECT_DELAY_SECONDS)
    finally:
        engine.dispose()
    raise ConversationStoreUnavailable(
        f"cannot reach the conversation database {_redact(url)}: {last}. "
        "Refusing to start: conversations would not be kept. Check DATABASE_URL."
    )


class ClinicTrackerStore(SQLTrackerStore):
    """SQLTrackerStore on `DATABASE_URL`, with spooling and alerts (see module docstring)."""

    def __init__(
        self,
        domain: Optional[Domain] = None,
        host: Optional[str] = None,
        event_broker: Optional[EventBroker] = None,
        url: Optional[str] = None,
        spool_dir: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        """Connect to `url` (default: settings' DATABASE_URL) or refuse to start."""
        settings = get_settings()
        self.url = url or settings.database_url
        self._refuse_shared_event_table(event_broker)
        check_reachable(self.url)
        parsed = make_url(self.url)
        self.spool_dir = Path(spool_dir) if spool_dir else settings.data_dir / "spool" / "trackers"
        self._pending: Dict[str, DialogueStateTracker] = {}
        self._recent: OrderedDict[str, DialogueStateTracker] = OrderedDict()
        self._lock = threading.Lock()
        self.degraded_since: Optional[float] = None
        super().__init__(
            domain=domain,
            dialect=parsed.drivername,
            host=parsed.host,
            port=parsed.port,
            db=parsed.database or "",
            username=parsed.username,
            password=parsed.password,
            event_broker=event_broker,
            query=dict(parsed.query) or None,
        )
        self._load_spool()

    def _refuse_shared_event_table(self, event_broker: Optional[EventBroker]) -> None:
        engine = getattr(event_broker, "engine", None)
        if engine is not None and str(engine.url) == str(make_url(self.url)):
            raise ConversationStoreUnavailable(
                "the SQL event broker points at the conversation database: both use a table "
                "named 'events' and the tracker store breaks. Give the broker its own database."
            )

    # -- spool -------------------------------------------------------------------------

    def _spool_file(self, sender_id: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", sender_id)[:150]
        return self.spool_dir / f"{safe}.json"

    def _write_spool(self, tracker: DialogueStateTracker) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        events = [event.as_dict() for event in tracker.events]
        data = {"sender_id": tracker.sender_id, "events": events}
        self._spool_file(tracker.sender_id).write_text(json.dumps(data), encoding="utf-8")

    def _load_spool(self) -> None:
        if not self.spool_dir.exists():
            return
        for path in sorted(self.spool_dir.glob("*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            tracker = DialogueStateTracker.from_dict(
                data["sender_id"], data["events"], self.domain.slots if self.domain else None
            )
            self._pending[tracker.sender_id] = tracker
        if self._pending:
            logger.warning("%d conversation(s) spooled during an outage will be stored", len(self._pending))

    async def flush_pending(self) -> int:
        """Store conversations kept while the database was away; returns how many."""
        stored = 0
        for sender_id, tracker in list(self._pending.items()):
            await super().save(tracker)
            self._pending.pop(sender_id, None)
            self._spool_file(sender_id).unlink(missing_ok=True)
            stored += 1
        if stored:
            logger.warning("stored %d conversation(s) kept during a database outage", stored)
        return stored

    # -- outage handling -----------------------------------------------------------------

    def _outage(self, exc: Exception, tracker: Optional[DialogueStateTracker] = None) -> None:
        if tracker is not None:
            self._pending[tracker.sender_id] = tracker
            try:
                self._write_spool(tracker)
            except OSError:
                logger.exception("could not spool conversation %s to disk", tracker.sender_id)
        if self.degraded_since is None:
            self.degraded_since = time.time()
            logger.critical(
                "CONVERSATION STORE DOWN (%s): conversations are kept in %s and will be "
                "stored when the database is back",
                exc,
                self.spool_dir,
            )
            threading.Thread(target=alert_staff, args=(str(exc),), daemon=True).start()

    def _remember(self, tracker: DialogueStateTracker) -> None:
        self._recent[tracker.sender_id] = tracker
        self._recent.move_to_end(tracker.sender_id)
        while len(self._recent) > RECENT_CONVERSATIONS:
            self._recent.popitem(last=False)

    def _copy(self, sender_id: str, tracker: DialogueStateTracker) -> DialogueStateTracker:
        slots = self.domain.slots if self.domain else []
        return DialogueStateTracker.from_events(sender_id, list(tracker.events), slots)

    def _recovered(self) -> None:
        if self.degraded_since is not None:
            logger.warning(
                "conversation store is back after %.0f s", time.time() - self.degraded_since
            )
            self.degraded_since = None

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Store the tracker (and anything spooled); on a database error, spool it."""
        try:
            await self.flush_pending()
            await super().save(tracker)
        except (SQLAlchemyError, OSError) as exc:
            self._outage(exc, tracker)
            self._remember(tracker)
            return
        self._pending.pop(tracker.sender_id, None)
        self._remember(tracker)
        self._recovered()

    async def retrieve(self, sender_id: str) -> Optional[DialogueStateTracker]:
        """The conversation, from the spool while it has unsaved events there."""
        if sender_id in self._pending:
            return self._copy(sender_id, self._pending[sender_id])
        try:
            return await super().retrieve(sender_id)
        except (SQLAlchemyError, OSError) as exc:
            self._outage(exc)
            recent = self._recent.get(sender_id)  # keep the conversation's context
            return self._copy(sender_id, recent) if recent else None

    async def retrieve_full_tracker(self, sender_id: str) -> Optional[DialogueStateTracker]:
        """The whole conversation (all sessions), spooled events included."""
        if sender_id in self._pending:
            return await self.retrieve(sender_id)
        try:
            return await super().retrieve_full_tracker(sender_id)
        except (SQLAlchemyError, OSError) as exc:
            self._outage(exc)
            return None

    async def keys(self) -> Iterable[str]:
        """Conversation ids, spooled ones included."""
        try:
            stored = set(await super().keys())
        except (SQLAlchemyError, OSError) as exc:
            self._outage(exc)
            stored = set()
        return sorted(stored | set(self._pending))


def alert_staff(error: str) -> None:
    """Tell staff directly (the outbox lives in the unreachable database)."""
    from bot.notify.outbox import build_notifiers

    payload = {
        "problem": "conversation store unreachable",
        "error": error[:500],
        "effect": "conversations are kept in a local spool and stored when the database is back",
    }
    try:
        notifiers = build_notifiers(get_settings())
    except Exception:  # misconfigured notifiers must not hide the outage
        logger.exception("cannot build notifiers for the outage alert")
        return
    for channel, notifier in notifiers.items():
        try:
            notifier.send("system", payload, f"store-outage-{int(time.time())}")
        except Exception:
            logger.exception("outage alert via %s failed", channel)
