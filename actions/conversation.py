"""Yes and no: their meaning depends on what the bot just offered (slot `offer`)."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import conversation_id, latest_intent
from actions.handoff import hand_over
from bot.records import save_feedback


class ActionHandleYesNo(Action):
    """Act on "yes"/"no" to a booking, feedback, call-back or talk-to-a-person offer."""

    def name(self) -> str:
        """Action name used by the affirm/deny rules."""
        return "action_handle_yes_no"

    async def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[EventType]:
        """Interpret the answer in the context of the last offer."""
        yes = latest_intent(tracker) == "affirm"
        offer = tracker.get_slot("offer")
        cleared = SlotSet("offer", None)
        if offer == "feedback" and tracker.get_slot("last_topic"):
            if not yes:  # rated unhelpful: ask what was missing (optional), then store
                return [cleared, FollowupAction("feedback_form")]
            await save_feedback(conversation_id(tracker), tracker.get_slot("last_topic"), True)
            dispatcher.utter_message(text="Thanks for letting us know! Anything else you'd like to ask?")
            return [cleared]
        if offer in {"booking", "callback"} and yes:
            target = "booking_form" if offer == "booking" else "callback_form"
            if offer == "callback":
                return [cleared, SlotSet("callback_requested", True), FollowupAction(target)]
            return [cleared, FollowupAction(target)]
        # the handoff happens in this action (not as a follow-up action no rule expects, which
        # ended in "Sorry, I didn't get that")
        if offer == "callback":
            return [cleared, *await hand_over(dispatcher, tracker, callback_declined=True)]
        if offer == "human":  # after the crisis response: "would you like to talk to a person?"
            if yes:
                return [cleared, *await hand_over(dispatcher, tracker)]
            dispatcher.utter_message(
                text="That's OK. I'm here if you want to keep talking, and the numbers above "
                "are there any time, day or night."
            )
            return [cleared]
        if yes:
            dispatcher.utter_message(text="Great. What would you like to know? You can ask in your own words.")
        else:
            dispatcher.utter_message(response="utter_anything_else")
        return [cleared]
