"""The hand-off action stores a call-back's contact details with the time consent was given."""

from __future__ import annotations

from datetime import datetime
from typing import Iterator

import pytest

from actions.handoff import ActionRequestHuman
from bot.storage.migrate import upgrade
from bot.storage.repository import Repository
from tests.actions_helpers import run, texts, tracker


@pytest.fixture()
def repo() -> Iterator[Repository]:
    upgrade()
    yield Repository()


def test_call_back_keeps_the_contact_details_with_their_consent_time(repo: Repository) -> None:
    consent = "2026-03-04T09:30:00+08:00"
    state = tracker(
        "yes call me back", "affirm", sender="web:cb-1",
        slots={"callback_requested": True, "contact_consent": True, "consent_at": consent,
               "full_name": "Tan Wei Ming", "phone": "+6591234567"},
    )

    messages, _ = run(ActionRequestHuman(), state)

    assert "call you back" in texts(messages)
    [handoff] = repo.open_handoffs()
    assert (handoff.conversation_id, handoff.contact_phone, handoff.callback_requested) == (
        "web:cb-1", "+6591234567", True,
    )
    assert handoff.contact_consent_at == datetime.fromisoformat(consent)


def test_without_consent_no_contact_details_and_no_consent_time(repo: Repository) -> None:
    state = tracker("a person please", "request_human", sender="web:cb-2",
                    slots={"contact_consent": None, "phone": "+6591234567", "callback_declined": True})

    run(ActionRequestHuman(), state)

    [handoff] = repo.open_handoffs()
    assert (handoff.contact_phone, handoff.contact_consent_at) == (None, None)
