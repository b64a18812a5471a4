"""A past agent reply, written as an e-mail, made to read as a chat reply.

Support logs are mostly e-mail: a reply opens with a salutation, closes with "If you have
any other questions, just reply to this email." and signs off "All the best,\\nKeiko".
Scrubbing drops the agent's name from the sign-off (:mod:`retrieval.names`), so a copied
reply ends on "All the best," with nothing after it, which reads as a message cut off;
and in the middle of a chat a fresh "Hi," or "Hello!" reads as if the bot had forgotten
the conversation. Of the sample's 1,592 indexed (scrubbed) replies, 224 end on such a
valediction, 74 ask the customer to "just reply to this email", and 725 open with a bare
salutation (512 on a line of its own, 213 as "Hi there!" before the first sentence).
A tester copied "Thank you for your message. Sure! ..." and "... Anything else, just
reply here. Best, Juniper Outfitters Customer Care" out of the chat: the letter's other
forms read as e-mail too. Of the 1,281 replies the engine sends copied of the 1,491 an
index of data/sample/conversations.jsonl holds (``python benchmarks/claims.py``), 245 end
on a business's signature, 132 on a closing offer of more help, 92 open by thanking for
the message or for waiting and 119 for reaching out; 485 read differently as a first
reply, 669 later in a conversation. Read by hand, every fragment dropped from the 1,491 is
one of the forms below, and no link, code or number goes.

Only what carries no fact is touched, and only in shapes that leave no doubt, so that
links, codes, numbers and every sentence that says something are sent as they were:

* a business's signature, a last line that only names the team ("Juniper Outfitters
  Customer Care", "[NAME] | Juniper Outfitters") after a valediction or a closing wish
  ("Best,", "Happy trails!"), goes: the customer knows whom they are chatting with; the
  wish stays;
* a last line that is only a valediction ("Kind regards,", "Best,", "Thanks,"), perhaps
  followed by a line that is only the name placeholder, goes;
* a line, or a reply's last sentence, that only invites the customer to write back by
  e-mail ("If you have any other questions, just reply to this email.") goes; one that
  asks for something ("Please reply with photos of the damage") stays;
* a closing line of its own that only offers more help ("Anything else, just reply
  here.", "Let me know if there's anything else I can do.", "Hope this helps!") goes: in
  a chat the customer just types. One that asks a question ("Anything else I can help
  with?") stays, and so does the same offer as the last sentence of a line that says
  something (the chat logs' own "... (KB-SIZ-01) Let me know if you have any other
  questions!");
* a sentence that opens the reply only to thank for the message or e-mail ("Thank you for
  your message."), or for waiting ("Thanks for waiting!": a copied reply made no one
  wait), goes; one that thanks for reaching out ("Thanks for getting in touch!") goes in
  the middle of a conversation only, where nobody has just reached out;
* in the middle of a conversation, a first line that is only a salutation ("Hi,", "Dear
  customer,", "Hello there!"), or a leading "Hi!"/"Hello there." before the first sentence
  on the same line, goes; the first reply of a conversation keeps it.

Nothing is dropped when nothing would be left.

:func:`generator_ready` goes further, for the replies the generator learns to write and
writes: nothing it writes may greet, speak to or introduce someone by the name
placeholder ("Hi [NAME],", "[NAME], that qualifies.", "this is [NAME]"), which reads as
a broken template. The conversation it is shown is scrubbed as the logs are, so it never
knows a customer's name and greets neutrally. (In the sample, 183 of the 1,771 logged
agent messages hold the placeholder, 179 of them call-centre openings written before the
customer's first message, which are no reply to learn; of the 1,592 replies learnt, 4
hold it, 2 as an address.) A placeholder in running text ("my colleague [NAME]", or a
product the scrubber took for a name) stays: dropping it would change what the sentence
says.

It lives here, beside the logs' text, because both the engine (copying a reply) and the
generator's training (the replies it learns to write, :mod:`finetune.examples`) use it,
and neither the retrieval nor the generator package may import the bot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from retrieval.names import PLACEHOLDER

# Closing words of a letter that a name follows, in the forms support agents use; a
# comma (or nothing) after them, as the line before the signature.
_VALEDICTIONS = (
    r"all (?:the )?best|best|best wishes|(?:with )?(?:best|kind|kindest|warm|warmest|warmly)"
    r" regards|regards|warmly|warm wishes|many thanks|thanks|thank you|thanks again|"
    r"thanks so much|thanks a lot|thank you again|with thanks|cheers|sincerely|"
    r"yours sincerely|yours truly|yours faithfully|yours|respectfully|take care|talk soon|"
    r"speak soon|until next time"
)
_NAME = re.escape(PLACEHOLDER)
# The whole of a line: "Kind regards,", "Best, [NAME]", "— Cheers"
_VALEDICTION_LINE = re.compile(
    rf"(?:[-–—][ \t]*)?(?i:{_VALEDICTIONS})[ \t]*,?(?:[ \t]*{_NAME})?[ \t]*"
)
_QUESTIONS = r"any (?:other |more |further |additional )?questions?(?: or concerns)?"
# An invitation to write back by e-mail and nothing else, as a whole sentence.
_EMAIL_INVITATION = (
    rf"(?i:(?:(?:if|should) you have {_QUESTIONS},?[ \t]+|for anything else,?[ \t]+)"
    r"(?:(?:just|simply|please|feel free to|do not hesitate to|don['’]t hesitate to)[ \t]+)?"
    r"(?:reply|respond|write back)[ \t]+(?:to this e-?mail|by e-?mail)"
    r"|(?:(?:just|simply|please|feel free to)[ \t]+)?(?:reply|respond|write back)[ \t]+"
    rf"(?:to this e-?mail|by e-?mail)[ \t]+if you have {_QUESTIONS})"
    r"[ \t]*[.!]?"
)
# As a line of its own, taken with the blank lines before it: the text around it keeps
# its own spacing.
_EMAIL_INVITATION_LINE = re.compile(
    rf"(?:\A|\n)[ \t]*(?:\n[ \t]*)*{_EMAIL_INVITATION}[ \t]*(?=\n|\Z)"
)
# The same sentence ending the reply after another sentence of its line.
_EMAIL_INVITATION_LAST = re.compile(rf"(?<=[.!?])[ \t]+{_EMAIL_INVITATION}[ \t]*\Z")
_GREETING_WORDS = r"hi|hello|hey|hiya|howdy|greetings|good (?:morning|afternoon|evening|day)"
_ADDRESSEES = (
    r"there|again|all|everyone|folks|(?:valued |dear )?(?:customer|client|shopper)|sir|madam|"
    r"sir or madam|sir/madam|team|friend"
)
# A salutation with no name, or with a name as a greeting carries it (capitalised words
# or the placeholder), as a line of its own: "Hi,", "Dear customer,", "Hello there!".
_SALUTATION_LINE = re.compile(
    rf"\A\s*(?i:{_GREETING_WORDS}|dear)(?:[ \t]+(?i:{_ADDRESSEES}))?"
    rf"(?:[ \t]+(?:{_NAME}|[A-Z][\w'’.-]*)){{0,3}}[ \t]*[,!.:]?[ \t]*(?:\n|\Z)"
)
# A salutation as the first sentence of a line that goes on: "Hi there! Store pickup ...".
_SALUTATION_SENTENCE = re.compile(
    rf"\A\s*(?i:{_GREETING_WORDS})(?:[ \t]+(?i:there|again|all|everyone|folks))?[ \t]*[!.][ \t]+"
    r"(?=[A-Z0-9\"'“‘])"
)
# A wish that closes a chat as well as a letter: kept, but a signature may follow it.
_WISH_LINE = re.compile(
    r"(?i:happy [a-z]+|have a (?:great|good|nice|lovely|wonderful) [a-z]+|take care|stay safe|"
    r"enjoy(?: [a-z]+){0,4}|see you (?:soon|on the trail)|all the best to you)[ \t]*[.!]*"
)
_TITLE_WORD = r"[A-Z][\w'’&-]*"
# A line that only names who signs, the business or its team: "Juniper Outfitters Customer
# Care", "The Support Team", "[NAME] | Juniper Outfitters", "Keiko — Juniper Outfitters
# Support" (a name the scrubber missed signs too).
_SIGNATURE_LINE = re.compile(
    rf"(?:(?:{_NAME}|{_TITLE_WORD}(?:[ \t]+{_TITLE_WORD})?)[ \t]*[|—–,-][ \t]*)?"
    rf"{_TITLE_WORD}(?:[ \t]+(?:{_TITLE_WORD}|&|of|and|at|for|the)){{0,5}}"
)
_QUESTIONS_ASKED = r"(?:any|more) (?:other |more |further |additional )?questions?(?: or concerns)?"
# An offer of more help that asks nothing and tells nothing, as the letters close: "Anything
# else, just reply here.", "Let me know if there's anything else I can do.", "Hope this
# helps!". A question ("Anything else I can help with?") is the chat's own and not matched.
_CLOSING_OFFER = (
    r"(?i:(?:I |we )?hope (?:this|that|it) helps(?: you)?(?: out)?"
    r"|(?:please |just )?let (?:me|us) know if (?:there['’]s|there is) anything else (?:I|we)"
    r" can (?:do|help(?: you)? with)(?: for you)?"
    rf"|(?:please |just )?let (?:me|us) know if you have {_QUESTIONS_ASKED}"
    r"|anything else,? (?:just )?(?:reply|write|ask) (?:here|back)"
    r"|(?:please )?(?:feel free|don['’]t hesitate|do not hesitate) to (?:reach out|get in touch"
    r"|contact us|ask|reply|write(?: back)?)(?: again)?"
    rf"(?: if you have {_QUESTIONS_ASKED}| if (?:there['’]s|there is) anything else)?"
    rf"|if you have {_QUESTIONS_ASKED},? (?:just |please )?(?:let (?:me|us) know|ask(?: away)?"
    r"|reply here))[ \t]*[.!]*"
)
_CLOSING_OFFER_LINE = re.compile(rf"{_CLOSING_OFFER}(?:[ \t]+{_CLOSING_OFFER})*")
_THANKS = r"(?:thanks|thank you|many thanks)(?: (?:so|very) much)?"
_BUSINESS = rf"(?:us|{_TITLE_WORD}(?:[ \t]+{_TITLE_WORD}){{0,4}})"
# What a reply's first sentence may thank for, by kind: the message (an e-mail's), waiting
# (a copied reply made no one wait), reaching out (said when the conversation starts).
_OPENERS = {
    "thanks for the message": rf"{_THANKS} for (?:your|the) (?:message|e-?mail|note|letter)"
    r"(?: (?:and|&) (?:for )?your patience)?",
    "thanks for waiting": rf"{_THANKS} for (?:waiting|holding|bearing with (?:me|us)|your patience"
    r"|being (?:so )?patient)",
    "thanks for reaching out": rf"{_THANKS} for (?:reaching out|getting in touch|contacting"
    rf" {_BUSINESS}|writing(?: in)?)(?: to {_BUSINESS})?",
}
_OPENER = re.compile(
    "|".join(rf"(?P<{kind.replace(' ', '_')}>(?i:{words}))" for kind, words in _OPENERS.items())
)
_OPENER_KINDS = {kind.replace(" ", "_"): kind for kind in _OPENERS}
_OPENER_SENTENCE = re.compile(rf"(?:{_OPENER.pattern})[ \t]*[.!]+(?:[ \t]+|(?=\n)|\Z)")
# A salutation and the thanks in one sentence: "Hi, thanks for reaching out." / "Hi Owen,
# thanks for waiting!".
_SALUTED_OPENER = re.compile(
    rf"\A(?P<greeting>(?i:{_GREETING_WORDS})(?:[ \t]+(?:(?i:there|again)|{_NAME}|{_TITLE_WORD}))?)"
    rf"[ \t]*,[ \t]*(?P<thanks>{_OPENER.pattern})[ \t]*[.!]+[ \t]*"
)
_CONTENT = re.compile(r"\w")
_NAMES = rf"{_NAME}(?:[ \t]+{_NAME})*"
# A salutation that greets the placeholder: "Hi [NAME],", "Dear [NAME] [NAME]:".
_PLACEHOLDER_SALUTATION = re.compile(
    rf"\A(\s*)(?i:({_GREETING_WORDS})|dear)(?:[ \t]+(?i:there|again))?[ \t]+{_NAMES}"
    r"(?=[ \t]*(?:[,!.:]|\n|\Z))"
)
# Where a sentence starts, captured: the spacing after the sentence before it, if any.
_SENTENCE_START = r"(\A|(?<=[.!?])[ \t]+|(?<=\n))"
_INTRODUCING = r"(?i:this is|I'm|I am|my name(?:'s| is))"
# An agent introducing themself in a sentence of its own: "This is [NAME]." goes whole ...
_INTRODUCTION_SENTENCE = re.compile(
    rf"{_SENTENCE_START}{_INTRODUCING}[ \t]+{_NAMES}[ \t]*[.!](?:[ \t]+|(?=\n)|\Z)"
)
# ... at the start of one that goes on: "My name's [NAME], what can I do?" -> "What can I
# do?" ...
_INTRODUCTION_OPENING = re.compile(
    rf"{_SENTENCE_START}{_INTRODUCING}[ \t]+{_NAMES}[ \t]*,[ \t]*([a-z])"
)
# ... or as a clause that ends there: "Thanks for calling, this is [NAME]." -> "Thanks
# for calling."; ", [NAME] speaking —" -> " —".
_INTRODUCTION_CLAUSE = re.compile(
    rf",[ \t]+(?:{_INTRODUCING}[ \t]+{_NAMES}|{_NAMES}[ \t]+(?i:speaking|here))"
    r"(?=[ \t]*[.!,;—–-]|[ \t]*\Z)"
)
# The placeholder as the one spoken to: "[NAME], that qualifies." / "Thanks so much, [NAME]!"
_VOCATIVE_FIRST = re.compile(rf"{_SENTENCE_START}{_NAMES}[ \t]*,[ \t]*(\w)")
_VOCATIVE_LAST = re.compile(rf",[ \t]*{_NAMES}(?=[ \t]*(?:[.!?]|\n|\Z))")


SIGNATURE = "signature"
VALEDICTION = "valediction"
EMAIL_INVITATION = "invitation to reply by e-mail"
CLOSING_OFFER = "closing offer of more help"
SALUTATION = "salutation"
EMAIL_FORMS = (
    SIGNATURE,
    VALEDICTION,
    EMAIL_INVITATION,
    CLOSING_OFFER,
    *_OPENERS,
    SALUTATION,
)
"""The kinds of e-mail form :func:`chat_ready` drops, as :class:`ChatReadyReply` names them."""


@dataclass(frozen=True)
class ChatReadyReply:
    """A reply as :func:`chat_ready` makes it, and the kinds of e-mail form it dropped
    (of :data:`EMAIL_FORMS`, each once, in that order)."""

    text: str
    dropped: tuple[str, ...] = ()


def chat_ready(reply: str, *, mid_conversation: bool) -> str:
    """``reply`` without a business's signature, a dangling valediction, an invitation to
    answer by e-mail, a closing offer of more help and an opening thanks for the message
    or for waiting, and, ``mid_conversation`` (the bot or an operator has written already),
    without its opening salutation or thanks for reaching out. The rest is unchanged; a
    reply that would be left with no words is returned as it is."""
    return chat_ready_reply(reply, mid_conversation=mid_conversation).text


def chat_ready_reply(reply: str, *, mid_conversation: bool) -> ChatReadyReply:
    """:func:`chat_ready`, telling what it dropped."""
    text = reply.strip()
    dropped: list[str] = []
    for kind, step in (
        (SIGNATURE, without_signature),
        (VALEDICTION, without_dangling_valediction),
        (EMAIL_INVITATION, without_email_invitation),
        (CLOSING_OFFER, without_closing_offer),
    ):
        kept = step(text)
        if kept != text:
            dropped.append(kind)
            text = kept
    text, openers = without_email_opener(text, mid_conversation=mid_conversation)
    dropped += openers
    if mid_conversation:
        kept = without_salutation(text)
        if kept != text:
            dropped.append(SALUTATION)
            text = kept
    if not _CONTENT.search(text):
        return ChatReadyReply(reply.strip())
    return ChatReadyReply(text, tuple(k for k in EMAIL_FORMS if k in dropped))


def generator_ready(reply: str, *, mid_conversation: bool) -> str:
    """``reply`` as the generator is taught to write it and as its replies are sent:
    :func:`chat_ready`, and addressing no one by the name placeholder
    (:func:`without_placeholder_address`)."""
    return chat_ready(without_placeholder_address(reply.strip()), mid_conversation=mid_conversation)


def without_placeholder_address(text: str) -> str:
    """``text`` greeting, speaking to and introducing no one by the name placeholder: "Hi
    [NAME]," becomes "Hi," ("Dear [NAME]," "Dear customer,", as the scrubber writes it);
    "[NAME], that qualifies." "That qualifies."; "Thank you for calling, this is [NAME].
    How can I help?" "Thank you for calling. How can I help?"; "My name's [NAME], what
    can I do for you?" "What can I do for you?". Other placeholders stay."""
    if PLACEHOLDER not in text:
        return text
    kept = _PLACEHOLDER_SALUTATION.sub(lambda m: m.group(1) + (m.group(2) or "Dear customer"), text)
    kept = _INTRODUCTION_SENTENCE.sub(lambda m: m.group(1), kept)
    kept = _INTRODUCTION_OPENING.sub(_recased, kept)
    kept = _INTRODUCTION_CLAUSE.sub("", kept)
    kept = _VOCATIVE_FIRST.sub(_recased, kept)
    kept = _VOCATIVE_LAST.sub("", kept)
    return kept if _CONTENT.search(kept) else text


