"""Messages that only give the customer's details: an order or ticket number, an e-mail
address or a phone number, with nothing around them but "it's", "my order number is",
"here you go" or "thanks".

Customers send these after the bot asked for their order number, or as a reply to a
person, or to open a conversation ("JO-610022 thanks"). Searched in the logs like a
question, such a message matched whatever past reply shared a word with it: a tester's
customer who wrote "it's JO-771204" after asking for a refund of a double charge was
answered, sure of itself, with a copied reply about shipping times. The bot can do nothing
with the details itself, so the engine does not search them: it asks what the customer
needs help with when nothing was asked before, and hands the conversation to a person when
something was (the details are for the person who acts on the question).

Calibration leaves such turns out of the questions it fits the hand-off on, as it does for
small talk (:func:`retrieval.small_talk.answered_with_set_reply`).

The words allowed around the details are a closed list, and any other word makes the
message a question ("where is JO-771204?", "refund for order JO-553201"): a miss costs what
it cost before, a search.
"""

from __future__ import annotations

import re

from retrieval.pii import PLACEHOLDERS, REFERENCE_PLACEHOLDER, mask_references, references_in

# What a customer's details look like once the scrubber has been over them: e-mail
# addresses and phone numbers replaced, order and ticket numbers kept as written and
# masked here ("JO-771204", "1Z999AA10123456784", "553201").
_DETAIL_PLACEHOLDERS = (
    PLACEHOLDERS["email"],
    PLACEHOLDERS["phone"],
    REFERENCE_PLACEHOLDER,
)
_DETAIL = re.compile("|".join(re.escape(p) for p in _DETAIL_PLACEHOLDERS))
# A short order number is one only when named: "order no. 4417", "ticket #812"; a bare
# "4417" may be an amount or a year.
_NAMED_SHORT_NUMBER = re.compile(
    r"\b(?P<name>order|ticket|ref|reference|case)\b(?P<between>(?:\s+(?:number|no\.?|nr|id))?"
    r"(?:\s+is)?\s*[:#]?\s*)#?\d{3,}\b",
    re.IGNORECASE,
)
# Words that say nothing but "here are my details": who they belong to, what they are,
# a greeting or thanks around them. No verb of a request ("refund", "track", "check"), no
# question word, no negation: any of those makes the message something to answer.
_FILLER_WORDS = frozenset({
    "it", "it's", "its", "is", "was", "this", "that", "that's", "thats", "here", "there",
    "you", "go", "are",
    "my", "our", "the", "order", "orders", "number", "numbers", "no", "nr", "num", "id",
    "ref", "reference", "ticket", "case", "account", "email", "e", "mail", "address",
    "phone", "mobile", "tel", "telephone", "cell", "contact", "details", "name",
    "and", "also", "at", "on", "i'm", "im", "me",
    # how a phone number or an address is given: "you can reach me at", "ring me on"
    "can", "reach", "feel", "free", "to", "ring", "call",
    "oh", "ah", "um", "uh", "erm", "so", "like",
    "hi", "hello", "hey", "ok", "okay", "sure", "yes", "yeah", "yep", "yup", "sorry",
    "please", "pls", "thanks", "thank", "thx", "ty", "cheers",
})  # fmt: skip
_NOT_WORDS = re.compile(r"[^a-z' ]+")
_LONGEST_S = 120  # characters: details with a few words around them are short


def _masked(text: str) -> str:
    """``text`` with its order and ticket numbers as ``[REFERENCE]``."""
    named = _NAMED_SHORT_NUMBER.sub(rf"\g<name>\g<between>{REFERENCE_PLACEHOLDER}", text)
    return mask_references(named, references_in([named]))


def gives_details_only(text: str) -> bool:
    """Whether ``text`` (as scrubbed) gives an order or ticket number, an e-mail address
    or a phone number and nothing else but the filler words around them ("it's JO-771204",
    "order number JO-553201", "my email is [EMAIL]", "JO-610022 thanks")."""
    if len(text) > _LONGEST_S:
        return False
    masked = _masked(text)
    if not _DETAIL.search(masked):
        return False
    rest = _NOT_WORDS.sub(" ", _DETAIL.sub(" ", masked).lower().replace("’", "'"))
    return all(word in _FILLER_WORDS for word in rest.split())
