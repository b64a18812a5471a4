"""Messages that are only a greeting, thanks, an acknowledgement, a goodbye, or a question
whether the customer is talking to a bot.

Customers end most conversations with "thanks!" and start many with "hi". Searched in the
logs like a question, such a message has no answer the bot is sure of, so it was handed to
a person: the operators' queue filled with thank-yous, and the bot fell silent for the rest
of a conversation that had gone well. The engine answers these with a set reply instead
(``EngineConfig.greeting_reply`` and its siblings; ``answer_small_talk`` turns it off).

Calibration leaves such turns out of the questions it fits the hand-off on
(retrieval.calibration, retrieval.figures): the engine never searches the logs for them, and
a logged "awesome, appreciate it" judged against another agent's "You're welcome!" only
taught the fit that a perfect match can be wrong.

Only a message made entirely of such phrases counts: "thanks, but it still hasn't arrived"
is a question like any other. The phrases are a closed list, so a miss costs what it cost
before (a hand-off), never a wrong answer.
"""

from __future__ import annotations

import re
from enum import StrEnum

from retrieval.person_request import asks_for_person


class Pleasantry(StrEnum):
    GREETING = "greeting"
    THANKS = "thanks"
    ACKNOWLEDGEMENT = "acknowledgement"
    GOODBYE = "goodbye"
    # "are you a robot?": asked by many customers before they trust an answer. Handed off
    # as a question the logs do not answer, it waited in the operators' queue.
    IDENTITY = "identity"


_PHRASES: dict[Pleasantry, tuple[str, ...]] = {
    Pleasantry.GREETING: (
        r"hi+",
        r"hello+",
        r"hey+",
        r"hiya",
        r"howdy",
        r"greetings",
        r"good (?:morning|afternoon|evening|day)",
        r"morning",
        r"(?:hi|hello|hey) there",
        r"how are you(?: doing)?(?: today)?",
        r"how's it going",
        r"hope you(?: are|'re) (?:well|doing well)",
    ),
    Pleasantry.THANKS: (
        r"thanks?",
        r"thank (?:you|u)",
        r"thanku",
        r"thx",
        r"ty",
        r"tysm",
        r"cheers",
        r"many thanks",
        r"much appreciated",
        r"(?:i )?(?:really )?appreciate (?:it|that|your help|the help)",
        r"(?:for|4) (?:the|your|all the|all your) (?:help|info|information|reply|answer|time|"
        r"quick reply|quick response|assistance|support)",
        r"for (?:helping|that|this|everything)",
        r"that (?:helps|helped|was helpful|is helpful)",
        r"that's (?:helpful|great|perfect|brilliant)",
        r"you(?:'re| are) (?:the best|a star|great|awesome)",
    ),
    Pleasantry.ACKNOWLEDGEMENT: (
        r"ok(?:ay)?",
        r"k",
        r"kk",
        r"alright",
        r"all right",
        r"great",
        r"perfect",
        r"awesome",
        r"cool",
        r"nice",
        r"brilliant",
        r"lovely",
        r"excellent",
        r"fantastic",
        r"wonderful",
        r"super",
        r"sweet",
        r"sounds good",
        r"got it",
        r"understood",
        r"makes sense",
        r"i see",
        r"noted",
        r"will do",
        r"fair enough",
    ),
    Pleasantry.GOODBYE: (
        r"bye",
        r"bye bye",
        r"goodbye",
        r"good bye",
        r"see (?:you|ya)",
        r"take care",
        r"have a (?:good|nice|great|lovely) (?:day|one|evening|weekend|night)",
        r"you too",
        r"that's all",
        r"that is all",
        r"that's it",
        r"that's everything",
        r"nothing else",
        r"no thanks?",
        r"no thank you",
        r"(?:i'm|i am) (?:good|all set|fine)",
        r"all (?:set|good)",
    ),
    Pleasantry.IDENTITY: (
        r"(?:are|r) (?:you|u) (?:a |an )?(?:real )?(?:bot|robot|ai|chatbot|machine|computer)",
        r"is (?:this|that) (?:a |an )?(?:bot|robot|ai|chatbot|machine|automated)",
        r"(?:am i )?(?:talking|speaking|chatting) (?:to|with) (?:a |an )?(?:bot|robot|ai|chatbot|"
        r"machine)",
        r"(?:are|r) (?:you|u) (?:a )?(?:real )?(?:human|person)",
        r"am i (?:talking|speaking|chatting) (?:to|with) (?:a )?(?:real )?(?:human|person)",
        r"who (?:are|r) (?:you|u)",
        r"what are you",
    ),
}

# Words that go with the phrases but say nothing on their own ("[NAME]" is a name the
# scrubber replaced: "thanks Sarah").
_FILLERS = (
    r"(?:so|very) much",
    r"a lot",
    r"again",
    r"really",
    r"just",
    r"and",
    r"oh",
    r"ah",
    r"wow",
    r"yes",
    r"yeah",
    r"yep",
    r"mate",
    r"guys",
    r"team",
    r"folks",
    r"everyone",
    r"name",
)

# The order a mixed message is answered in: "ok thanks bye" is a goodbye, "hi, thanks" thanks.
_PRECEDENCE = (
    Pleasantry.IDENTITY,
    Pleasantry.GOODBYE,
    Pleasantry.THANKS,
    Pleasantry.ACKNOWLEDGEMENT,
    Pleasantry.GREETING,
)

_ANY = "|".join([*(phrase for phrases in _PHRASES.values() for phrase in phrases), *_FILLERS])
# The whole message, phrase after phrase (the engine backtracks to where phrases end).
_ONLY_PHRASES = re.compile(rf"(?:{_ANY})(?: (?:{_ANY}))*")
_KIND = {
    kind: re.compile(rf"(?:^| )(?:{'|'.join(phrases)})(?= |$)")
    for kind, phrases in _PHRASES.items()
}
_NOT_WORDS = re.compile(r"[^a-z' ]+")
_LONGEST_S = 80  # characters: small talk is short; a longer message is read as a question


def pleasantry(text: str) -> Pleasantry | None:
    """What ``text`` is when it is nothing but greetings, thanks, acknowledgements and
    goodbyes (punctuation, emoji and case aside, with a name or "so much" here and there);
    None for anything else."""
    if len(text) > _LONGEST_S:
        return None
    words = _NOT_WORDS.sub(" ", text.lower().replace("’", "'")).split()
    normal = " ".join(words)
    if not normal:
        return None
    if _ONLY_PHRASES.fullmatch(normal) is None:
        return None
    return next((kind for kind in _PRECEDENCE if _KIND[kind].search(normal)), None)


def answered_with_set_reply(text: str) -> bool:
    """Whether the engine answers ``text`` with one of its set replies and never from the
    logs: small talk, or a request for a person (:mod:`retrieval.person_request`), which it
    hands off as the widget's button does. Calibration leaves such turns out."""
    return pleasantry(text) is not None or asks_for_person(text)
