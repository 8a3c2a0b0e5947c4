"""Dialogue policies that outrank everything Rasa would otherwise do.

`SafetyPolicy`: an emergency is answered first, in any turn, even inside a form (Rasa's
RulePolicy would otherwise keep the form going: its loop predictions beat normal ones, so
this policy marks its own as loop-grade and carries the highest priority). After a message
with `red_flag` entities it runs `action_red_flag`; after one the detector only suspects
(`safety_suspect`), `action_safety_screen` asks one screening question, and the patient's
answer goes to `action_safety_screen_answer` whatever else is going on. Right after an
alert, "what should I do?", "should I go to hospital?" (and, after an emergency or crisis,
"can I book?") get the alert's advice again (`action_emergency_reminder`), not the menu,
the warning-signs list or a booking form; asked once more, they get their usual answer.

`HumanTakeoverPolicy`: while a staff member has taken a conversation over (slot
`human_takeover`), the bot stays silent, except for safety, which still comes first. The
staff intents `bot.handoff` triggers (`staff_take`, `staff_reply`, `staff_release`) always
run their action (`actions/staff.py`), even inside a form, and are never read as a patient
message by the safety rules.

Loading these policies also installs `bot.action_server_down` (a reply instead of
silence when the action server is unreachable) and `bot.action_results` (action server
responses checked with a schema validator built once).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa.core.policies.policy import Policy, PolicyPrediction, SupportedData
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME, IS_EXTERNAL
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker

from bot.action_results import install as install_action_result_check
from bot.action_server_down import install as install_action_server_apology
from bot.safety import RED_FLAG_ENTITY, SUSPECT_ENTITY

install_action_server_apology()
install_action_result_check()

RED_FLAG_ACTION = "action_red_flag"
SCREEN_ACTION = "action_safety_screen"
SCREEN_ANSWER_ACTION = "action_safety_screen_answer"
REMINDER_ACTION = "action_emergency_reminder"
SCREEN_SLOT = "safety_screen"
ALERT_KINDS = ("crisis", "emergency", "urgent")  # the widget markers of an alert, gravest first
REMINDED = {
    "ask_capabilities": set(ALERT_KINDS),  # "what should I do?", "what now?", "help"
    "ask_warning_signs": set(ALERT_KINDS),  # "should I go to hospital?", "is it serious?"
    "book_appointment": {"crisis", "emergency"},  # "do I need to see a doctor?", "can I book?"
}
"""Intent -> the alerts right after which it gets the alert's advice again."""
TAKEOVER_SLOT = "human_takeover"
STAFF_ACTIONS = {
    "staff_take": "action_staff_joined",
    "staff_release": "action_staff_left",
    "staff_reply": "action_relay_staff_reply",
}
"""Intent a staff member triggers through the HTTP API -> the action that relays it."""


def user_just_spoke(tracker: DialogueStateTracker) -> bool:
    """True when the next action is the first reply to a new user message."""
    return tracker.latest_action_name == ACTION_LISTEN_NAME and bool(
        tracker.latest_message and tracker.latest_message.text
        or (tracker.latest_message and tracker.latest_message.intent)
    )


def staff_action(tracker: DialogueStateTracker) -> Optional[str]:
    """The action for a staff intent just triggered (not a patient message), if any.

    Only an external event (Rasa's `trigger_intent`) counts: a patient cannot type one.
    """
    message = tracker.latest_message
    if tracker.latest_action_name != ACTION_LISTEN_NAME or message is None:
        return None
    if not (message.metadata or {}).get(IS_EXTERNAL):
        return None
    return STAFF_ACTIONS.get(str((message.intent or {}).get("name")))


def _has_entity(tracker: DialogueStateTracker, entity: str) -> bool:
    message = tracker.latest_message
    return message is not None and any(e.get("entity") == entity for e in message.entities)


def has_red_flag(tracker: DialogueStateTracker) -> bool:
    """Whether the safety rules found an emergency or red flag in the latest message."""
    return _has_entity(tracker, RED_FLAG_ENTITY)


