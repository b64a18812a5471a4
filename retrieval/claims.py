"""What a past agent reply says its agent did, which the bot copying it has not done.

An agent's reply often reports an action on the customer's order or account: "I've
cancelled it for you", "I've resent it to the recipient's email address", "I've escalated
your case to a senior member of our team". Copied to the next customer, it tells them
something happened that did not: they wait for a refund nobody issued. Four kinds:

* an action on the account or the order (cancel, refund, resend, update, escalate, open a
  claim, remove from a list, look it up, note on it): only a person can do it, so the
  conversation goes to one, with the past reply shown to the operator as what was done
  before;
* what the reply says of THIS customer's case, which nobody checked, and goes to a person
  too: something they sent outside the chat received ("Got them, thank you!", "Thanks,
  I've got the photos."), their order under way or become something ("The correct item is
  going out by express shipping", "the cancellation went through", "this order has
  already been packed, so it can no longer be cancelled"), a verdict on their case
  ("Perfect, that qualifies.", "so yours isn't affected"), or a bare "Done!";
* a request for details that an agent would act on ("Could you send me the order number
  so I can take a look?", "Please reply with a couple of photos of the damage", "Send us
  the link and your order number, and the difference goes back to your original payment
  method"): the bot looks nothing up and nobody reads what is sent to it (the widget takes
  text alone), so the customer would answer and wait on work nobody does. It goes to a
  person too, even where the rest of the reply is policy: in the sample the request is
  either the whole reply or the one way to what the policy offers (the label, the
  replacement, the price match), so the reply without it would promise what nobody starts.
  A request the customer acts on alone is sent ("file a claim at https://... with your
  order number and photos", "bring your order number", "reply STOP");
* a promise to send what the reply itself can carry ("I'm sending you a link to article
  KB-ORD-05 right now.", "I'll also email you the help article for this, it's KB-ORD-03."):
  the sentence is replaced by the references it names ("See KB-ORD-05."), or dropped when
  it names none, and the rest of the answer is sent.

First person ("I", "we" with a perfect: "we've refunded"), or done to the customer or
their order ("you've been unsubscribed", "your refund has been issued", "the order has
already shipped"): "we refund within 5 days", "the difference is refunded within 5-7
business days" (a present: the process), "an order that's already been placed" (any
order), "once your return has been received" (a condition) and "we'll email you a prepaid
label" (what the process does next, true for whoever it reaches) state a policy, not
something done. A sentence that only says the order was looked up ("I've looked into it.")
is dropped and the rest sent. A promise to have it done ("Send me a photo and I'll have
the correct one shipped") is withheld too. Of the sample's 1,670 agent replies
(data/sample/conversations.jsonl) 354 are withheld so (148 of them for a request for
details), and 112 more are sent without a promise to send or a look-up (``python
benchmarks/claims.py``, by kind of claim).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.chat_ready import chat_ready
from retrieval.facts import links_and_codes
from retrieval.records import RetrievedExchange

# Verbs of what an agent does to an order, an account or a case, in every form the
# first-person phrases below take them.
_ACTIONS = (
    "add|added|adding|apply|applied|applying|arrange|arranged|arranging|book|booked|booking|"
    "cancel|cancell?ed|cancell?ing|change|changed|changing|correct|corrected|correcting|"
    "credit|credited|crediting|email|emailed|emailing|escalate|escalated|escalating|"
    "extend|extended|extending|flag|flagged|flagging|forward|forwarded|forwarding|"
    "issue|issued|issuing|log|logged|logging|merge|merged|open|opened|opening|pass|passed|"
    "passing|place|placed|placing|process|processed|processing|raise|raised|raising|"
    "reactivate|reactivated|refund|refunded|refunding|reissue|reissued|remove|removed|"
    "removing|reorder|reordered|replace|replaced|replacing|request|requested|requesting|"
    "resend|resending|resent|reset|resetting|restore|restored|schedule|scheduled|"
    "scheduling|send|sending|sent|ship|shipped|shipping|unlock|unlocked|unlocking|"
    "unsubscribe|unsubscribed|update|updated|updating|upgrade|upgraded|upgrading|void|"
    "voided|waive|waived|waiving|create|created|creating|dispatch|dispatched|dispatching|"
    "start|started|starting|initiate|initiated|initiating|submit|submitted|submitting|"
    "file|filed|filing|approve|approved|approving|authori[sz]e|authori[sz]ed|activate|"
    "activated|deactivate|deactivated|delete|deleted|deleting|close|closed|closing|"
    "organi[sz]e|organi[sz]ed|set up|setting up|"
    # Looking the order up, or noting on it, is done in a system the bot cannot see:
    # "I've looked into it.", "I've noted that on your order." ("I've noted order
    # ORD-77" only repeats what the customer wrote).
    "check|checked|checking|look into|looked into|looking into|pull up|pulled up|"
    "not(?:e|ed|ing)(?: (?:that|it|this|down))? (?:on|in|against|to) (?:your|the)|"
    "receive|received|receiving"
)
_CLAIM = re.compile(
    r"\b(?:I(?:['’]ve| have| am|['’]m|['’]ll| will)|we(?:['’]ve| have))"
    r"(?:\s+(?:just|now|already|also|personally|manually|gone ahead and|going to))*"
    rf"\s+(?:{_ACTIONS})\b",
    re.IGNORECASE,
)
# Done, said of the customer or their order: "you've been unsubscribed", "it's been
# cancelled", "your refund has now been issued"; not a condition ("once your return has
# been received, ...").
_DONE = re.compile(
    r"^(?:(?!\b(?:once|when|after|if|until|before|unless)\b).)*?"
    r"\b(?:you(?:['’]ve| have)|it(?:['’]s| has)|your(?: [\w-]+){1,2}(?:['’]s| has| have))"
    rf"(?:\s+(?:now|already|just|also))*\s+been\s+(?:{_ACTIONS})\b",
    re.IGNORECASE,
)
# What the customer sent outside the chat, acknowledged as received: "Got them, thank
# you!", "Thanks, I've got the photos.", "I've got it here." (their order, looked up). The
# bot sees none of it; a bare "Got it." acknowledges the message itself and stays.
_SENT_OUTSIDE_CHAT = (
    r"(?:photo|picture|pic|image|screenshot|video|attachment|receipt|document|file)s?"
)
_RECEIVED = re.compile(
    r"(?:^|[.!?—–]\s*)got (?:them|those|these|it here|the \w+ here)\b"
    r"|\b(?:I(?:['’]ve| have)|we(?:['’]ve| have))(?:\s+(?:now|just|also))*\s+got"
    r"\s+(?:them|those|these|it|your|the)\b"
    rf"|\bthanks? (?:you )?for (?:sending |sharing |attaching )?(?:the|your|those|these)"
    rf"(?: \w+)? {_SENT_OUTSIDE_CHAT}\b",
    re.IGNORECASE,
)
# An action the agent promises to have done, whatever the condition: "Send me a photo and
# I'll have the correct one shipped" (8 of the sample's replies). The bot can have nothing
# shipped; a person can.
_HAVE_DONE = re.compile(
    r"\b(?:I|we)(?:['’]ll| will)\s+(?:have|get)\s+(?:[\w-]+\s+){1,4}?"
    r"(?:shipped|sent|dispatched|refunded|replaced|cancell?ed|processed|reissued|resent|"
    r"credited|exchanged|swapped|fixed|repaired)\b",
    re.IGNORECASE,
)
# "Done!", "All done.", "You're all set.": said alone, it reports what was done.
_DONE_ALONE = re.compile(
    r"^\W*(?:(?:all|it['’]s|that['’]s) )?(?:done|sorted)\b\W*$|\byou['’]re all set\b",
    re.IGNORECASE,
)
# This customer's order, refund or item, named with "the", "your", "this" (not "an order",
# which is the policy's), and what is happening to it or has become of it, which nobody
# checked: "The correct item is going out", "the cancellation went through", "this order
# has already been packed", "yours had already gone out", "so yours isn't affected",
# "Perfect, that qualifies.".
_THIS_ORDERS = (
    r"(?:(?:the|your|this)(?: [\w-]+){0,2} (?:order|item|parcel|package|refund|difference|"
    r"replacement|cancellation|exchange|return|label|stove|card|charge|payment|claim|trace|"
    r"shipment|delivery)s?|yours|it)"
)
_UNDER_WAY = "going out|on (?:its|their) way|heading (?:out|your way|to you)|being [a-z]+ed"
_BECOME = (
    "packed|shipped|dispatched|delivered|charged|processed|refunded|cancell?ed|approved|"
    "issued|credited|sent|gone out|left (?:our|the) warehouse|arrived"
)
_VERDICT = r"affected|eligible|part of the recall|qualif(?:y|ies)"
_STATE = re.compile(
    rf"\b{_THIS_ORDERS}(?:['’]s| is| are)?(?:\s+(?:already|now|just|also|still))*\s+"
    rf"(?:{_UNDER_WAY})\b"
    # Has become of it: a perfect or a past, never the present that states the process
    # ("the difference is refunded within 5-7 business days", "as soon as it's processed").
    rf"|\b{_THIS_ORDERS}(?:"
    r"(?:['’]s|['’]d| has| have| had| is| are)(?:\s+(?:already|now|just|also|still))*\s+been"
    r"|(?: has| have| had|['’]d)(?:n['’]t| not)?|['’]s(?=\s+already)"
    r"|(?: was| were)(?:n['’]t| not)?|(?=\s+(?:already|just)))"
    rf"(?:\s+(?:already|now|just|also|still|yet))*\s+(?:{_BECOME})\b"
    rf"|\b{_THIS_ORDERS}\s+(?:went through|missed)\b"
    # A verdict on this customer's case: "so yours isn't affected", "Perfect, that
    # qualifies." ("that" only where it starts the clause: "damage that is eligible" is
    # the policy's).
    rf"|(?:\b{_THIS_ORDERS}|(?:^|[,.!?]\s*)that)(?:['’]s| is| are| does)?(?:n['’]t| not)?"
    rf"(?:\s+(?:also|still|not|even))*\s+(?:{_VERDICT})\b",
    re.IGNORECASE,
)
# A request that the customer send details to the agent, who would act on them: "Could you
# send me the order number so I can take a look?", "What's your order number?", "Please
# reply with a couple of photos of the damage and the shipping box.", "Send me the link plus
# your order number; the difference is refunded ...", "Send us what the courier sent you and
# we'll take care of it.". The bot can look nothing up and nobody reads what is sent to it
# (the widget takes text alone), so the customer would wait on work nobody does. What the
# customer does alone is no such request: "file a claim at https://... with your order
# number and photos", "Bring your order number", "reply STOP", "send them to
# returns@example.com".
_DETAILS = (
    r"(?:order (?:number|no\.?|#|id)|e-?mail(?: address)?|photos?|pictures?|pics?|images?|"
    r"screenshots?|serial(?: number)?|receipt|packing slip|link|tracking number|account)"
)
_TO_THE_AGENT = (
    r"(?:send|share|give|tell|provide|forward|confirm|reply with|let (?:me|us) (?:know|have))"
)
_ASKS = re.compile(
    # A question: "Could you share the order number?", "Can I get your order number?",
    # "What's the order number?".
    rf"\b(?:could|can|would|will) you(?: please| just)?(?: also)? {_TO_THE_AGENT}\b"
    rf"[^.!?]*\b{_DETAILS}\b"
    rf"|\b(?:can|could|may) (?:I|we) (?:get|have|grab|take)\b[^.!?]*\b{_DETAILS}\b"
    rf"|\bwhat(?:['’]s| is| was) (?:your|the)(?: \w+)? {_DETAILS}\b"
    # An imperative, where a sentence or clause starts: "Please reply with a photo",
    # "Send us photos of the quilt", "If you can send a photo of the item".
    rf"|(?:^|[,;:—–]\s*|\b(?:please|just|simply|then|and|if you (?:can|could))\s+)"
    rf"(?:send|share|give|tell|provide|forward|reply with)(?: (?:me|us))?\b"
    rf"(?:[^.!?]*\b{_DETAILS}\b|[^.!?]*\b(?:and|so)(?: that)? (?:I|we)(?:['’]ll| will| can)\b)",
    re.IGNORECASE,
)
# Where the customer sends it themselves: a form or an address named in the request.
_SENT_ELSEWHERE = re.compile(r"\b(?:at|to|via|on|through)\s+(?:https?://|www\.|\S+@\S+\.\w)")
# A clause that sets a condition states the policy ("once your return has been received",
# "until the order is packed"); the claim is looked for in the clauses that do not.
_CLAUSE = re.compile(r"\s[—–-]\s|;|:|,\s*(?=(?:and|but|so|which)\b)")
_CONDITION = re.compile(
    r"\b(?:once|when|after|if|until|before|unless|as long as|as soon as)\b", re.IGNORECASE
)
# A sentence that only says the order was looked up, and nothing of what was found: "I've
# looked into it.", "Alright, I've got it here.". Dropped, the rest of the answer is the
# process, true for anyone; what was found ("I've checked: it shipped") is still claimed.
_LOOKED_UP_ONLY = re.compile(
    r"(?:(?:alright|all right|ok(?:ay)?|sure|absolutely|right|great|thanks)[,.!]?\s+)*"
    r"(?:I(?:['’]ve| have)|we(?:['’]ve| have))(?:\s+(?:just|now))?\s+"
    r"(?:looked into (?:it|this|that)|checked(?: (?:it|on it|that|this))?|got it here|"
    r"got your order (?:up|here)|pulled (?:it|your order) up|pulled up your order)[.!]?",
    re.IGNORECASE,
)
# A promise whose object the reply itself can carry: a link, an article, a guide.
_SENDS_INFORMATION = re.compile(
    r"\b(?:send|sending|sent|email|emailing|emailed|forward|forwarding)\b[^.!?]*"
    r"\b(?:link|article|guide|instructions|details|information|info|page|faq)\b",
    re.IGNORECASE,
)
# A sentence ends at its stop before a space (not inside a link) or at a line's end; its
# trailing spaces stay with it, so that the sentences join back to the reply.
_SENTENCE = re.compile(r"[^\n]*?(?:[.!?]+(?=\s|$)[ \t]*|\n|$)")


ACTION = "an action on the account or order"
HAVE_DONE = "a promise to have it done"
RECEIVED = "what the customer sent, received"
DONE_ALONE = "done, said alone"
CASE = "this customer's order or case"
LOOKED_UP = "only that the order was looked up"
ASKS_FOR_DETAILS = "asks for details a person must act on"
CLAIM_KINDS = (ACTION, HAVE_DONE, RECEIVED, DONE_ALONE, CASE, LOOKED_UP, ASKS_FOR_DETAILS)
"""What a withheld reply claims, as :attr:`CopyableReply.claim_kind` names it."""

PROMISE_TO_SEND = "a promise to send a link or article"
LOOK_UP = "a sentence that only says the order was looked up"
SHORTENINGS = (PROMISE_TO_SEND, LOOK_UP)
"""What a reply sent shortened goes without, as :attr:`CopyableReply.shortened` names it."""


@dataclass(frozen=True)
class CopyableReply:
    """A past reply as the bot may send it."""

    text: str
    # The sentence claiming an action only a person can take, or asking for details only a
    # person would act on (None: none): the bot must not send the reply, and a person
    # should take the conversation.
    claimed_action: str | None = None
    # Of CLAIM_KINDS, what that sentence claims (None with no claim).
    claim_kind: str | None = None
    # Of SHORTENINGS, what the text sent goes without (each once).
    shortened: tuple[str, ...] = ()


def withheld_best(hits: Sequence[RetrievedExchange]) -> bool:
    """Whether the engine, copying the best of ``hits``, would hand the message to a person
    instead (with ``engine.hand_off_claimed_actions``): a logged reply that claims an action,
    states that customer's case or asks for details a person must act on. An operator's
    correction is sent as written."""
    return (
        bool(hits)
        and hits[0].kind == "log"
        and copyable(hits[0].agent_reply).claimed_action is not None
    )


def as_copied(
    reply: str, kind: str, *, mid_conversation: bool, withhold_claims: bool = True
) -> CopyableReply:
    """``reply`` (a hit's ``agent_reply``, of ``kind``) as the engine sends it copied, so
    that what judges a copied answer (``supportbot calibrate``) reads what customers read:
    an operator's correction (``kind`` "curated") as written; a past agent's reply, with
    ``withhold_claims`` (the engine's ``hand_off_claimed_actions``), as :func:`copyable`
    leaves it (one that claims an action comes back as it is, with the claim: it is not
    sent), and without its e-mail forms (:func:`retrieval.chat_ready.chat_ready`;
    ``mid_conversation``: someone has answered in the conversation already)."""
    if kind == "curated":
        return CopyableReply(reply)
    text = reply
    if withhold_claims:
        found = copyable(text)
        if found.claimed_action is not None:
            return found
        text = found.text
    return CopyableReply(chat_ready(text, mid_conversation=mid_conversation))


def copyable(reply: str) -> CopyableReply:
    """``reply`` without what its agent said they would send (replaced by the references
    it names) or that they looked the order up, or the first action on the account or
    order it claims, what it says of this customer's order that nobody checked, or the
    details it asks for that only a person would act on."""
    kept: list[str] = []
    looked_up = None
    shortened: list[str] = []
    for match in _SENTENCE.finditer(reply):
        sentence = match.group(0)
        if _LOOKED_UP_ONLY.fullmatch(sentence.strip()):
            looked_up = sentence.strip()
            shortened.append(LOOK_UP)
            continue
        said = _says_done(sentence) if sentence else None
        if said is not None:
            return CopyableReply(reply, claimed_action=sentence.strip(), claim_kind=said)
        claims = bool(sentence) and bool(_CLAIM.search(sentence) or _DONE.search(sentence))
        if claims and not _SENDS_INFORMATION.search(sentence):
            return CopyableReply(reply, claimed_action=sentence.strip(), claim_kind=ACTION)
        if sentence and _asks_for_details(sentence):
            # "Send me the order number and I'll email you the details": the request stands
            # without the promise, and is withheld for it.
            return CopyableReply(
                reply, claimed_action=sentence.strip(), claim_kind=ASKS_FOR_DETAILS
            )
        if not claims:
            kept.append(sentence)
            continue
        shortened.append(PROMISE_TO_SEND)
        # The links and codes it names are kept, read as the grounding check reads facts.
        named = links_and_codes(sentence)
        if named:
            lead = sentence[: len(sentence) - len(sentence.lstrip())]
            tail = sentence[len(sentence.rstrip()) :]
            kept.append(f"{lead}See {', '.join(named)}.{tail}")
    text = "".join(kept).strip()
    if not text and looked_up is not None:
        # Nothing but the look-up: sent, it would say the order was looked at.
        return CopyableReply(reply, claimed_action=looked_up, claim_kind=LOOKED_UP)
    if not text:
        return CopyableReply(reply)
    return CopyableReply(text, shortened=tuple(k for k in SHORTENINGS if k in shortened))


def _says_done(sentence: str) -> str | None:
    """What ``sentence`` claims, of :data:`CLAIM_KINDS`, when it acknowledges what the
    customer sent outside the chat, says alone that it is done, promises to have it done,
    or tells what is happening or has become of their order; else None."""
    for kind, said in ((RECEIVED, _RECEIVED), (DONE_ALONE, _DONE_ALONE), (HAVE_DONE, _HAVE_DONE)):
        if said.search(sentence):
            return kind
    if any(
        not _CONDITION.search(clause) and _STATE.search(clause)
        for clause in _CLAUSE.split(sentence)
    ):
        return CASE
    return None


def _asks_for_details(sentence: str) -> bool:
    """Whether ``sentence`` asks the customer to send the agent details (the order number,
    the account's e-mail, photos) for the agent to act on, rather than to send them where
    the customer can alone (a form, an address)."""
    return bool(_ASKS.search(sentence)) and not _SENT_ELSEWHERE.search(sentence)
