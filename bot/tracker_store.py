"""Conversation store that never silently loses a conversation, nor stops the server.

Rasa's SQLTrackerStore, configured from the one `DATABASE_URL` setting, with the changes
that matter to a clinic:

* Start-up fails fast with a clear error when the database is unreachable or silent
  (Rasa would retry forever, or a constructor error would make Rasa fall back to memory).
* Database work runs in daemon threads with a total time budget
  (DB_OPERATION_TIMEOUT_SECONDS), so a stalled database never freezes the event loop:
  it degrades like a refused connection.
* On an outage a conversation is written to a private spool file of this database
  (`bot.spool`), kept in memory so the dialogue keeps its context, staff are alerted
  once per outage, and the spool is stored on a timer (SPOOL_FLUSH_SECONDS) and at
  start-up, each conversation on its own.
* A record the database refuses (a NUL character or a 300-character sender id, a value
  too long) is a bad record, not an outage and never an exit (Rasa's `session_scope`
  takes any ValueError for a missing schema and calls `sys.exit`): it is kept in memory,
  logged without personal data, and if it was spooled it is quarantined and staff alerted.
* With several Rasa servers (SPOOL_REDIS_URL or REDIS_URL set), a spooled conversation is
  also shared through Redis (`bot.shared_spool`): the server that answers the patient next
  continues the newest copy, so context and order hold while the database is away; and
  after every save the conversation's latest copy is put there too, so the first message
  of an outage is answered with the turn another server stored, not this server's older one.
* After a conversation is stored, its row in `conversation_summaries` (the staff
  console's list) is brought up to date in the background (`bot.storage.summaries`):
  a summary never slows or fails a save.
* A long conversation is loaded as its recent turns and the slots' values
  (`bot.storage.window`), so a message costs the same at turn 100 as at turn 1; the
  events added are stored after the whole conversation, which stays in the database.
* Rasa's SQL event broker in the same database uses the same `events` table name and
  corrupts the store: that configuration is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Dict, Iterable, Iterator, List, Optional, TypeVar

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore, ensure_schema_exists
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot import spool
from bot.log_privacy import install_log_privacy
from bot.settings import Settings, get_settings
from bot.shared_spool import SharedSpool
from bot.storage import window
from bot.storage.database import DatabaseUnavailable, create_engine_for, is_data_error, redacted_url
from bot.storage.offload import DatabaseStalled, run_blocking
from bot.storage.summaries import SummaryWriter

logger = logging.getLogger(__name__)
CONNECT_ATTEMPTS = 3
CONNECT_DELAY_SECONDS = 2.0
RECENT_CONVERSATIONS = 2000  # kept in memory so an outage does not cut a conversation short
T = TypeVar("T")


class ConversationStoreUnavailable(RuntimeError):
    """The conversation database cannot be used; the server must not start without it."""


def is_bad_record(exc: BaseException) -> bool:
    """Whether the database refused this record's content (not an outage)."""
    return is_data_error(exc)


def is_outage(exc: BaseException) -> bool:
    """Whether the database is away, stalled or broken as a whole."""
    return isinstance(exc, (SQLAlchemyError, OSError, DatabaseStalled, DatabaseUnavailable))


def _same_time(a: Optional[float], b: Optional[float]) -> bool:
    """Two event timestamps as stored (a float column) are the same moment."""
    return a is not None and b is not None and abs(a - b) < 1e-6


def error_kind(exc: BaseException) -> str:
    """The error's class names only: messages may quote patient data."""
    orig = getattr(exc, "orig", None)
    return f"{type(exc).__name__}/{type(orig).__name__}" if orig is not None else type(exc).__name__


