"""A past agent reply, written as an e-mail, made to read as a chat reply.

Support logs are mostly e-mail: a reply opens with a salutation, closes with "If you have
any other questions, just reply to this email." and signs off "All the best,\\nKeiko".
Scrubbing drops the agent's name from the sign-off (:mod:`retrieval.names`), so a copied
reply ends on "All the best," with nothing after it, which reads as a message cut off;
and in the middle of a chat a fresh "Hi," or "Hello!" reads as if the bot had forgotten
the conversation. Of the sample's 1,592 indexed (scrubbed) replies, 224 end on such a
valediction, 74 ask the customer to "just reply to this email", and 725 open with a bare
salutation (512 on a line of its own, 213 as "Hi there!" before the first sentence).

Only what carries no fact is touched, and only in shapes that leave no doubt, so that
links, codes, numbers and every sentence that says something are sent as they were:

* a last line that is only a valediction ("Kind regards,", "Best,", "Thanks,"), perhaps
  followed by a line that is only the name placeholder, goes; a valediction followed by a
  kept signature ("Best,\\nThe Support Team") stays: it is the business signing;
* a line, or a reply's last sentence, that only invites the customer to write back by
  e-mail ("If you have any other questions, just reply to this email.") goes; one that
  asks for something ("Please reply with photos of the damage") stays;
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


def chat_ready(reply: str, *, mid_conversation: bool) -> str:
    """``reply`` without a dangling valediction and an invitation to answer by e-mail,
    and, ``mid_conversation`` (the bot or an operator has written already), without its
    opening salutation. The rest is unchanged; a reply that would be left with no words
    is returned as it is."""
    text = reply.strip()
    text = without_dangling_valediction(text)
    text = without_email_invitation(text)
    if mid_conversation:
        text = without_salutation(text)
    return text if _CONTENT.search(text) else reply.strip()


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
