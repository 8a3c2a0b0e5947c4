"""Tests of the channel-independent button helpers (pure functions and the in-process memory)."""

from __future__ import annotations

import pytest

from bot.channels.buttons import (
    ButtonMemory,
    ShortIds,
    numbered_message,
    render_numbered,
    resolve_reply,
)

BUTTONS = [
    {"title": "Sciatica", "payload": '/inform{"condition": "sciatica"}'},
    {"title": "Book a consultation", "payload": "/book_consultation"},
    {"title": "Talk to our staff", "payload": "/request_handoff"},
]


def test_numbered_rendering_hides_payloads() -> None:
    """Patients see `1. Title` lines, never Rasa's `1: Title (/payload)`."""
    assert render_numbered(BUTTONS[:2]) == "1. Sciatica\n2. Book a consultation"
    assert numbered_message("Where does it hurt?", BUTTONS[:2]) == (
        "Where does it hurt?\n\n1. Sciatica\n2. Book a consultation"
    )
    assert numbered_message("", BUTTONS[:1]) == "1. Sciatica"
    assert numbered_message("Only text", []) == "Only text"


@pytest.mark.parametrize(
    "reply",
    [
        "2",
        "2.",
        "2)",
        " 2 ",
        "option 2",
        "Option 2.",
        "#2",
        "no. 2",
        "book a consultation",
        "Book a Consultation!",
        "  BOOK   a consultation  ",
    ],
)
def test_reply_picking_the_second_option(reply: str) -> None:
    """Numbers and the option's words, whatever the case, spacing or punctuation."""
    assert resolve_reply(reply, BUTTONS) == "/book_consultation"


@pytest.mark.parametrize(
    "reply",
    ["0", "4", "12", "I'd like to book a consultation", "two", "", "   ", "2 please"],
)
def test_other_replies_are_left_to_nlu(reply: str) -> None:
    """Out-of-range numbers and free text are not guessed at."""
    assert resolve_reply(reply, BUTTONS) is None


def test_no_buttons_means_no_resolution() -> None:
    """Without buttons a "2" is just a "2" (e.g. an answer to "how many weeks?")."""
    assert resolve_reply("2", []) is None


def test_numeric_titles_match_by_title_first() -> None:
    """With options "0", "1", "2", typing "1" picks the option titled "1"."""
    buttons = [{"title": str(n), "payload": f'/weeks{{"n": {n}}}'} for n in range(3)]
    assert resolve_reply("1", buttons) == '/weeks{"n": 1}'
    assert resolve_reply("option 3", buttons) == '/weeks{"n": 2}'


def test_button_without_payload_sends_its_title() -> None:
    """A title-only button behaves like typing the title."""
    assert resolve_reply("1", [{"title": "Yes"}]) == "Yes"


async def test_memory_is_consumed_by_the_next_reply() -> None:
    """Buttons answer the next message only."""
    memory = ButtonMemory()
    await memory.remember("whatsapp:1", BUTTONS)
    assert await memory.take("whatsapp:1") == BUTTONS
    assert await memory.take("whatsapp:1") == []


async def test_memory_expires_and_is_bounded() -> None:
    """Old buttons are ignored and the oldest senders are dropped past the bound."""
    now = [0.0]
    memory = ButtonMemory(max_senders=2, ttl_seconds=60, clock=lambda: now[0])
    await memory.remember("a", BUTTONS)
    await memory.remember("b", BUTTONS)
    await memory.remember("c", BUTTONS)
    assert await memory.take("a") == []
    now[0] = 61.0
    assert await memory.take("b") == []
    assert await memory.take("c") == []


async def test_memory_copies_buttons() -> None:
    """Later changes to the response dicts do not alter what was sent."""
    memory = ButtonMemory()
    buttons = [dict(b) for b in BUTTONS]
    await memory.remember("a", buttons)
    buttons[0]["payload"] = "/changed"
    assert (await memory.take("a"))[0]["payload"] == BUTTONS[0]["payload"]


async def test_short_ids_keep_fitting_payloads_and_shorten_others() -> None:
    """Fitting payloads go as they are; longer ones get a deterministic short id."""
    ids = ShortIds()
    long_payload = '/inform{"condition": "' + "é" * 40 + '"}'
    assert await ids.encode("/book_consultation", 64) == "/book_consultation"
    short = await ids.encode(long_payload, 64)
    assert len(short.encode()) <= 64
    assert short == await ids.encode(long_payload, 64)
    assert short == await ShortIds().encode(long_payload, 64)  # the same id in any process
    assert await ids.decode(short) == long_payload
    assert await ids.decode("/book_consultation") == "/book_consultation"
    assert await ids.decode("~not-issued") is None


async def test_short_ids_never_pass_through_the_prefix() -> None:
    """A payload that looks like a short id is mapped too, so decoding is unambiguous."""
    ids = ShortIds()
    encoded = await ids.encode("~x", 64)
    assert encoded != "~x"
    assert await ids.decode(encoded) == "~x"


async def test_short_ids_are_bounded() -> None:
    """The map forgets the oldest payloads beyond its size."""
    ids = ShortIds(max_entries=2)
    first = await ids.encode("a" * 100, 64)
    await ids.encode("b" * 100, 64)
    await ids.encode("c" * 100, 64)
    assert await ids.decode(first) is None


async def test_short_ids_expire_a_week_after_their_button_was_last_sent() -> None:
    """A keyboard pressed days later still resolves; after the lifetime, the title is used."""
    now = [0.0]
    ids = ShortIds(clock=lambda: now[0])
    short = await ids.encode("a" * 100, 64)
    now[0] = 6 * 24 * 3600.0
    assert await ids.decode(short) == "a" * 100
    await ids.encode("a" * 100, 64)  # sent again: the lifetime starts again
    now[0] = 12 * 24 * 3600.0
    assert await ids.decode(short) == "a" * 100
    now[0] = 20 * 24 * 3600.0
    assert await ids.decode(short) is None
