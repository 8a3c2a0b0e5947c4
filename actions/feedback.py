"""Answer feedback: a thumbs-down asks, optionally, what was missing; then it is stored.

"Was this helpful?" follows every answer (actions/answers.py). 👍 is stored at once by
`action_handle_yes_no`; 👎 opens `feedback_form` for an optional comment. A patient who
ignores the question and asks something new is answered, not recorded as a comment.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import BOOK_BUTTON, HUMAN_BUTTON, conversation_id, latest_intent
from bot.records import save_feedback
from bot.validation import clean_comment

NO_COMMENT = "-"
SKIP_WORDS = {"skip", "no", "nope", "no thanks", "nothing", "-"}
# A new question instead of a comment: answered by the action that answers that intent.
QUESTION_ACTIONS = {"book_appointment": "booking_form", "describe_symptoms": "action_describe_symptoms"}


def question_action(intent: str | None) -> str | None:
    """The action that answers `intent` when it is a new question, else None."""
    if not intent:
        return None
    if intent.startswith("ask_") and intent not in {"ask_side_effects", "ask_capabilities"}:
        return "action_answer_topic"
    return QUESTION_ACTIONS.get(intent)


class ValidateFeedbackForm(FormValidationAction):
    """The optional comment: skipped, a new question, or a short text kept as said."""

    def name(self) -> str:
        """Validation action of `feedback_form`."""
        return "validate_feedback_form"

    def validate_feedback_comment(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[str, Any]:
        """Keep a cleaned comment; "skip" or a new question means no comment."""
        text = str(value or "").strip()
        if text.lower().strip(" .!") in SKIP_WORDS or question_action(latest_intent(tracker)):
            return {"feedback_comment": NO_COMMENT}
        return {"feedback_comment": clean_comment(text) or NO_COMMENT}


class ActionSaveFeedback(Action):
    """Store the 👎 rating with its comment; answer a new question if one was asked."""

    def name(self) -> str:
        """Runs when `feedback_form` completes."""
        return "action_save_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Store, thank, and move on."""
        comment = tracker.get_slot("feedback_comment")
        topic = tracker.get_slot("last_topic") or "unknown"
        await save_feedback(
            conversation_id(tracker), topic, False, None if comment in (None, NO_COMMENT) else comment
        )
        events: List[EventType] = [SlotSet("feedback_comment", None)]
        follow = question_action(latest_intent(tracker))
        if follow:
            return [*events, FollowupAction(follow)]
        dispatcher.utter_message(
            text="Thank you, that helps us improve. You can ask in other words, or talk to our staff.",
            buttons=[HUMAN_BUTTON, BOOK_BUTTON],
        )
        return events