def _recased(match: re.Match[str]) -> str:
    # What came before the sentence, then the word that now starts it, in capitals.
    return match.group(1) + match.group(2).upper()


def without_dangling_valediction(text: str) -> str:
    """``text`` without the valediction that ends it with no one signing (its name was
    scrubbed, or only the name placeholder is left)."""
    while True:
        lines = text.rstrip().split("\n")
        end = len(lines)
        if end > 1 and lines[-1].strip() == PLACEHOLDER:
            end -= 1
        if end < 2 or not _VALEDICTION_LINE.fullmatch(lines[end - 1].strip()):
            return text
        before = "\n".join(lines[: end - 1]).rstrip()
        if not _CONTENT.search(before):
            return text
        text = before


def without_signature(text: str) -> str:
    """``text`` without the lines that end it naming only who signs (the business or its
    team, perhaps after the agent's name or its placeholder), when a valediction or a
    closing wish comes before them: "Best,\\n[NAME]\\nJuniper Outfitters Customer Care"
    and "Best,\\nJonas\\nJuniper Outfitters Customer Care" leave "Best," (a dangling
    valediction), "Happy trails!\\nJuniper Outfitters" leaves "Happy trails!". A last line
    after anything else ("Our pick:\\nStormline Rain Jacket") is what the reply says, and
    stays."""
    lines = text.rstrip().split("\n")
    if not _SIGNATURE_LINE.fullmatch(lines[-1].strip()):
        return text
    signed = len(lines) - 1
    if signed > 1 and (
        lines[signed - 1].strip() == PLACEHOLDER
        or _SIGNATURE_LINE.fullmatch(lines[signed - 1].strip())
    ):
        signed -= 1
    if signed < 2:
        return text
    line = lines[signed - 1].strip()
    if not (_VALEDICTION_LINE.fullmatch(line) or _WISH_LINE.fullmatch(line)):
        return text
    if not _CONTENT.search("\n".join(lines[: signed - 1])):
        return text
    return "\n".join(lines[:signed]).rstrip()


