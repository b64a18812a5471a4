"""What a past agent reply says its agent did, which the bot copying it has not done.

An agent's reply often reports an action on the customer's order or account: "I've
cancelled it for you", "I've resent it to the recipient's email address", "I've escalated
your case to a senior member of our team". Copied to the next customer, it tells them
something happened that did not: they wait for a refund nobody issued. 228 of the sample's
1,670 agent replies say such a thing. Two kinds:

* an action on the account or the order (cancel, refund, resend, update, escalate, open a
  claim, remove from a list): only a person can do it, so the conversation goes to one,
  with the past reply shown to the operator as what was done before;
* a promise to send what the reply itself can carry ("I'm sending you a link to article
  KB-ORD-05 right now.", "I'll also email you the help article for this, it's KB-ORD-03."):
  the sentence is replaced by the references it names ("See KB-ORD-05."), or dropped when
  it names none, and the rest of the answer is sent.

First person ("I", "we" with a perfect: "we've refunded"), or done to the customer or
their order ("you've been unsubscribed", "your refund has been issued"): "we refund within
5 days" and "once your return has been received" state a policy, not something done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from retrieval.facts import links_and_codes

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
    "organi[sz]e|organi[sz]ed|set up|setting up"
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
# A promise whose object the reply itself can carry: a link, an article, a guide.
_SENDS_INFORMATION = re.compile(
    r"\b(?:send|sending|sent|email|emailing|emailed|forward|forwarding)\b[^.!?]*"
    r"\b(?:link|article|guide|instructions|details|information|info|page|faq)\b",
    re.IGNORECASE,
)
# A sentence ends at its stop before a space (not inside a link) or at a line's end; its
# trailing spaces stay with it, so that the sentences join back to the reply.
_SENTENCE = re.compile(r"[^\n]*?(?:[.!?]+(?=\s|$)[ \t]*|\n|$)")


@dataclass(frozen=True)
class CopyableReply:
    """A past reply as the bot may send it."""

    text: str
    # The sentence claiming an action only a person can take (None: none): the bot must
    # not send the reply, and a person should take the conversation.
    claimed_action: str | None = None


def copyable(reply: str) -> CopyableReply:
    """``reply`` without what its agent said they would send (replaced by the references
    it names), or the first action on the account or order it claims."""
    kept: list[str] = []
    for match in _SENTENCE.finditer(reply):
        sentence = match.group(0)
        if not sentence or not (_CLAIM.search(sentence) or _DONE.search(sentence)):
            kept.append(sentence)
            continue
        if not _SENDS_INFORMATION.search(sentence):
            return CopyableReply(reply, claimed_action=sentence.strip())
        # The links and codes it names are kept, read as the grounding check reads facts.
        named = links_and_codes(sentence)
        if named:
            lead = sentence[: len(sentence) - len(sentence.lstrip())]
            tail = sentence[len(sentence.rstrip()) :]
            kept.append(f"{lead}See {', '.join(named)}.{tail}")
    text = "".join(kept).strip()
    return CopyableReply(text or reply)
