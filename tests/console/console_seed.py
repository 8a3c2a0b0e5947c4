"""Sample clinic data for the console's tests, browser tests and screenshots.

Writes rows the way the assistant would: tracker events in Rasa's own `events` table
(created with Rasa's SQLTrackerStore model), conversation summaries, bookings, handoffs,
alerts with their flags, and answer feedback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore

from bot.console.auth import hash_password
from bot.storage import console as store
from bot.storage.database import Database
from bot.storage.models import (
    AnswerFeedback,
    BookingRequest,
    ConversationSummary,
    HandoffRequest,
    RedFlagAlert,
    RedFlagAlertFlag,
    StaffUser,
    utcnow,
)

PASSWORD = "correct horse battery"
XSS_SCRIPT = "<script>window.__xss = 1</script>hello"
XSS_IMG = '<img src=x onerror="window.__xss = 2">'


def create_events_table(db: Database) -> None:
    """Rasa's tracker store table, exactly as Rasa defines it."""
    SQLTrackerStore.SQLEvent.__table__.create(db.engine, checkfirst=True)


def add_users(db: Database) -> dict[str, StaffUser]:
    """One account per role, all with PASSWORD."""
    hashed = hash_password(PASSWORD)
    users = {}
    for role, username, name in [("receptionist", "rita", "Rita Tan"),
                                 ("clinician", "colin", "Dr Colin Ng"),
                                 ("admin", "ada", "Ada Lim")]:
        users[role] = store.create_user(db, username=username, display_name=name, role=role,
                                        password_hash=hashed)
    return users


@dataclass
class Events:
    """Builds a conversation's tracker events one by one."""

    db: Database
    sender_id: str
    clock: datetime
    channel: str = "socketio"

    def _add(self, type_name: str, data: dict[str, Any], **columns: Any) -> None:
        self.clock += timedelta(seconds=20)
        data = {"event": type_name, "timestamp": self.clock.timestamp(), **data}
        table = SQLTrackerStore.SQLEvent.__table__
        with self.db.engine.begin() as connection:
            connection.execute(table.insert().values(
                sender_id=self.sender_id, type_name=type_name, timestamp=data["timestamp"],
                data=json.dumps(data), **columns))

    def user(self, text: str, intent: str, confidence: float = 0.93,
             entities: list[dict[str, Any]] | None = None) -> None:
        """A patient's message with the NLU result."""
        self._add("user", {"text": text, "input_channel": self.channel, "parse_data": {
            "text": text, "intent": {"name": intent, "confidence": confidence},
            "entities": entities or []}}, intent_name=intent)

    def bot(self, text: str, buttons: list[tuple[str, str]] = (),  # type: ignore[assignment]
            clinic: dict[str, Any] | None = None) -> None:
        """A reply shown to the patient (staff replies carry clinic.kind == 'staff')."""
        self._add("bot", {"text": text, "data": {"buttons": [
            {"title": t, "payload": p} for t, p in buttons]},
            "metadata": {"clinic": clinic} if clinic else {}})

    def slot(self, name: str, value: Any) -> None:
        """A form value or the human_takeover switch."""
        self._add("slot", {"name": name, "value": value})


def summary(db: Database, conversation_id: str, started_at: datetime, **fields: Any) -> None:
    """A conversation_summaries row."""
    values: dict[str, Any] = {"channel": "socketio", "turns": 4, "topics": "", "search_text": ""}
    values.update(fields)
    with db.session_scope() as session:
        session.add(ConversationSummary(conversation_id=conversation_id, started_at=started_at,
                                        last_event_at=started_at + timedelta(minutes=5),
                                        events_seen=10, **values))