def without_closing_offer(text: str) -> str:
    """``text`` without the lines of its close that only offer more help ("Anything else,
    just reply here."), before any closing wish ("Happy trails!"), which stays."""
    lines = text.rstrip().split("\n")
    end = len(lines)
    while end > 1:
        line = lines[end - 1].strip()
        if not line or _WISH_LINE.fullmatch(line):
            end -= 1
            continue
        if not _CLOSING_OFFER_LINE.fullmatch(line):
            break
        start = end - 1
        while start > 0 and not lines[start - 1].strip():
            start -= 1  # with the blank lines before it: the close keeps its own spacing
        if not _CONTENT.search("\n".join(lines[:start])):
            break
        lines[start:end] = []
        end = start
    return "\n".join(lines)


def without_email_opener(text: str, *, mid_conversation: bool) -> tuple[str, list[str]]:
    """``text`` without the sentences that open it, after any salutation, only to thank for
    the message or for waiting, or ``mid_conversation`` for reaching out; and the kinds
    dropped. Said in one sentence with the salutation ("Hi Owen, thanks for waiting!"),
    the thanks goes and the salutation stays ("Hi Owen!") unless it goes too
    (mid-conversation)."""
    dropped: list[str] = []

    def goes(match: re.Match[str]) -> str | None:
        kind = next(k for k, v in match.groupdict().items() if v and k in _OPENER_KINDS)
        kind = _OPENER_KINDS[kind]
        return kind if mid_conversation or kind != "thanks for reaching out" else None

    head = ""
    saluted = _SALUTED_OPENER.match(text)
    if saluted:
        kind = goes(saluted)
        rest = text[saluted.end() :]
        if kind is not None and _CONTENT.search(rest):
            dropped += [kind, SALUTATION] if mid_conversation else [kind]
            head = "" if mid_conversation else saluted.group("greeting") + "! "
            text = rest
    else:
        salutation = _SALUTATION_LINE.match(text) or _SALUTATION_SENTENCE.match(text)
        if salutation:
            head, text = text[: salutation.end()], text[salutation.end() :]
    kept = text[: len(text) - len(text.lstrip())]
    body = text.lstrip()
    while match := _OPENER_SENTENCE.match(body):
        kind = goes(match)
        after = body[match.end() :]
        rest = after.lstrip()
        if not _CONTENT.search(rest):
            break
        if kind is None:  # said as the conversation starts: kept, and the next one read
            kept += body[: match.end()] + after[: len(after) - len(rest)]
        else:
            dropped.append(kind)
        body = rest
    return head + kept + body, dropped


def without_email_invitation(text: str) -> str:
    """``text`` without a line, or a last sentence, that only invites the customer to
    write back by e-mail: in a chat they just type."""
    kept = _EMAIL_INVITATION_LINE.sub("", text)
    kept = _EMAIL_INVITATION_LAST.sub("", kept.rstrip()).strip()
    return kept if _CONTENT.search(kept) else text


def without_salutation(text: str) -> str:
    """``text`` without the salutation it opens with, as a line of its own or as the
    first sentence of its first line."""
    for salutation in (_SALUTATION_LINE, _SALUTATION_SENTENCE):
        match = salutation.match(text)
        if match and _CONTENT.search(text[match.end() :]):
            return text[match.end() :].lstrip()
    return text
