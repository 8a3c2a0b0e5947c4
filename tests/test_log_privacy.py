"""What patients type never reaches the logs through Rasa's own warnings."""

from __future__ import annotations

import logging
import warnings

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
from rasa.shared.nlu.training_data.message import Message

from bot.log_privacy import install_log_privacy

DOMAIN = Domain.from_dict({"intents": ["inform"]})
TYPED = [
    '/inform{"name": "Mary O\'Neill", "phone": 07700900123}',  # bad JSON
    "/inform@x{Mary O'Neill 07700900123}",  # leftover text
    "/Mary O'Neill 07700900123",  # unknown intent
    "/{Mary O'Neill 07700900123",  # no intent at all
]


@pytest.mark.parametrize("typed", TYPED)
def test_slash_message_that_does_not_parse_is_not_echoed(
    typed: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        install_log_privacy()
        YAMLStoryReader.unpack_regex_message(Message({"text": typed}), DOMAIN)
    shown = " ".join(str(w.message) for w in caught) + caplog.text + "".join(capsys.readouterr())
    assert "Mary" not in shown and "07700900123" not in shown