def seed_clinic(db: Database, now: datetime | None = None) -> dict[str, Any]:
    """A small but complete day at the clinic; returns the ids tests use."""
    now = now or utcnow()
    create_events_table(db)
    ids: dict[str, Any] = {}

    # 1. a red-flag conversation that ended in an alert
    red = "web-redflag-01"
    t0 = now - timedelta(hours=2)
    ev = Events(db, red, t0)
    ev.user("my back hurts and I can't feel my legs, also can't control my bladder",
            "report_symptoms", 0.88, [{"entity": "body_part", "value": "back"}])
    ev.bot("This could be an emergency. Please call 995 now or go to the nearest emergency department.",
           clinic={"kind": "emergency", "tel": "+65995"})
    summary(db, red, t0, turns=1, topics="emergency", red_flag=True,
            search_text="my back hurts and I can't feel my legs, also can't control my bladder")
    with db.session_scope() as session:
        alert = RedFlagAlert(conversation_id=red, flags="cauda_equina,saddle_numbness",
                             tier="emergency", categories="back_knee",
                             message_excerpt="my back hurts and I can't feel my legs, also can't control my bladder",
                             created_at=t0 + timedelta(seconds=20))
        session.add(alert)
        session.flush()
        session.add_all([RedFlagAlertFlag(alert_id=alert.id, flag="cauda_equina", tier="emergency",
                                          category="back_knee"),
                         RedFlagAlertFlag(alert_id=alert.id, flag="saddle_numbness",
                                          tier="emergency", category="back_knee")])
        ids["alert"] = alert.id
    ids["red"] = red

    # 2. a booking conversation with buttons, form values and feedback
    book = "web-booking-02"
    t1 = now - timedelta(hours=5)
    ev = Events(db, book, t1)
    ev.user("hi", "greet", 0.99)
    ev.bot("Hello! I can answer questions about back and knee pain, or help you book.",
           [("Book an appointment", "/book_appointment"), ("Ask a question", "/ask_question")])
    ev.user("/book_appointment", "book_appointment", 1.0)
    ev.slot("full_name", "Mary O'Neill")
    ev.slot("phone", "+6591234567")
    ev.slot("body_part", "left knee")
    ev.user("tuesday morning", "inform", 0.81, [{"entity": "time", "value": "2026-12-08T09:00:00"}])
    ev.bot("Thanks Mary, your request BK-7Q4M2 has been sent. We will call you to confirm.")
    summary(db, book, t1, turns=3, topics="booking", booking=True,
            search_text="hi tuesday morning")
    with db.session_scope() as session:
        booking = BookingRequest(
            reference="BK-7Q4M2", conversation_id=book, idempotency_key=f"{book}:1",
            full_name="Mary O'Neill", phone_e164="+6591234567", email="mary@example.org",
            body_part="left knee", preferred_times="Tuesday morning",
            description="Knee pain for 3 weeks after running, worse on stairs.",
            consent_given_at=t1, channel="socketio", created_at=t1 + timedelta(minutes=2),
            status="new")
        session.add(booking)
        session.add(AnswerFeedback(conversation_id=book, topic="knee_pain", helpful=True,
                                   created_at=t1 + timedelta(minutes=3)))
        session.flush()
        ids["booking"] = booking.id
    ids["book"] = book

    # 3. a live handoff, taken over, with a staff reply
    live = "web-handoff-03"
    t2 = now - timedelta(minutes=30)
    ev = Events(db, live, t2)
    ev.user("can I talk to a real person about my MRI results", "human_handoff", 0.95)
    ev.bot("I'm asking a colleague to join this chat. Please stay here.")
    ev.slot("human_takeover", True)
    ev.bot("Rita from the clinic has joined the chat.", clinic={"kind": "staff_joined", "name": "Rita Tan"})
    ev.bot("Hi, I'm Rita. Which day was your MRI?", clinic={"kind": "staff", "name": "Rita Tan"})
    ev.user("last friday", "inform", 0.42)
    summary(db, live, t2, turns=2, topics="mri,human_handoff", handoff=True, staff_replied=True,
            taken_over=True, search_text="can I talk to a real person about my MRI results last friday")
    with db.session_scope() as session:
        handoff = HandoffRequest(conversation_id=live, reason="Patient asked for a person",
                                 last_topic="mri", status="open", within_hours=True,
                                 callback_requested=False, created_at=t2 + timedelta(seconds=30))
        callback = HandoffRequest(conversation_id="tg-555123", reason="Wants a call about injection costs",
                                  last_topic="injections", contact_name="Tan Wei Ming",
                                  contact_phone="+6598765432", contact_consent_at=now - timedelta(hours=1),
                                  status="open", within_hours=False, callback_requested=True,
                                  created_at=now - timedelta(hours=1))
        session.add_all([handoff, callback])
        session.flush()
        ids["handoff"] = handoff.id
        ids["callback"] = callback.id
    ids["live"] = live

    # 4. a message full of markup, and a not-understood one, and a crisis
    xss = "tg-xss-04"
    t3 = now - timedelta(hours=1, minutes=10)
    ev = Events(db, xss, t3, channel="telegram")
    ev.user(XSS_SCRIPT, "nlu_fallback", 0.21)
    ev.bot("Sorry, I didn't understand that. " + XSS_IMG)
    summary(db, xss, t3, channel="telegram", turns=1, topics="<b>topic</b>", not_understood=True,
            thumbs_down=True, tags="<i>tag</i>", search_text=XSS_SCRIPT)
    ids["xss"] = xss
    crisis = "wa-crisis-05"
    t4 = now - timedelta(hours=3)
    summary(db, crisis, t4, channel="whatsapp", turns=1, topics="crisis", crisis=True,
            search_text="i dont want to live anymore")
    with db.session_scope() as session:
        session.add(RedFlagAlert(conversation_id=crisis, flags="self_harm", tier="emergency",
                                 categories="crisis", message_excerpt="i dont want to live anymore",
                                 created_at=t4))
        session.add(AnswerFeedback(conversation_id=xss, topic="sciatica", helpful=False,
                                   created_at=t3))

    # 5. ordinary conversations over the past two weeks, for lists and the dashboard
    topics = ["sciatica", "knee_pain", "opening_hours", "exercises", "posture", "injections",
              "prices", "arthritis"]
    for i in range(40):
        started = now - timedelta(days=i % 14, hours=(i * 7) % 11 + 1)
        summary(db, f"web-sample-{i:03d}", started, channel=["socketio", "telegram", "whatsapp"][i % 3],
                turns=2 + i % 6, topics=",".join(topics[i % len(topics): i % len(topics) + 1 + i % 2]),
                not_understood=i % 5 == 0, booking=i % 7 == 0, thumbs_down=i % 9 == 0,
                search_text=f"question about {topics[i % len(topics)]}")
    return ids
