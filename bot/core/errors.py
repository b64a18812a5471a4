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
    """The conversation is with a human; the bot must not answer."""


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
