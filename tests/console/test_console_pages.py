"""What staff see and do on each console page, checked in the database and the HTML."""

from __future__ import annotations

import html
import json
from datetime import timedelta

import requests
from console_seed import XSS_IMG, XSS_SCRIPT, summary
from console_support import ConsoleServer, Delivery, csrf_of
from sqlalchemy import select

from bot.storage import console as store
from bot.storage.models import (
    AuditEntry,
    BookingRequest,
    ConversationSummary,
    StatusChange,
    utcnow,
)


def audit_actions(console: ConsoleServer) -> list[tuple[str, str, str | None]]:
    with console.db.session_scope() as session:
        return [(e.username, e.action, e.target_id) for e in session.scalars(select(AuditEntry))]


def test_inbox_lists_what_needs_a_person_newest_first(console: ConsoleServer) -> None:
    page = console.login("receptionist").get(console.url + "/").text
    order = [page.index(t) for t in ("Patient waiting in the chat", "Call-back requested",
                                     "Emergency red flag", "Crisis alert", "Booking request BK-7Q4M2")]
    assert order == sorted(order)
    # a receptionist sees the alert exists but is sent to the conversation, not the review page
    assert f'href="/alerts/{console.ids["alert"]}"' not in page
    clinician = console.login("clinician").get(console.url + "/").text
    assert f'href="/alerts/{console.ids["alert"]}"' in clinician


