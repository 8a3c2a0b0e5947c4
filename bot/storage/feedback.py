"""Answer feedback: a patient's thumbs up or down on one answer.

Kept to find the answers that need work (per topic); the optional comment is cleaned
and cut, never rejected, since a rating is never worth bothering the patient about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.storage.base import Store
from bot.storage.models import AnswerFeedback, utcnow
from bot.validation import MAX_COMMENT, MAX_CONVERSATION_ID, MAX_TOPIC, check_required, clean_excerpt


@dataclass(frozen=True)
class FeedbackRecord:
    """A stored answer rating."""

    id: int
    conversation_id: str
    topic: str
    helpful: bool
    comment: str | None
    created_at: datetime


def feedback_record(row: AnswerFeedback) -> FeedbackRecord:
    """The record of a feedback row."""
    return FeedbackRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        topic=row.topic,
        helpful=row.helpful,
        comment=row.comment,
        created_at=row.created_at,
    )


class FeedbackStore(Store):
    """Recording answer ratings."""

    def record_feedback(
        self,
        *,
        conversation_id: str,
        topic: str,
        helpful: bool,
        comment: str | None = None,
    ) -> FeedbackRecord:
        """Store a rating of one answer; the comment is cleaned and cut to 2000 chars.

        Raises:
            ValidationError: Missing conversation id or topic.
            DatabaseUnavailable: The database could not be reached.
        """
        conversation = check_required("conversation_id", conversation_id, MAX_CONVERSATION_ID)
        topic_key = check_required("topic", topic, MAX_TOPIC)
        with self.database.session_scope() as session:
            row = AnswerFeedback(
                conversation_id=conversation,
                topic=topic_key,
                helpful=bool(helpful),
                comment=clean_excerpt(comment, MAX_COMMENT) or None,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            return feedback_record(row)
