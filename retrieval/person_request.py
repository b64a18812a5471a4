"""Messages in which the customer asks, in words, for a person.

The widget's "Talk to a human" button hands a conversation to the operators with the
polite notice and the flag "The customer asked for a person". A customer who typed "I want
to talk to a real person" or just "agent" instead was searched for in the logs like a
question, found nothing the bot was sure of, and got the low-confidence notice ("I'm not
sure I have the right answer to that"), flagged "Low confidence": the bot seemed not to have
understood, and the operators did not see that the customer had asked for them. The engine
hands such a message off as the button does (``EngineConfig.answer_small_talk`` turns both
this and the set replies of :mod:`retrieval.small_talk` off).

The patterns are a closed list, kept conservative, because a match hands the conversation
over and the bot falls silent:

* a whole message that is only the person asked for, with "please" or a greeting around it
  ("agent", "human please", "a real person", "customer service representative");
* a sentence that is a request to talk to one: a lead ("can I", "I want to", "I'd like to",
  "let me", "how do I", or none) before "talk to / speak with / get / connect me to" and
  the person, then nothing but "please", "now" and the like, or what it is about
  ("... about my refund"). "I need a human", "I want a person" and "is there a human I can
  talk to" count too.

What only mentions a person is no request: "the agent told me to return it", "my agent
said...", "is a human going to read this?", "I spoke to an agent yesterday", "I don't want
to talk to a human". "Am I talking to a human?" is a question about the bot
(:class:`retrieval.small_talk.Pleasantry` IDENTITY). A miss costs what it cost before: the
message is searched like a question.
"""

from __future__ import annotations

import re

# Words that may open a request without changing it: "hi, can I...", "ok then, agent".
_OPENERS = (
    r"(?:hi|hello|hey|hi there|hello there|ok|okay|so|um+|erm+|well|actually|sorry|"
    r"excuse me|yes|yeah|no|nope|just|look|listen|thanks|thank you|please|pls|plz|then|"
    r"honestly|seriously|but|and|name)"
)
# What may follow the request and change nothing: "... please", "... right now".
_CLOSERS = (
    r"(?:please|pls|plz|now|right now|asap|immediately|urgently|today|instead|then|again|"
    r"directly|thanks|thank you|thx|ty)"
)
_PLEASE = r"(?:please|pls|plz|just|now|possibly|maybe)"
_ADJECTIVES = (
    r"(?:real|actual|live|living|proper|genuine|customer (?:service|support|care)|"
    r"support|service|care|senior|same|other|different|previous)"
)
_DETERMINERS = r"(?:a|an|the|some|your|one of your|one of the|any|another)"
# Who a customer asks for when the message is nothing else: "agent", "a real person".
_ALONE = (
    r"(?:humans?|human beings?|person|people|agents?|representatives?|reps?|operators?|"
    r"staff member|member of staff)"
)
# Who they ask to talk to ("talk to someone", "speak to your manager"); "name" is a name
# the scrubber replaced ("can I speak to [NAME] again").
_TALKED_TO = (
    rf"(?:{_ALONE}|someone|somebody|anyone|anybody|managers?|supervisors?|advis[eo]rs?|staff|"
    r"support|team members?|customer (?:service|support|care)|"
    r"(?:support|service|customer service|customer support|help|care) "
    r"(?:team|desk|staff|department)|"
    r"members? of (?:the |your )?(?:support |customer service |customer support )?"
    r"(?:team|staff)|name)"
)
# Who they say they want or need ("I need a human"): not "support" or "help", which are
# what a question asks for ("I need support with my order").
_WANTED = rf"(?:{_ALONE}|someone|somebody|managers?|supervisors?)"


def _person(nouns: str) -> str:
    return rf"(?:{_DETERMINERS} )?(?:{_ADJECTIVES} )*{nouns}"


