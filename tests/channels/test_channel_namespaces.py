"""Every channel owns its namespace: no channel can read or act in another one's conversation.

All five connectors are mounted in one Sanic app (as `rasa run` mounts them) in front of the
echo agent. From every channel, the test tries to address a patient of every channel (REST
`sender`, a socket.io `session_id`, a Telegram chat id, a WhatsApp `from`, Twilio's `From`,
all properly signed), then checks which conversations were actually touched. Rasa 3.6's
REST channel let `"sender": "whatsapp:<phone>"` continue that patient's booking.
"""

from __future__ import annotations

import pytest

from bot.channels.sender import PREFIXES
from tests.channels.all_channels import VICTIMS, AllChannels


@pytest.mark.parametrize("source", list(PREFIXES))
def test_a_channel_reaches_only_its_own_conversations(channels: AllChannels, source: str) -> None:
    """From `source`, address each channel's patient, bare and with that channel's prefix."""
    for target, victim in VICTIMS.items():
        for claimed in (victim, PREFIXES[target] + victim):
            status = channels.send_as(source, claimed, f"from {source} to {target}")
            assert status in {None, 200, 400}, (source, claimed, status)
    received = channels.agent.received
    assert received, "the channel's own patient must still get through"
    for message in received:
        assert message.input_channel == source
        assert message.sender_id.startswith(PREFIXES[source]), message.sender_id
        owner = next(c for c, p in PREFIXES.items() if message.sender_id.startswith(p))
        assert owner == source
    own = {m.sender_id for m in received}
    assert PREFIXES[source] + VICTIMS[source] in own
    others = {PREFIXES[t] + v for t, v in VICTIMS.items() if t != source}
    assert not own & others


@pytest.mark.parametrize(
    ("source", "bad"),
    [("rest", "a\x00b"), ("rest", "x" * 129), ("telegram", "12\x0034"), ("telegram", "a" * 300),
     ("whatsapp", "4477\x00"), ("whatsapp", "447700900123 OR 1=1"), ("twilio_whatsapp", "whatsapp:+44\x007"),
     ("twilio_whatsapp", "sms:+447700900123")],
)
def test_bad_sender_ids_get_a_400_with_a_json_error(channels: AllChannels, source: str, bad: str) -> None:
    assert channels.send_as(source, bad, "hello") == 400
    assert channels.agent.received == []