def error_summary(exc: BaseException) -> str:
    """First line of a connection-level error (no bound values: engines hide them)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300]


def check_reachable(url: str, attempts: int = CONNECT_ATTEMPTS) -> None:
    """Connect once (a few tries); raise `ConversationStoreUnavailable` otherwise."""
    last: Optional[BaseException] = None
    try:
        engine = create_engine_for(url)
    except DatabaseUnavailable as exc:
        raise ConversationStoreUnavailable(f"cannot use {redacted_url(url)}: {exc}") from exc
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
        f"cannot reach the conversation database {redacted_url(url)}: "
        f"{error_summary(last) if last else 'no answer'}. "
        "Refusing to start: conversations would not be kept. Check DATABASE_URL."
    )


class ClinicTrackerStore(SQLTrackerStore):
    """SQLTrackerStore on `DATABASE_URL`, with spooling and alerts (see module docstring)."""

    engine: sa.engine.Engine

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
        self.settings: Settings = settings
        self.url = url or settings.database_url
        self._refuse_shared_event_table(event_broker)
        install_log_privacy()  # the Rasa server's start-up hook: this store loads first
        check_reachable(self.url)
        parsed = make_url(self.url)
        root = Path(spool_dir) if spool_dir else settings.data_dir / "spool" / "trackers"
        self.spool_dir = root / spool.database_folder(self.url)
        self.quarantine_dir = self.spool_dir / spool.QUARANTINE
        self._pending: Dict[str, DialogueStateTracker] = {}
        self._recent: OrderedDict[str, DialogueStateTracker] = OrderedDict()
        self._reported: OrderedDict[str, None] = OrderedDict()
        self._locks: Dict[str, List[Any]] = {}
        self._flusher: Optional[asyncio.Task[None]] = None
        self._wake: Optional[asyncio.Event] = None
        self.degraded_since: Optional[float] = None
        self.shared = SharedSpool.from_settings(settings, self.url)
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
        # Rasa's engine has no timeouts and logs bound values: use the project's.
        self.engine.dispose()
        self.engine = create_engine_for(self.url)
        self.sessionmaker = sessionmaker(bind=self.engine)
        self.summaries = SummaryWriter(self.engine)
        self._check_schema()
        self._warn_about_unassigned_spool(root)
        self._load_spool()
        self._store_spooled_at_start()
        if self._pending:
            self._start_flusher()

    def _refuse_shared_event_table(self, event_broker: Optional[EventBroker]) -> None:
        engine = getattr(event_broker, "engine", None)
        if engine is not None and str(engine.url) == str(make_url(self.url)):
            raise ConversationStoreUnavailable(
                "the SQL event broker points at the conversation database: both use a table "
                "named 'events' and the tracker store breaks. Give the broker its own database."
            )

    def _check_schema(self) -> None:
        with self.sessionmaker() as session:
            try:
                ensure_schema_exists(session)
            except ValueError as exc:
                raise ConversationStoreUnavailable(f"PostgreSQL schema {exc} does not exist") from exc

    @contextlib.contextmanager
    def session_scope(self) -> Iterator[Session]:
        """A session, closed at the end; errors reach the caller (Rasa's exits instead)."""
        session = self.sessionmaker()
        try:
            yield session
        finally:
            session.close()

    async def close(self) -> None:
        """Stop the spool timer and close connections (tests; Rasa never closes stores)."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await asyncio.to_thread(self.summaries.close)
        if self.shared is not None:
            await self.shared.close()
        self.engine.dispose()

    # -- blocking database work (worker threads) ------------------------------------------

    def _save_sync(self, tracker: DialogueStateTracker, abandoned: threading.Event) -> None:
        with self.session_scope() as session:
            for event in self._additional_events(session, tracker):
                data = event.as_dict()
                session.add(
                    self.SQLEvent(
                        sender_id=tracker.sender_id,
                        type_name=event.type_name,
                        timestamp=data.get("timestamp"),
                        intent_name=(data.get("parse_data") or {}).get("intent", {}).get(INTENT_NAME_KEY),
                        action_name=data.get("name"),
                        data=json.dumps(data),
                    )
                )
            if abandoned.is_set():  # the caller gave up (stall) and spooled it: no late write
                raise DatabaseStalled("abandoned after the time budget")
            session.commit()

    def _additional_events(self, session: Session, tracker: DialogueStateTracker) -> Iterator[Any]:
        """The tracker's events not stored yet, also when another server stored some meanwhile.

        Rasa counts the stored events and stores the tracker's events past that count, which
        holds while the tracker is the stored conversation plus this turn. With two Rasa
        servers and a database outage it is not: a server answering from its memory holds
        an older copy, and the count would cut its new events (the patient's message lost)
        or repeat old ones. So the tracker's event at the stored count must be the stored
        last event; if not, the events stored for this sender are compared one by one
        (type and timestamp) and only the missing ones are stored, after the rest.
        """
        query = self._event_query(session, tracker.sender_id, fetch_events_from_all_sessions=False)
        count = query.count()
        last = query.with_entities(self.SQLEvent.timestamp).order_by(None).order_by(self.SQLEvent.id.desc()).first()
        lined_up = window.unstored(tracker.events, count, last[0] if last else None, _same_time)
        if lined_up is not None:
            return iter(lined_up)
        stored = {
            (type_name, round(timestamp or 0.0, 6))
            for type_name, timestamp in session.query(self.SQLEvent.type_name, self.SQLEvent.timestamp)
            .filter(self.SQLEvent.sender_id == tracker.sender_id)
            .all()
        }
        events = window.real_events(tracker.events)
        missing = [event for event in events if (event.type_name, round(event.timestamp or 0.0, 6)) not in stored]
        logger.warning(
            "conversation %s was stored meanwhile by another server: storing its %d missing event(s) after the rest",
            spool.reference(tracker.sender_id)[:12], len(missing),
        )
        return iter(missing)

    def _retrieve_sync(
        self, sender_id: str, all_sessions: bool, _abandoned: threading.Event
    ) -> Optional[DialogueStateTracker]:
        with self.session_scope() as session:
            query = self._event_query(session, sender_id, fetch_events_from_all_sessions=all_sessions)
            events = None if all_sessions else window.window_events(self.SQLEvent, query)
            if events is None:
                events = [json.loads(data) for (data,) in query.with_entities(self.SQLEvent.data)]
        if self.domain and events:
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        return None

    def _keys_sync(self, _abandoned: threading.Event) -> List[str]:
        with self.session_scope() as session:
            return [sender_id for (sender_id,) in session.query(self.SQLEvent.sender_id).distinct().all()]

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking database work off the event loop, within the time budget.

        `function` gets a last argument, an event set when the budget ran out, so a write
        that wakes up after the caller spooled it does not commit a second copy.
        """
        call = functools.partial(function, *args)
        return await run_blocking(call, self.settings.db_operation_timeout_seconds)

    @contextlib.asynccontextmanager
    async def _conversation_lock(self, sender_id: str) -> AsyncIterator[None]:
        """One write at a time per conversation (a save and the spool timer may meet)."""
        entry = self._locks.setdefault(sender_id, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                self._locks.pop(sender_id, None)

    # -- spool ------------------------------------------------------------------------------

    def _spool_file(self, sender_id: str) -> Path:
        return self.spool_dir / f"{spool.reference(sender_id)}.json"

    def _write_spool(self, tracker: DialogueStateTracker) -> None:
        events = [event.as_dict() for event in tracker.events]
        text = json.dumps({"sender_id": tracker.sender_id, "events": events})
        spool.write_private(self._spool_file(tracker.sender_id), spool.seal(text, self.settings))

    def _warn_about_unassigned_spool(self, root: Path) -> None:
        old = list(root.glob("*.json")) if root.exists() else []
        if old:
            logger.warning(
                "%d conversation file(s) in %s were spooled by an older version, which did not "
                "record their database: they are not replayed; a person should check them",
                len(old),
                root,
            )

    def _load_spool(self) -> None:
        if not self.spool_dir.exists():
            return
        spool.private_dir(self.spool_dir)
        for path in sorted(self.spool_dir.glob("*.json")):
            try:
                data = json.loads(spool.unseal(path.read_bytes(), self.settings))
                tracker = DialogueStateTracker.from_dict(
                    data["sender_id"], data["events"], self.domain.slots if self.domain else None
                )
            except (ValueError, KeyError, TypeError) as exc:
                self._quarantine_file(path, path.stem[:12], exc)
                continue
            self._pending[tracker.sender_id] = tracker
        if self._pending:
            logger.warning("%d conversation(s) spooled during an outage will be stored", len(self._pending))

    def _store_spooled_at_start(self) -> None:
        for sender_id, tracker in list(self._pending.items()):
            try:
                self._save_sync(tracker, threading.Event())
            except Exception as exc:  # noqa: BLE001 - sorted out by _settle
                if not self._settle(sender_id, tracker, exc):
                    return
            else:
                self._settle(sender_id, tracker, None)
                self.summaries.submit(sender_id)
        self._report_flushed()

    async def flush_pending(self) -> int:
        """Store conversations kept while the database was away; returns how many."""
        stored = 0
        for sender_id, tracker in list(self._pending.items()):
            async with self._conversation_lock(sender_id):
                if self._pending.get(sender_id) is not tracker:
                    continue  # saved meanwhile
                try:
                    await self._in_thread(self._save_sync, tracker)
                except Exception as exc:  # noqa: BLE001 - sorted out by _settle
                    if not self._settle(sender_id, tracker, exc):
                        break
                    continue
                self._settle(sender_id, tracker, None)
                await self._shared_stored(sender_id)
                self.summaries.submit(sender_id)
                stored += 1
        if stored:
            logger.warning("stored %d conversation(s) kept during a database outage", stored)
        self._report_flushed()
        return stored

    def _settle(self, sender_id: str, tracker: DialogueStateTracker, exc: Optional[BaseException]) -> bool:
        """Record how storing one spooled conversation went; False: the database is away."""
        if exc is None:
            if self._pending.get(sender_id) is tracker:
                del self._pending[sender_id]
                self._spool_file(sender_id).unlink(missing_ok=True)
            return True
        if is_bad_record(exc):
            self._pending.pop(sender_id, None)
            self._quarantine_file(self._spool_file(sender_id), spool.reference(sender_id)[:12], exc)
            return True
        if is_outage(exc):
            self._outage(exc)
            return False
        raise exc

    def _report_flushed(self) -> None:
        if not self._pending:
            self._recovered()

    def _quarantine_file(self, path: Path, ref: str, exc: BaseException) -> None:
        where = self.quarantine_dir
        try:
            if path.exists():
                where = spool.quarantine(path).parent
        except OSError:
            logger.exception("could not move spool file %s to quarantine", path.name)
        logger.error(
            "conversation %s quarantined: it cannot be stored (%s); its spool file is in %s "
            "for a person to check, other conversations are stored",
            ref,
            error_kind(exc),
            where,
        )
        threading.Thread(
            target=alert_staff,
            args=(error_kind(exc),),
            kwargs={
                "problem": "conversation quarantined",
                "effect": f"conversation {ref} could not be stored; its spool file is in {where}",
            },
            daemon=True,
        ).start()

    # -- timer ------------------------------------------------------------------------------

    def _start_flusher(self) -> None:
        """Store the spool every SPOOL_FLUSH_SECONDS until it is empty (needs a running loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # constructed outside the server's loop: the next save starts it
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush_loop())

    def _wake_flusher(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _flush_loop(self) -> None:
        assert self._wake is not None
        while self._pending:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.spool_flush_seconds)
            self._wake.clear()
            try:
                await self.flush_pending()
            except Exception:  # the timer must outlive any surprise; the spool stays on disk
                logger.exception("storing spooled conversations failed; retrying later")

    # -- outage handling -----------------------------------------------------------------

    def _outage(self, exc: BaseException, tracker: Optional[DialogueStateTracker] = None) -> None:
        if tracker is not None:
            self._pending[tracker.sender_id] = tracker
            try:
                self._write_spool(tracker)
            except OSError:
                logger.exception("could not write a conversation to the spool in %s", self.spool_dir)
            self._start_flusher()
        if self.degraded_since is None:
            self.degraded_since = time.time()
            logger.critical(
                "CONVERSATION STORE DOWN (%s): conversations are kept in %s and will be "
                "stored when the database is back",
                error_summary(exc),
                self.spool_dir,
            )
            threading.Thread(target=alert_staff, args=(error_summary(exc),), daemon=True).start()

    def _bad_record(self, sender_id: str, exc: BaseException) -> None:
        ref = spool.reference(sender_id)[:12]
        if ref in self._reported:
            return
        self._reported[ref] = None
        while len(self._reported) > RECENT_CONVERSATIONS:
            self._reported.popitem(last=False)
        logger.error(
            "conversation %s is a bad record the database refuses (%s): kept in memory only",
            ref,
            error_kind(exc),
        )

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

    def _from_memory(self, sender_id: str, exc: BaseException) -> Optional[DialogueStateTracker]:
        """After a failed read: note the failure, answer from memory (context kept)."""
        if is_bad_record(exc):
            self._bad_record(sender_id, exc)
        elif is_outage(exc):
            self._outage(exc)
        else:
            raise exc
        recent = self._recent.get(sender_id)
        return self._copy(sender_id, recent) if recent else None

    # -- Rasa's interface --------------------------------------------------------------------

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Publish the events added since the stored copy (Rasa's diff counts a window's prefix)."""
        if self.event_broker is None:
            return
        old = await self.retrieve(tracker.sender_id)
        start = window.stored_position(old.events) if old is not None else 0
        for event in window.events_from(tracker.events, start):
            self.event_broker.publish({"sender_id": tracker.sender_id, **event.as_dict()})

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Store the tracker; on an outage spool it, on a bad record keep it in memory."""
        await self.stream_events(tracker)
        sender_id = tracker.sender_id
        self._remember(tracker)
        async with self._conversation_lock(sender_id):
            try:
                await self._in_thread(self._save_sync, tracker)
            except Exception as exc:  # noqa: BLE001 - sorted below, the rest re-raised
                if is_bad_record(exc):
                    if sender_id in self._pending:
                        self._settle(sender_id, tracker, exc)  # quarantined
                    self._bad_record(sender_id, exc)
                    return
                if is_outage(exc):
                    self._outage(exc, tracker)
                    if self.shared is not None:
                        await self.shared.put(sender_id, [event.as_dict() for event in tracker.events])
                    return
                raise
            if sender_id in self._pending:
                self._pending[sender_id] = tracker
                self._settle(sender_id, tracker, None)
            await self._shared_stored(sender_id)
            if self.shared is not None:
                await self.shared.remember(sender_id, [event.as_dict() for event in tracker.events])
        self.summaries.submit(sender_id)
        if self._pending:
            self._start_flusher()
            self._wake_flusher()  # the database answers: store the rest now
        else:
            self._recovered()

    async def retrieve(self, sender_id: str) -> Optional[DialogueStateTracker]:
        """The conversation, from the spool while it has unsaved events there."""
        if sender_id in self._pending:
            tracker: Optional[DialogueStateTracker] = self._copy(sender_id, self._pending[sender_id])
        else:
            try:
                tracker = await self._in_thread(self._retrieve_sync, sender_id, False)
            except Exception as exc:  # noqa: BLE001 - sorted by _from_memory
                tracker = await self._newest(sender_id, self._from_memory(sender_id, exc), stored=True)
        return await self._newest(sender_id, tracker)

    async def retrieve_full_tracker(self, sender_id: str) -> Optional[DialogueStateTracker]:
        """The whole conversation (all sessions), spooled events included."""
        if sender_id in self._pending:
            return await self.retrieve(sender_id)
        try:
            return await self._in_thread(self._retrieve_sync, sender_id, True)
        except Exception as exc:  # noqa: BLE001 - sorted by _from_memory
            return self._from_memory(sender_id, exc)

    async def _newest(
        self, sender_id: str, tracker: Optional[DialogueStateTracker], stored: bool = False
    ) -> Optional[DialogueStateTracker]:
        """`tracker`, or another server's copy in Redis if that one is newer.

        `stored=False`: the copy another server spooled during the outage. `stored=True`
        (answering from memory during an outage): the copy another server stored last, so
        the first message of an outage is not answered without the turn before it.
        Only for answering the next message: the full history (`retrieve_full_tracker`, the
        API and console) stays what this server has, so a shared recent window never hides it.
        """
        if self.shared is None:
            return tracker
        newest = tracker.events[-1].timestamp if tracker is not None and tracker.events else None
        read = self.shared.recent if stored else self.shared.newer
        events = await read(sender_id, newest)
        if events is None:
            return tracker
        logger.warning("conversation %s continues from the copy another server %s",
                       spool.reference(sender_id)[:12], "stored last" if stored else "spooled")
        return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots if self.domain else None)

    async def _shared_stored(self, sender_id: str) -> None:
        if self.shared is not None:
            await self.shared.stored(sender_id)

    async def keys(self) -> Iterable[str]:
        """Conversation ids, spooled ones included."""
        try:
            stored = set(await self._in_thread(self._keys_sync))
        except Exception as exc:  # noqa: BLE001 - an outage leaves the spooled ids
            if not is_outage(exc):
                raise
            self._outage(exc)
            stored = set()
        return sorted(stored | set(self._pending))


def alert_staff(
    error: str,
    problem: str = "conversation store unreachable",
    effect: str = "conversations are kept in a local spool and stored when the database is back",
) -> None:
    """Tell staff directly (the outbox lives in the database, which may be unreachable)."""
    from bot.notify.direct import send_now

    send_now("system", {"problem": problem, "error": error[:500], "effect": effect}, "conversation-store")