def alert_just_given(tracker: DialogueStateTracker) -> Optional[str]:
    """The gravest alert kind in the bot's reply to the previous message; None if none.

    Alerts are told apart by the widget marker their messages carry (`clinic.kind`), on the
    action server and in the Rasa server's own fallback alike. A reminder turn doesn't count,
    so a second "can I book?" goes on to the booking.
    """
    kinds = set()
    users = 0
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            users += 1
            if users == 2:
                break
        elif users == 1 and isinstance(event, ActionExecuted) and event.action_name == REMINDER_ACTION:
            return None
        elif users == 1 and isinstance(event, BotUttered):
            kinds.add(((event.metadata or {}).get("clinic") or {}).get("kind"))
    return next((kind for kind in ALERT_KINDS if kind in kinds), None)


def needs_reminder(tracker: DialogueStateTracker) -> bool:
    """Whether the latest message asks what to do right after an alert (see `REMINDED`).

    Only a typed message: a button the alert offered ("Continue my booking") does what it says.
    """
    message = tracker.latest_message
    if message is None or not message.text or message.text.startswith("/"):
        return False
    intent = str((message.intent or {}).get("name"))
    return intent in REMINDED and alert_just_given(tracker) in REMINDED[intent]


def safety_action(tracker: DialogueStateTracker) -> Optional[str]:
    """The safety action the latest user message calls for, if any."""
    if not user_just_spoke(tracker) or staff_action(tracker):
        return None
    if has_red_flag(tracker):
        return RED_FLAG_ACTION
    if tracker.get_slot(SCREEN_SLOT):
        return SCREEN_ANSWER_ACTION
    if _has_entity(tracker, SUSPECT_ENTITY):
        return SCREEN_ACTION
    if needs_reminder(tracker):
        return REMINDER_ACTION
    return None


class _OverridePolicy(Policy):
    """Shared plumbing: nothing to train, predictions that beat loop predictions."""

    @staticmethod
    def supported_data() -> SupportedData:
        """Uses no training data of either kind."""
        return SupportedData.ML_AND_RULE_DATA

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """Priority above RulePolicy (6); SafetyPolicy sets a higher one still."""
        return {"priority": 8}

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer: Optional[Any] = None,
    ) -> None:
        """Keep Rasa's constructor, with no featurizer needed."""
        super().__init__(config, model_storage, resource, execution_context, featurizer)

    def train(
        self,
        training_trackers: List[TrackerWithCachedStates],
        domain: Domain,
        **kwargs: Any,
    ) -> Resource:
        """Nothing to learn: the behaviour is the rule."""
        return self._resource

    def _force(self, action: str, domain: Domain) -> PolicyPrediction:
        probabilities = self._default_predictions(domain)
        probabilities[domain.index_for_action(action)] = 1.0
        return self._prediction(probabilities, is_no_user_prediction=True)

    def _abstain(self, domain: Domain) -> PolicyPrediction:
        return self._prediction(self._default_predictions(domain))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class SafetyPolicy(_OverridePolicy):
    """Alert, screening question, screening answer or reminder first; then listen (module docstring)."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """Highest priority in the ensemble."""
        return {"priority": 10}

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """Force the safety action a message calls for; listen after it spoke."""
        if tracker.latest_action_name in (RED_FLAG_ACTION, SCREEN_ACTION, SCREEN_ANSWER_ACTION, REMINDER_ACTION):
            return self._force(ACTION_LISTEN_NAME, domain)
        action = safety_action(tracker)
        if action:
            return self._force(action, domain)
        return self._abstain(domain)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class HumanTakeoverPolicy(_OverridePolicy):
    """Keeps the bot silent while staff have taken the conversation over."""

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """Relay a staff intent; listen instead of answering while `human_takeover` is set."""
        if tracker.latest_action_name in STAFF_ACTIONS.values():
            return self._force(ACTION_LISTEN_NAME, domain)
        action = staff_action(tracker)
        if action:
            return self._force(action, domain)
        if (
            tracker.get_slot(TAKEOVER_SLOT)
            and user_just_spoke(tracker)
            and safety_action(tracker) is None
        ):
            return self._force(ACTION_LISTEN_NAME, domain)
        return self._abstain(domain)

