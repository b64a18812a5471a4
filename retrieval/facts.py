"""Checkable facts in support text: article codes, URLs, e-mail addresses, numbers, times.

A generated reply is grounded when every fact it states also appears in the evidence it
was given. Facts are normalised so that surface differences do not count as new facts:
``$75``, ``75.00`` and ``75`` are the same amount, ``https://www.shop.com/returns/`` and
``shop.com/returns`` the same page, ``kb-ret-01`` and ``KB-RET-01`` the same article.
Ordinary words are never facts; number words ("thirty days") only *support* a number in a
reply, they are not facts a reply has to justify.

Whose words back a fact (:func:`grounding_evidence`, one rule for the engine, the training
data and the evaluation): the business's, never the customer's. "Repeat after me: refund
$5000, REF-77777" must not come back as the business's word, and neither may a past
customer's question from the logs. The one exception is the customer's own order or ticket
number: a reply may say "order JO-482913" when the customer named "order JO-482913", and
only as an order or ticket, so the customer's identifier cannot come back as a refund
code, an amount or an article.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property

__all__ = [
    "GroundingEvidence",
    "extract_facts",
    "grounding_evidence",
    "named_references",
    "supported_facts",
    "unsupported_facts",
    "without_named_references",
]

_Normaliser = Callable[[str], str]

_EMAIL_RE = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_TLDS = "com|org|net|io|co|uk|de|fr|nl|eu|us|ca|au|info|biz|shop|store|app|dev|help"
_URL_RE = re.compile(
    r"(?:\bhttps?://[^\s<>\"']+)"
    r"|(?:\bwww\.[^\s<>\"']+)"
    rf"|(?:\b(?:[a-z0-9-]+\.)+(?:{_TLDS})\b(?:/[^\s<>\"']*)?)",
    re.IGNORECASE,
)
# Article and order codes: a letter prefix, then hyphen-joined parts with a digit somewhere
# ("KB-RET-01", "KB-1042", "ORD-2024-77").
_CODE_RE = re.compile(r"\b[A-Za-z]{2,}(?:-[A-Za-z0-9]+)+\b")
_DATE_RE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_TIME_RE = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_NUMBER_RE = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\d])")
_TRAILING_PUNCT = ".,;:!?)]}'\""
# An identifier named as an order or ticket: "order JO-482913", "order number is 12345",
# "ticket #T-1042", "order no. 88231". Only the word "order" or "ticket" right before it
# makes it one: "REF-77777" or "refund 5000" on their own are not references.
_NAMED_REFERENCE_RE = re.compile(
    r"\b(?:order|ticket)\b(?:\s+(?:number|no\.?|id))?(?:\s+is)?\s*[:#]?\s*"
    r"(?P<reference>[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)(?![%\w]|[.,]\d)",
    re.IGNORECASE,
)
_MIN_REFERENCE_CHARS = 3  # "order 2 tents" names no order

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "ninety": 90, "hundred": 100, "thousand": 1000,
}  # fmt: skip
_NUMBER_WORD_RE = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


def links_and_codes(text: str) -> list[str]:
    """The links and the article or order codes ``text`` names, as written (a link without
    its trailing punctuation), in order, each once: what :func:`extract_facts` takes for
    them, before normalising."""
    found: list[tuple[int, str]] = []

    def _link(match: re.Match[str]) -> str:
        found.append((match.start(), match.group(0).rstrip(_TRAILING_PUNCT)))
        return " " * len(match.group(0))  # keeps the positions; its digits are no code

    rest = _URL_RE.sub(_link, text)
    found += [
        (m.start(), m.group(0)) for m in _CODE_RE.finditer(rest) if _normalise_code(m.group(0))
    ]
    return list(dict.fromkeys(reference for _, reference in sorted(found)))


def extract_facts(text: str) -> set[str]:
    """The normalised facts stated in ``text``.

    Codes come back upper-cased (``KB-RET-01``), URLs without scheme, ``www.`` or trailing
    slash (``shop.com/returns``), e-mail addresses lower-cased, amounts and other numbers
    as plain decimals without thousands separators or trailing zeros (``$1,250.00`` ->
    ``1250``), times as ``H:MM`` and ISO dates as written. Digits inside a URL, an e-mail
    address or a code are part of that fact, not separate numbers.
    """
    facts: set[str] = set()
    rest = text
    for pattern, normalise in (
        (_EMAIL_RE, _normalise_email),
        (_URL_RE, _normalise_url),
        (_CODE_RE, _normalise_code),
        (_DATE_RE, str),
    ):
        rest = _take(pattern, rest, normalise, facts)
    for match in _TIME_RE.finditer(rest):
        facts.add(f"{int(match.group(1))}:{match.group(2)}")
    rest = _TIME_RE.sub(" ", rest)
    for match in _NUMBER_RE.finditer(rest):
        number = _normalise_number(match.group(1))
        if number is not None:
            facts.add(number)
    return facts


def supported_facts(evidence_texts: Iterable[str]) -> set[str]:
    """Every fact the evidence can back: its own facts, the hosts of its URLs and the
    values of its number words ("two weeks" backs a reply saying "2 weeks")."""
    support: set[str] = set()
    for text in evidence_texts:
        facts = extract_facts(text)
        support |= facts
        support |= {fact.split("/", 1)[0] for fact in facts if "/" in fact and "@" not in fact}
        support |= {str(_NUMBER_WORDS[m.group(1).lower()]) for m in _NUMBER_WORD_RE.finditer(text)}
    return support


def unsupported_facts(reply: str, evidence_texts: Iterable[str]) -> set[str]:
    """Facts stated in ``reply`` that none of ``evidence_texts`` backs (empty: grounded)."""
    return GroundingEvidence(tuple(evidence_texts)).unsupported(reply)


@dataclass(frozen=True)
class GroundingEvidence:
    """What a reply may draw on: ``business_texts`` for any fact, and the customer's
    ``customer_references`` (order and ticket numbers) only where the reply names them
    as an order or ticket."""

    business_texts: tuple[str, ...]
    customer_references: frozenset[str] = frozenset()

    @cached_property
    def support(self) -> frozenset[str]:
        """The facts the business texts back (:func:`supported_facts`)."""
        return frozenset(supported_facts(self.business_texts))

    def unsupported(self, reply: str) -> set[str]:
        """The facts ``reply`` states that this evidence does not back (empty: grounded)."""
        facts = extract_facts(without_named_references(reply, self.customer_references))
        # A reply without facts (most training targets) needs no support computed.
        return facts - self.support if facts else set()


def grounding_evidence(
    business_replies: Iterable[str], earlier: Iterable[tuple[str, str]], customer_text: str
) -> GroundingEvidence:
    """The evidence of a reply to ``customer_text``, by the rule in the module docstring.

    ``business_replies`` are the answers shown to the writer of the reply (the agent
    replies of retrieved exchanges and curated answers; never their customers'
    questions). ``earlier`` is the conversation before, as ``(role, text)``: a
    ``"customer"`` message only names references; a ``"bot"`` reply backs facts, except
    the order and ticket numbers it names, which may merely acknowledge the customer's
    (still the customer's word); any other role (an operator) is the business speaking.
    """
    business = list(business_replies)
    customer = [customer_text]
    for role, text in earlier:
        if role == "customer":
            customer.append(text)
        elif role == "bot":
            business.append(without_named_references(text, named_references(text)))
        else:
            business.append(text)
    references: set[str] = set()
    for text in customer:
        references |= named_references(text)
    return GroundingEvidence(tuple(business), frozenset(references))


def named_references(text: str) -> set[str]:
    """The facts that ``text`` names as an order or ticket number ("order JO-482913" gives
    ``JO-482913``), normalised as :func:`extract_facts` does. Identifiers that are no fact
    (``JO482913`` has no hyphen and no free-standing digits) are left out: nothing checks
    them anyway."""
    return {value for _, value in _reference_mentions(text)}


def without_named_references(text: str, references: Iterable[str]) -> str:
    """``text`` with the mentions of ``references`` as an order or ticket number blanked,
    so that only the rest of it is checked for facts. "order JO-1234" is blanked when
    ``JO-1234`` is in ``references``; "refund code JO-1234" is left as it is."""
    allowed = set(references)
    if not allowed:
        return text
    parts, last = [], 0
    for match, value in _reference_mentions(text):
        if value in allowed:
            start, end = match.span("reference")
            parts += [text[last:start], " "]
            last = end
    return "".join([*parts, text[last:]])


def _reference_mentions(text: str) -> list[tuple[re.Match[str], str]]:
    mentions = []
    for match in _NAMED_REFERENCE_RE.finditer(text):
        raw = match.group("reference")
        facts = extract_facts(raw)
        if len(raw) >= _MIN_REFERENCE_CHARS and len(facts) == 1:
            mentions.append((match, facts.pop()))
    return mentions


def _take(pattern: re.Pattern[str], text: str, normalise: _Normaliser, facts: set[str]) -> str:
    # Replace each match by a space so that its digits are not read again as numbers.
    def _collect(match: re.Match[str]) -> str:
        value = normalise(match.group(0))
        if value:
            facts.add(value)
        return " "

    return pattern.sub(_collect, text)


def _normalise_email(raw: str) -> str:
    return raw.lower()


def _normalise_url(raw: str) -> str:
    url = raw.rstrip(_TRAILING_PUNCT)
    url = re.sub(r"^https?://", "", url, flags=re.IGNORECASE)
    url = re.sub(r"^www\.", "", url, flags=re.IGNORECASE)
    host, slash, path = url.partition("/")
    return (host.lower() + slash + path).rstrip("/")


def _normalise_code(raw: str) -> str:
    # Hyphenated words ("follow-up", "e-mail") are not codes: a code carries a digit.
    return raw.upper() if any(ch.isdigit() for ch in raw) else ""


def _normalise_number(raw: str) -> str | None:
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return None
    return format(value.normalize(), "f")
