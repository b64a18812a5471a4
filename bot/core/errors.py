"""Domain errors raised by the engine and stores; adapters map them to statuses."""


class SupportbotError(Exception):
    """Base class of the errors the core raises on purpose."""


class ConversationNotFound(SupportbotError):
    pass


class TurnNotFound(SupportbotError):
    pass


class CorrectionNotFound(SupportbotError):
    pass


class InvalidMessage(SupportbotError):
    """Empty, oversized or otherwise unusable customer input; the text says why."""


class ConversationHandedOff(SupportbotError):
    """The conversation is with a human; the bot must not answer.

    ``taken_over`` says whether an operator has written in it since it was handed off: an
    automatic hand-off only waits for one, and the customer must not be told that someone
    has already taken over. ``message_kept`` says whether the customer's message was
    stored for the operator (a message, not a second press of the hand-off button).
    """

    def __init__(self, detail: str, *, taken_over: bool, message_kept: bool) -> None:
        super().__init__(detail)
        self.taken_over = taken_over
        self.message_kept = message_kept


class ModelUnavailable(SupportbotError):
    """The generator cannot answer (not trained yet, worker stopped, overloaded)."""


class StorageUnavailable(SupportbotError):
    """The store cannot write (its disk is full); the failed operation stored nothing and
    everything stored before is intact. Retrying once there is room succeeds."""


class QuestionTaken(InvalidMessage):
    """A question attached to a correction is already asked by another correction that
    gives a different answer: one question gets one answer, so nothing was attached."""

    def __init__(self, question: str, correction_id: int, source_id: str) -> None:
        super().__init__(
            f"{question!r} is already answered differently by curated answer {source_id};"
            " withdraw or edit that one first"
        )
        self.question = question
        self.correction_id = correction_id
        self.source_id = source_id
