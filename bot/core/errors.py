"""Domain errors raised by the engine and stores; adapters map them to statuses."""


class SupportbotError(Exception):
    """Base class of the errors the core raises on purpose."""


class ConversationNotFound(SupportbotError):
    pass


class TurnNotFound(SupportbotError):
    pass


class FlagNotFound(SupportbotError):
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
