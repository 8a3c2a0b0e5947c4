"""Check action server responses against Rasa's schema without re-checking the schema each time.

Rasa 3.6 validates every custom action's response with `jsonschema.validate`, which first
validates the schema itself against JSON Schema's meta-schema: a twentieth of the Rasa
server's CPU per message went there (py-spy, `make bench`'s 100-turn conversation). The
validator here is built once from the same schema and raises the same `ValidationError`
with the same explanation, so a malformed response is refused exactly as before.
"""

from __future__ import annotations

import functools
from typing import Any, Dict

from jsonschema import ValidationError
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL

_INSTALLED = "_clinic_cached_schema"


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_action_result(_action: RemoteAction, result: Dict[str, Any]) -> bool:
    """Rasa's `_validate_action_result`, with the validator built once."""
    try:
        _validator().validate(result)
        return True
    except ValidationError as e:
        e.message += (
            ". Failed to validate Action server response from API, make sure your response "
            "from the Action endpoint is valid. For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise e


def install() -> None:
    """Replace `RemoteAction._validate_action_result` once per process."""
    if getattr(RemoteAction._validate_action_result, _INSTALLED, False):
        return
    setattr(validate_action_result, _INSTALLED, True)
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]
