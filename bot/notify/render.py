"""Plain-text wording of staff notifications, shared by email and any text channel.

Kept apart from the SMTP code so the wording can be read, reviewed and tested without
a mail server. Only the reference, alert id or hand-off id goes into the subject line;
patient details stay in the body. Each notification links to its page in the staff
console (CONSOLE_URL), where staff see it whether or not a notification arrived.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SUBJECT_PREFIX = "[Clinic assistant]"
NOT_GIVEN = "(not given)"


def _value(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if value is None or value == "":
        return NOT_GIVEN
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) or NOT_GIVEN
    return str(value)


def _lines(payload: Mapping[str, Any], fields: list[tuple[str, str]]) -> list[str]:
    width = max(len(label) for label, _ in fields) + 2
    return [f"{label + ':':<{width}}{_value(payload, key)}" for label, key in fields]


_ALERT_ADVICE = {
    "CRISIS": "Suicidal thoughts or self-harm: please review the conversation now and reach out.",
    "EMERGENCY": "The patient was told to call the emergency number or go to A&E now.",
    "URGENT": "The patient was told to see a doctor today or contact the clinic promptly.",
}


CONSOLE_PATHS = {
    "booking": ("booking_id", "/queue/bookings/{}", "/queue"),
    "handoff": ("handoff_id", "/queue/handoffs/{}", "/queue"),
    "red_flag": ("alert_id", "/alerts/{}", "/alerts"),
}
"""Notification kind -> (payload id key, console page of one item, page of the list)."""


def console_link(kind: str, payload: Mapping[str, Any], console_url: str) -> str | None:
    """The console page staff open for this notification (None for system problems).

    An item without an id (an alert kept during a database outage) links to its list.
    """
    if not console_url or kind not in CONSOLE_PATHS:
        return None
    key, item_path, list_path = CONSOLE_PATHS[kind]
    item = payload.get(key)
    path = item_path.format(int(item)) if isinstance(item, int) and not isinstance(item, bool) else list_path
    return console_url.rstrip("/") + path


def _alert_label(payload: Mapping[str, Any]) -> str:
    """CRISIS, EMERGENCY or URGENT: what the subject line leads with."""
    categories = payload.get("categories") or ()
    if "crisis" in categories:
        return "CRISIS"
    return "URGENT" if payload.get("tier") == "urgent" else "EMERGENCY"


def render_text(kind: str, payload: Mapping[str, Any], console_url: str = "") -> tuple[str, str]:
    """Return the subject and plain-text body staff receive for one notification.

    Args:
        kind: ``booking``, ``handoff``, ``red_flag`` or ``system`` (a problem of the
            assistant itself, e.g. its database is unreachable).
        payload: The outbox payload.
        console_url: The staff console's base URL (CONSOLE_URL); the body links to the
            item's page there. Empty: no link.

    Returns:
        ``(subject, body)``.

    Raises:
        ValueError: Unknown kind.
    """
    if kind == "booking":
        reference = _value(payload, "reference")
        subject = f"{SUBJECT_PREFIX} New booking request {reference}"
        lines = [
            f"New booking request {reference}",
            "",
            *_lines(
                payload,
                [
                    ("Reference", "reference"),
                    ("Name", "full_name"),
                    ("Phone", "phone_e164"),
                    ("Email", "email"),
                    ("Body part", "body_part"),
                    ("Preferred times", "preferred_times"),
                    ("Times understood as", "preferred_times_parsed"),
                    ("Channel", "channel"),
                    ("Conversation", "conversation_id"),
                    ("Consent given at", "consent_given_at"),
                    ("Received at", "created_at"),
                ],
            ),
            "",
            "Description:",
            _value(payload, "description"),
            "",
            "Please phone the patient to arrange the appointment.",
        ]
    elif kind == "handoff":
        handoff_id = _value(payload, "handoff_id")
        subject = (
            f"{SUBJECT_PREFIX} Patient asked for a person (hand-off #{handoff_id})"
        )
        lines = [
            f"A patient asked to speak to a person (hand-off #{handoff_id}).",
            "",
            *_lines(
                payload,
                [
                    ("Reason", "reason"),
                    ("Last topic", "last_topic"),
                    ("Within opening hours", "within_hours"),
                    ("Call back requested", "callback_requested"),
                    ("Name", "contact_name"),
                    ("Phone", "contact_phone"),
                    ("Conversation", "conversation_id"),
                    ("Opened at", "created_at"),
                ],
            ),
        ]
    elif kind == "red_flag":
        alert_id = _value(payload, "alert_id")
        label = _alert_label(payload)
        subject = f"{SUBJECT_PREFIX} {label} alert #{alert_id}: {_value(payload, 'flags')}"
        lines = [
            f"{label.capitalize()}: a patient described symptoms that need attention "
            f"(alert #{alert_id}).",
            _ALERT_ADVICE.get(label, "Please review the conversation."),
            "",
            *_lines(
                payload,
                [
                    ("Tier", "tier"),
                    ("Categories", "categories"),
                    ("Flags", "flags"),
                    ("Conversation", "conversation_id"),
                    ("Received at", "created_at"),
                ],
            ),
            "",
            "Message excerpt:",
            _value(payload, "message_excerpt"),
        ]
        if payload.get("note"):
            lines += ["", str(payload["note"])]
    elif kind == "system":
        subject = f"{SUBJECT_PREFIX} System problem: {_value(payload, 'problem')}"
        lines = _lines(payload, [("Problem", "problem"), ("Error", "error"), ("Effect", "effect")])
    else:
        raise ValueError(f"unknown notification kind {kind!r}")
    link = console_link(kind, payload, console_url) if kind != "system" else None
    if link:
        lines += ["", f"Open it in the staff console: {link}"]
    lines += ["", "-- ", "Sent by the clinic assistant. Do not reply to this message."]
    return subject, "\n".join(lines) + "\n"
