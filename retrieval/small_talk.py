"""Messages that are only a greeting, a "how are you", thanks, an acknowledgement, a goodbye,
or a question whether the customer is talking to a bot.

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
is a question like any other. After an answer, so does a closing remark: thanks or an
acknowledgement with a short statement of what the customer will do ("ok I will check the
guide, thanks"), and nothing that asks or reports. The phrases are a closed list, so a miss
costs what it cost before (a hand-off), never a wrong answer.
"""

from __future__ import annotations

import re
from enum import StrEnum

from retrieval.details_only import gives_details_only
from retrieval.person_request import asks_for_person


class Pleasantry(StrEnum):
    GREETING = "greeting"
    # "how are you today?": answered with the greeting's "Hi! How can I help you today?", it
    # read as if the bot had not listened.
    WELLBEING = "wellbeing"
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
        r"hope you(?: are|'re) (?:well|doing well)",
    ),
    # How the bot itself is, asked in so many words; "how is it going with my refund?" is a
    # question, as a message counts only when it is phrases and nothing else.
    Pleasantry.WELLBEING: (
        r"how (?:are|r) (?:you|u)(?: doing)?(?: today)?",
        r"how(?:'s| is|s) it going(?: today)?",
        r"how(?:'s| is|s) your day(?: going)?",
        r"how have you been",
        r"how are things",
        r"how you doing",
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

# The order a mixed message is answered in: "ok thanks bye" is a goodbye, "hi, thanks" thanks,
# "hi, how are you?" a "how are you".
_PRECEDENCE = (
    Pleasantry.IDENTITY,
    Pleasantry.GOODBYE,
    Pleasantry.THANKS,
    Pleasantry.WELLBEING,
    Pleasantry.ACKNOWLEDGEMENT,
    Pleasantry.GREETING,
)

_ANY = "|".join([*(phrase for phrases in _PHRASES.values() for phrase in phrases), *_FILLERS])
_PHRASE = re.compile(rf"(?:{_ANY})")
# Longer than any phrase ("that is all i needed to know", "am i talking to a real human":
# 7 words); a test holds both.
_MOST_PHRASE_WORDS = 12
_KIND = {
    kind: re.compile(rf"(?:^| )(?:{'|'.join(phrases)})(?= |$)")
    for kind, phrases in _PHRASES.items()
}
_NOT_WORDS = re.compile(r"[^a-z' ]+")
_LONGEST_S = 80  # characters: small talk is short; a longer message is read as a question


def _normal(text: str) -> str:
    """Lower case words and apostrophes only, one space apart."""
    return " ".join(_NOT_WORDS.sub(" ", text.lower().replace("’", "'")).split())


def _only_phrases(normal: str, phrase: re.Pattern[str]) -> bool:
    """Whether ``normal`` is phrase after phrase and nothing else.

    Read word by word, remembering where a phrase can end, rather than as one regex
    ``phrase( phrase)*``: phrases that overlap ("bye" and "bye bye") made that regex try
    every way of splitting a message that fails at its end, doubling the time every two
    words (0.1 s for "bye " 25 times and an "x")."""
    words = normal.split(" ")
    ends = {0}
    for start in range(len(words)):
        if start not in ends:
            continue
        for end in range(start + 1, min(len(words), start + _MOST_PHRASE_WORDS) + 1):
            if end not in ends and phrase.fullmatch(" ".join(words[start:end])):
                ends.add(end)
    return len(words) in ends


def _kind_of(normal: str, kinds: tuple[Pleasantry, ...] = _PRECEDENCE) -> Pleasantry | None:
    return next((kind for kind in kinds if _KIND[kind].search(normal)), None)


def _only_pleasantries(text: str) -> Pleasantry | None:
    if len(text) > _LONGEST_S:
        return None
    normal = _normal(text)
    if not normal or not _only_phrases(normal, _PHRASE):
        return None
    return _kind_of(normal)


# -- closing remarks ------------------------------------------------------------------------
# After an answer, customers close with thanks and what they will do next: "ok I will check
# the guide, thanks", "great, I'll try that now", "perfect that's all I needed". Searched like
# a question, such a remark found nothing the bot was sure of and was handed to a person: the
# conversation stayed with the operators and one got a review flag for nothing. A closing
# remark is thanks, an acknowledgement or a goodbye plus at most two short statements of what
# the customer will do (or that it worked), and nothing else: no question mark, no "but",
# "not" or "still", no request, no clause of its own. Anything else is searched as before.

# Said only to close, so counted only after an answer: "that's all I needed", "it worked".
_CLOSING_PHRASES: dict[Pleasantry, tuple[str, ...]] = {
    Pleasantry.GOODBYE: (
        r"(?:that's|that is|thats) (?:all|everything|it)(?: i (?:need|needed|wanted)"
        r"(?: to know)?| for (?:now|today))",
        r"(?:that's|that is|thats) what i (?:needed|wanted|was looking for)",
    ),
    Pleasantry.ACKNOWLEDGEMENT: (
        r"(?:that|this|it) (?:worked|works|did it|did the trick|fixed it|sorted it|answers it|"
        r"answers my question|answered my question|makes sense|clears it up|cleared it up)"
        r"(?: now)?",
        r"(?:all )?sorted(?: now)?",
        r"(?:i )?found it",
    ),
}
# "No" to "anything else?", as the first word and before thanks or a goodbye: a lone "no"
# may answer "did that solve it?".
_NO = ("no", "nope", "nah")
# Who is about to do it: "I'll", "I'm going to", "let me", or no one ("will try that").
_SUBJECT = (
    r"(?:i'll|ill|i will|i shall|we'll|we will|let me|i'm going to|im going to|"
    r"i am going to|i'm gonna|im gonna|gonna|going to|will|i'll have to|i will have to|"
    r"i'd better)"
)
# "go" before the verb: "I'll go print the label", "I'll go check my inbox".
_ADVERB = r"(?:just|now|definitely|then|first|probably|go ahead and|have to|go and|go)"
# What the customer will do on their own: reading, trying, waiting, contacting someone else.
# Not sending the team something ("I'll send you the photos"): a person has to act on that.
_VERB = (
    r"(?:check(?: out| on| back| (?:it|that|them) out)?|double check|try(?: again)?|retry|"
    r"give (?:it|that|this|them|those|that one|it all) (?:a )?(?:go|try|shot|whirl)|"
    r"have a (?:look|go|read|try)|take a look|look(?: into| at| for| out for| through)?|"
    r"read(?: through)?|go through|follow|wait(?: for| until| till)?|"
    r"keep an eye (?:out|on)|watch (?:for|out for)|look forward to|"
    r"contact|call|ring|email|message|reach out to|get in touch with|speak to|talk to|"
    r"do (?:that|it|this|so|the same)|go ahead(?: with)?|go with|use|reset|restart|update|"
    r"change|register|download|install|fill (?:in|out)|order|reorder|place|return|"
    r"sign up(?: for)?|print(?: out)?|"
    r"log in(?:to)?|refresh|clear|visit|head (?:over )?to|pop (?:in|into|by)|drop by|stop by|"
    r"be patient|sit tight|hang (?:on|tight)|hold on|let you know|get back to you|"
    r"come back|figure it out|sort it(?: out)?|manage|book|pick (?:it|them) up|keep)"
)
# What it is done to: a short noun phrase ("the guide", "my spam folder", "it"), perhaps
# with a preposition ("at the guide", "on my inbox") and a time ("now", "tomorrow"). Never a
# question, a problem, a request or a new clause: "I'll check the guide my card broke" is a
# problem, "I'll wait, but it still hasn't come" too, "I'll check, where is it" a question.
_PRONOUN = r"(?:it|that|this|them|those|these|everything|both|that one|this one)"
_DETERMINER = r"(?:the|my|a|an|your|our|some|his|her|their|that|this|these|those)"
# Not "to": "the guide locations to withdraw money" is a question run on.
_PREPOSITION = r"(?:for|on|in|at|from|with|into|about|through|over)"
_WHEN = (
    r"(?:now|right now|today|tomorrow|tonight|later|soon|then|first|again|asap|"
    r"this (?:morning|afternoon|evening|week|weekend)|next week|in a (?:bit|while|few days)|"
    r"on (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
)
_NOT_NOUN = (
    r"(?:how|what|what's|whats|where|where's|when|why|which|who|whom|whose|but|however|"
    r"though|although|still|yet|not|never|no|nothing|none|nobody|if|whether|or|unless|"
    r"except|because|cause|since|until|till|[a-z]+n't|dont|doesnt|didnt|isnt|wasnt|arent|"
    r"werent|havent|hasnt|hadnt|cant|wont|couldnt|wouldnt|shouldnt|aint|"
    r"problem|problems|issue|issues|error|errors|wrong|broken|broke|damaged|missing|late|"
    r"lost|stuck|failed|fails|declined|blocked|stolen|charged|help|need|needs|needed|want|"
    r"wanted|please|pls|plz|can|could|would|should|may|might|must|also|another|else|more|"
    r"fine|good|bad|terrible|awful|useless|slow|annoying|ridiculous|unacceptable|"
    r"confusing|frustrating|weird|strange|odd|unhappy|trouble|fraud|scam|hacked|expires|cancel|"
    # a past tense or participle starts a report: "someone hacked into", "card declined"
    r"[a-z]+ed|"
    r"you|your|i|i'm|im|i've|ive|i'd|id|we|we're|they|they're|he|she|it's|there|is|are|"
    r"was|were|be|been|am|has|have|had|do|does|did|got|get|and|to|"
    # where the remark's thanks or goodbye begins: "I'll check the guide thanks"
    r"thanks|thank|thx|ty|tysm|cheers|much|many|appreciate|appreciated|bye|goodbye|ok|"
    r"okay|great|perfect|cool|awesome|nice|brilliant|lovely|excellent|fantastic|"
    r"wonderful|super|sweet|alright|that's|thats|sounds|see|take|speak|talk)"
)
_NOUN = rf"(?!(?:{_NOT_NOUN}|{_PRONOUN}|{_DETERMINER}|{_PREPOSITION}|{_WHEN})(?: |$))[a-z']+"
_NOUN_PHRASE = rf"(?:{_PRONOUN}|(?:{_DETERMINER} )?{_NOUN}(?: {_NOUN})?)"
_OBJECT = rf"(?: {_NOUN_PHRASE})?(?: {_PREPOSITION} {_NOUN_PHRASE})?(?: {_WHEN}){{0,2}}"
_ACTION = rf"(?:{_ADVERB} ){{0,3}}{_VERB}{_OBJECT}"
# "I'll check the guide and let you know": at most one more action joined by "and".
# Atomic groups: a statement is read once, never re-split, so time stays linear. The end of
# a word is checked inside: outside, "pop in" would be kept of "pop into" and then fail.
_STATEMENT = re.compile(rf"(?<![a-z'])(?>{_SUBJECT} {_ACTION}(?: and {_ACTION})?(?= |$))")
# A statement ends with its sentence or clause: "I'll check the guide. My card broke."
_CLAUSE_END = re.compile(r"[.,;:!\n]+|\s[-–—]+\s")
_MOST_STATEMENTS = 2
_CLOSING_ANY = "|".join(
    [_ANY, *(phrase for phrases in _CLOSING_PHRASES.values() for phrase in phrases)]
)
_CLOSING_PHRASE = re.compile(rf"(?:{_CLOSING_ANY})")
_CLOSING_KIND = {
    kind: re.compile(rf"(?:^| )(?:{'|'.join((*phrases, *_CLOSING_PHRASES.get(kind, ())))})(?= |$)")
    for kind, phrases in _PHRASES.items()
}
_CLOSING = (Pleasantry.GOODBYE, Pleasantry.THANKS, Pleasantry.ACKNOWLEDGEMENT)
_NUMBER = re.compile(r"\d{3,}")  # an order or phone number: information for a person
_LONGEST_CLOSING_S = 100


def _closing_remark(text: str) -> Pleasantry | None:
    if len(text) > _LONGEST_CLOSING_S or "?" in text or _NUMBER.search(text):
        return None
    return _closing_kind(text)


def _closing_kind(text: str) -> Pleasantry | None:
    """The kind of a closing remark; None for anything else. Time linear in the words
    (benchmarks/small_talk_closers.py fuzzes it without the length cap)."""
    rest: list[str] = []
    statements = 0
    for clause in _CLAUSE_END.split(text):
        left, found = _STATEMENT.subn(" ", _normal(clause))
        rest.append(left)
        statements += found
    if statements > _MOST_STATEMENTS:
        return None
    words = " ".join(rest).split()
    answered_no = bool(words) and words[0] in _NO
    said = " ".join(words[1:] if answered_no else words)
    if not said or not _only_phrases(said, _CLOSING_PHRASE):
        return None
    if _KIND[Pleasantry.IDENTITY].search(said):
        return None
    kinds = (Pleasantry.GOODBYE, Pleasantry.THANKS) if answered_no else _CLOSING
    return next((kind for kind in kinds if _CLOSING_KIND[kind].search(said)), None)


def pleasantry(text: str, *, after_answer: bool = False) -> Pleasantry | None:
    """What ``text`` is when it is nothing but greetings, thanks, acknowledgements and
    goodbyes (punctuation, emoji and case aside, with a name or "so much" here and there);
    None for anything else.

    ``after_answer``: the bot or an operator has answered in this conversation. Then a
    closing remark counts too, as thanks, an acknowledgement or a goodbye: "ok I will check
    the guide, thanks", "perfect that's all I needed". As a first message such a remark
    thanks for nothing and is more likely a question badly put, so it is searched."""
    kind = _only_pleasantries(text)
    if kind is None and after_answer:
        kind = _closing_remark(text)
    return kind


def answered_with_set_reply(text: str, *, after_answer: bool) -> bool:
    """Whether the engine answers ``text`` with one of its set replies and never from the
    logs: small talk (closing remarks only ``after_answer``, as :func:`pleasantry`), a
    request for a person (:mod:`retrieval.person_request`), which it hands off as the
    widget's button does, or a message that only gives the customer's details
    (:mod:`retrieval.details_only`), which it asks about or hands off. Calibration leaves
    such turns out."""
    return (
        pleasantry(text, after_answer=after_answer) is not None
        or asks_for_person(text)
        or gives_details_only(text)
    )