def test_events_stream_sends_the_inbox_counts(console: ConsoleServer) -> None:
    session = console.login("receptionist")
    with session.get(console.url + f"/events?conversation={console.ids['live']}", stream=True,
                     timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines(decode_unicode=True)
        data = next(line for line in lines if line.startswith("data: "))
    counts = json.loads(data[len("data: "):])
    assert counts["waiting"] == 1 and counts["callbacks"] == 1 and counts["bookings"] == 1
    assert counts["alerts"] == 2 and counts["total"] == 5
    assert counts["conversation_last_event"] == store.last_event_id(console.db, console.ids["live"]) > 0


def test_conversations_filter_by_flag_channel_topic_and_text(console: ConsoleServer) -> None:
    session = console.login("receptionist")
    red = session.get(console.url + "/conversations?flag=red_flag").text
    assert console.ids["red"] in red and console.ids["book"] not in red and "1 conversation " in red
    assert console.ids["xss"] in session.get(console.url + "/conversations?channel=telegram").text
    topic = session.get(console.url + "/conversations?topic=mri").text
    assert console.ids["live"] in topic and console.ids["red"] not in topic
    found = session.get(console.url + "/conversations?q=BLADDER").text
    assert console.ids["red"] in found and "1 conversation " in found
    empty = session.get(console.url + "/conversations?q=100%25_").text
    assert "No conversations match" in empty


def test_conversations_are_paginated_newest_first(console: ConsoleServer) -> None:
    for i in range(10):
        summary(console.db, f"extra-{i}", utcnow() - timedelta(days=20, minutes=i))
    session = console.login("receptionist")
    first = session.get(console.url + "/conversations").text
    assert "Page 1 of 2" in first and 'rel="next"' in first
    second = session.get(console.url + "/conversations?page=2").text
    assert "Page 2 of 2" in second
    result = store.list_conversations(console.db, store.ConversationFilter(), per_page=50)
    starts = [row.started_at for row in result.rows]
    assert starts == sorted(starts, reverse=True) and result.total == 55


def test_transcript_shows_intents_buttons_forms_staff_and_takeover(console: ConsoleServer) -> None:
    session = console.login("receptionist")
    booking = session.get(f"{console.url}/conversations/{console.ids['book']}").text
    assert "book_appointment" in booking and "99%" in booking          # intent, confidence
    assert "Book an appointment" in booking and "Pressed button" in booking
    assert "time=&#34;2026-12-08T09:00:00&#34;" in booking or "time=2026-12-08T09:00:00" in booking
    assert "full_name" in booking and "Mary O&#39;Neill" in booking    # form value, full on detail
    assert "Helpful" in booking                                       # feedback
    live = session.get(f"{console.url}/conversations/{console.ids['live']}").text
    assert "Rita Tan (staff)" in live and "Which day was your MRI?" in live
    assert live.count("Staff took over") == 1 and "Send reply" in live
    assert "Take over and reply" in booking and "Send reply" not in booking
    assert ("rita", "view_conversation", console.ids["book"]) in audit_actions(console)


def test_user_text_is_escaped_in_every_view(console: ConsoleServer) -> None:
    session = console.login("admin")
    token = csrf_of(session, f"{console.url}/conversations/{console.ids['xss']}")
    stamp = next(line.stamp for line in __import__("bot.console.transcript", fromlist=["lines"]).lines(
        store.conversation_events(console.db, console.ids["xss"])) if line.kind == "user")
    session.post(f"{console.url}/conversations/{console.ids['xss']}/label",
                 data={"csrf": token, "timestamp": stamp, "new_topic": "<script>alert(1)</script>"})
    session.post(f"{console.url}/conversations/{console.ids['xss']}/notes",
                 data={"csrf": token, "body": XSS_IMG})
    pages = ["/", "/conversations", "/conversations?channel=telegram", f"/conversations/{console.ids['xss']}",
             f"/conversations/{console.ids['xss']}/messages", "/improve", "/dashboard", "/admin/audit"]
    for path in pages:
        text = session.get(console.url + path).text
        assert "<script>window" not in text and "<script>alert" not in text, path
        assert "<img src=x" not in text and "<b>topic" not in text and "<i>tag" not in text, path
    transcript = session.get(f"{console.url}/conversations/{console.ids['xss']}").text
    assert html.escape(XSS_SCRIPT, quote=False) in transcript
    assert "&lt;img src=x onerror=" in transcript


def test_queue_masks_details_and_the_detail_page_shows_them_audited(console: ConsoleServer) -> None:
    session = console.login("receptionist")
    queue = session.get(console.url + "/queue").text
    assert "+6591234567" not in queue and "Mary O&#39;Neill" not in queue
    assert "+65\u2022\u2022\u2022\u2022\u2022\u202267" in queue and "M. O." in queue
    assert "+6598765432" not in queue and "T. W. M." in queue
    detail = session.get(f"{console.url}/queue/bookings/{console.ids['booking']}").text
    assert "+6591234567" in detail and "mary@example.org" in detail
    assert ("rita", "view_booking", str(console.ids["booking"])) in audit_actions(console)


def test_booking_moves_to_contacted_with_assignee_note_and_history(console: ConsoleServer) -> None:
    session = console.login("receptionist")
    url = f"{console.url}/queue/bookings/{console.ids['booking']}"
    session.post(url, data={"csrf": csrf_of(session, url), "status": "contacted", "assignee": "me",
                            "note": "Left a voicemail"})
    booking = store.get_booking(console.db, console.ids["booking"])
    assert booking.status == "contacted" and booking.assignee_id == console.users["receptionist"].id
    assert booking.updated_at is not None and booking.closed_at is None
    [change] = store.history(console.db, "booking", console.ids["booking"])
    assert (change.from_status, change.to_status, change.by_name, change.note) == (
        "new", "contacted", "Rita Tan", "Left a voicemail")
    page = session.get(url).text
    assert "Rita Tan" in page and "Left a voicemail" in page and "New &rarr; Contacted" in page
    session.post(url, data={"csrf": csrf_of(session, url), "status": "booked"})
    assert store.get_booking(console.db, console.ids["booking"]).closed_at is not None
    with console.db.session_scope() as db_session:
        assert db_session.scalar(select(StatusChange.to_status).order_by(StatusChange.id.desc())) == "booked"


def test_alert_is_acknowledged_by_a_named_clinician_with_an_outcome(console: ConsoleServer) -> None:
    url = f"{console.url}/alerts/{console.ids['alert']}"
    receptionist = console.login("receptionist")
    assert receptionist.get(url).status_code == 403
    clinician = console.login("clinician")
    page = clinician.get(url).text
    assert "cauda_equina" in page and "saddle_numbness" in page
    clinician.post(url, data={"csrf": csrf_of(clinician, url),
                              "outcome": "Called the patient: advised emergency care"})
    alert, _ = store.get_alert(console.db, console.ids["alert"])
    assert alert.acknowledged_by_id == console.users["clinician"].id
    assert alert.outcome == "Called the patient: advised emergency care"
    assert "Dr Colin Ng" in clinician.get(url).text
    assert store.inbox_counts(console.db).alerts == 1


def test_take_over_reply_and_release_go_through_bot_handoff(console: ConsoleServer) -> None:
    session = console.login("receptionist")
    base = f"{console.url}/conversations/{console.ids['book']}"
    token = csrf_of(session, base)
    session.post(base + "/take", data={"csrf": token})
    session.post(base + "/reply", data={"csrf": token, "text": "We can see you Tuesday at 9."})
    console.handoff.next_delivery = Delivery(False, "The patient closed the chat window.")
    page = session.post(base + "/reply", data={"csrf": token, "text": "Are you there?"}).text
    assert "Not delivered: The patient closed the chat window." in page
    session.post(base + "/release", data={"csrf": token})
    conversation = console.ids["book"]
    assert console.handoff.calls == [
        ("take", (conversation, "Rita Tan")),
        ("send_staff_reply", (conversation, "We can see you Tuesday at 9.", "Rita Tan")),
        ("send_staff_reply", (conversation, "Are you there?", "Rita Tan")),
        ("release", (conversation, "Rita Tan")),
    ]
    actions = [a for a in audit_actions(console) if a[2] == conversation]
    assert [a[1] for a in actions if a[1] != "view_conversation"] == ["take_over", "reply", "reply", "release"]


def test_notes_tags_and_review(console: ConsoleServer) -> None:
    clinician = console.login("clinician")
    url = f"{console.url}/conversations/{console.ids['red']}"
    token = csrf_of(clinician, url)
    clinician.post(url + "/notes", data={"csrf": token, "body": "Called, went to A&E."})
    clinician.post(url + "/tags", data={"csrf": token, "tags": "Follow up, urgent ,follow up"})
    clinician.post(url + "/review", data={"csrf": token, "reviewed": "1"})
    [note] = store.notes_for(console.db, console.ids["red"])
    assert note.author_name == "Dr Colin Ng" and note.body == "Called, went to A&E."
    summary = store.get_summary(console.db, console.ids["red"])
    assert summary is not None and summary.tags == "follow up,urgent" and summary.reviewed_at
    page = clinician.get(url).text
    assert "Reviewed by Dr Colin Ng" in page and "Called, went to A&amp;E." in page
    tagged = clinician.get(console.url + "/conversations?tag=urgent").text
    assert console.ids["red"] in tagged and "1 conversation " in tagged
    receptionist = console.login("receptionist")
    assert receptionist.post(url + "/notes", data={"csrf": csrf_of(receptionist, url),
                                                   "body": "x"}).status_code == 403


def test_dashboard_figures_and_csv(console: ConsoleServer) -> None:
    admin = console.login("admin")
    page = admin.get(console.url + "/dashboard").text
    assert "<svg" in page and "Conversations per day" in page
    today = utcnow().date()
    period = f"from={today - timedelta(days=30)}&to={today + timedelta(days=1)}"
    csv_text = admin.get(console.url + "/dashboard.csv?" + period).text
    rows = [line.split(",") for line in csv_text.splitlines()]
    totals = {r[1]: int(r[2]) for r in rows if r[0] == "total"}
    assert totals["conversations"] == 45 and totals["bookings"] == 1 and totals["handoffs"] == 2
    assert totals["red_flags"] == 1 and totals["crisis"] == 1
    assert ["feedback", "sciatica", "0", "1"] in rows
    assert "+65" not in csv_text and "Mary" not in csv_text
    assert ("ada", "export_dashboard", None) in audit_actions(console)
    assert console.login("clinician").get(console.url + "/dashboard.csv").status_code == 403


def test_admin_creates_a_user_who_can_sign_in(console: ConsoleServer) -> None:
    admin = console.login("admin")
    url = console.url + "/admin/users"
    short = admin.post(url, data={"csrf": csrf_of(admin, url), "username": "nina", "name": "Nina",
                                  "role": "clinician", "password": "short"}).text
    assert "at least 10 characters" in short
    admin.post(url, data={"csrf": csrf_of(admin, url), "username": "Nina", "name": "Nurse Nina",
                          "role": "clinician", "password": "a long enough password"})
    response = console.try_login(requests.Session(), "nina", "a long enough password")
    assert response.status_code == 303
    audit = admin.get(console.url + "/admin/audit?action=create_user").text
    assert "nina (clinician)" in audit and "view_booking" not in audit


def test_forget_this_patient_from_the_retention_page_deletes_them_everywhere(
    console: ConsoleServer,
) -> None:
    admin = console.login("admin")
    url = console.url + "/admin/retention"
    page = admin.post(url, data={"csrf": csrf_of(admin, url), "what": "forget",
                                 "phone": "+6591234567"}).text
    assert "Deleted" in page and "booking_requests" in page
    with console.db.session_scope() as session:
        assert session.get(BookingRequest, console.ids["booking"]) is None
        assert session.get(ConversationSummary, console.ids["book"]) is None
        assert session.get(ConversationSummary, console.ids["red"]) is not None  # others kept
    audit = admin.get(console.url + "/admin/audit?action=retention_forget").text
    assert "retention_forget" in audit and "+6591234567" not in audit