_TO_TALK = (
    r"(?:talk|speak|chat|get through|get put through|be put through|be transferred|"
    r"get transferred|be connected|get connected|be passed|be put in touch|get in touch|"
    r"speak directly|talk directly)"
)
# Whom: only a person (_WANTED). "How do I contact customer service?" is a question the
# logs answer (with the phone number); "how do I reach a human?" asks for one.
_REACH = r"(?:get|have|reach|contact)"
# "I want to", "I'd like to", "can I", "let me", "how do I": what makes a sentence a request.
_LEADS = (
    r"(?:i|we) (?:really |just |actually |still |only )?"
    r"(?:want|need|wish|have|would like|would love|would prefer|prefer|am trying|am asking|"
    r"am hoping|was hoping) to",
    r"(?:i'd|id|we'd) (?:really |just )?(?:like|love|prefer) to",
    r"(?:i'm|im|we're) (?:trying|asking|hoping|wanting|looking) to",
    r"(?:want|need|would like) to",
    r"(?:i |we )?(?:wanna|must|gotta)",
    r"(?:i would|i'd|id|we would|we'd) rather",
    r"(?:can|could|may|might) (?:i|we)(?: possibly)?",
    r"i was wondering if i could",
    r"(?:is it possible|is there a way|is there any way) to",
    r"(?:how|where) (?:do|can|could) i",
    r"(?:(?:can|could|would|will) (?:you|u) )?(?:please )?let me",
)
_REQUEST = (
    rf"(?:(?:{'|'.join(_LEADS)})(?: {_PLEASE})? )?"
    rf"(?:{_TO_TALK} (?:to|with) {_person(_TALKED_TO)}|{_REACH} {_person(_WANTED)})"
)
# "get me a human", "connect me to an agent", "can you put me through to someone".
_PUT_THROUGH = (
    rf"(?:(?:can|could|would|will) (?:you|u) )?(?:{_PLEASE} )?"
    rf"(?:(?:get|find) me {_person(_TALKED_TO)}|"
    rf"(?:get|put|connect|transfer|pass|send|switch|hand) me (?:over |through |on )?(?:to|with) "
    rf"{_person(_TALKED_TO)})"
)
# "I need a human", "I want a real person", "I need help from a person".
_WANT = (
    r"(?:(?:i|we) (?:really |just |only |still )?(?:want|need|would like|would prefer|prefer|"
    r"demand|require)|(?:i'd|id) (?:really )?(?:like|prefer)|(?:i|we) (?:wanna|gotta have)) "
    rf"(?:{_person(_WANTED)}|help from {_person(_TALKED_TO)})"
)
# "is there a human I can talk to?"
_IS_THERE = (
    rf"(?:is|are) there {_person(_TALKED_TO)} (?:i|we) (?:can|could) (?:talk|speak|chat) "
    r"(?:to|with)"
)
# What the request is about may follow it: "... about my refund", "... as soon as possible".
_ABOUT = r"(?:about|regarding|re|concerning|because|cause|cos|as) .+"

_ASKED_ALONE = re.compile(rf"(?:{_OPENERS} )*{_person(_ALONE)}(?: {_ALONE})*(?: {_CLOSERS})*")
_ASKED_IN_SENTENCE = re.compile(
    rf"(?:{_OPENERS} )*(?:{_REQUEST}|{_PUT_THROUGH}|{_WANT}|{_IS_THERE})"
    rf"(?: {_CLOSERS})*(?: {_ABOUT})?"
)
_SENTENCES = re.compile(r"[.!?;,:\n]+")
_NOT_WORDS = re.compile(r"[^a-z' ]+")
_LONGEST = 500  # characters: a longer message is read as the question it surely holds


def _plain(text: str) -> str:
    """``text`` (lower-case) in words: apostrophes kept within a word ("i'd") and dropped
    around one ('agent'), everything else a space."""
    words = (word.strip("'") for word in _NOT_WORDS.sub(" ", text).split())
    return " ".join(word for word in words if word)


def asks_for_person(text: str) -> bool:
    """Whether ``text`` asks to be put through to a person (a member of the support team):
    the whole message names one ("agent", "a real person please"), or one of its sentences
    is a request to talk to one ("hi, can I speak to a human?", "this is not acceptable, I
    want to speak to a manager"). Case, punctuation and emoji aside."""
    if len(text) > _LONGEST:
        return False
    lowered = text.lower().replace("’", "'")
    if _ASKED_ALONE.fullmatch(_plain(lowered)) is not None:
        return True
    return any(
        _ASKED_IN_SENTENCE.fullmatch(_plain(sentence)) is not None
        for sentence in _SENTENCES.split(lowered)
    )
