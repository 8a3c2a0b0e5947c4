"""Action server responses are accepted and refused exactly as Rasa's own check does."""

from __future__ import annotations

from typing import Any, Dict

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

import bot.policies  # noqa: F401 - installs bot.action_results, as every model of this project does

RESPONSES = [
    {"events": [{"event": "slot", "name": "body_part", "value": "knee"}], "responses": [{"text": "Hello"}]},
    {"events": [], "responses": []},
    {"events": "not a list", "responses": []},
    {"events": [{"name": "no event key"}], "responses": []},
    {"events": [{"event": "slot", "timestamp": "yesterday"}], "responses": []},
    {"events": [], "responses": "hello"},
]


def rasa_verdict(result: Dict[str, Any]) -> bool:
    """What Rasa's unpatched check (jsonschema.validate on its schema) says."""
    try:
        jsonschema.validate(result, RemoteAction.action_response_format_spec())
        return True
    except jsonschema.ValidationError:
        return False


@pytest.mark.parametrize("result", RESPONSES)
def test_a_response_gets_the_same_verdict_as_from_rasas_check(result: Dict[str, Any]) -> None:
    action = RemoteAction("action_answer_topic", None)
    if rasa_verdict(result):
        assert action._validate_action_result(result) is True
    else:
        with pytest.raises(jsonschema.ValidationError, match="Failed to validate Action server response"):
            action._validate_action_result(result)


def test_the_check_in_use_is_the_projects() -> None:
    assert RemoteAction._validate_action_result.__module__ == "bot.action_results"
    assert sum(not rasa_verdict(r) for r in RESPONSES) >= 3, "the samples include refused responses"
