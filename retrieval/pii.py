"""Scrub personal data from text before it is stored, indexed or trained on.

Emails, payment card numbers, IBANs and phone numbers are replaced by the placeholders
``[EMAIL]``, ``[CARD]``, ``[IBAN]`` and ``[PHONE]``; people's names are dropped from
greetings and sign-offs and replaced by ``[NAME]`` elsewhere (:mod:`retrieval.names`).
Cards and IBANs are only replaced when their check digits are right, so order numbers and
other long numbers survive. Every pattern is anchored by look-behinds and uses possessive
or bounded repeats, so the time taken grows linearly with the text, whatever it contains.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from retrieval.names import NameFinder, scrub_spans

KINDS = ("email", "iban", "card", "phone", "name")
"""Kinds in the order they are scrubbed; earlier kinds are replaced before later ones look."""

PLACEHOLDERS: Mapping[str, str] = {kind: f"[{kind.upper()}]" for kind in KINDS}

# Without a configured finder, names are found by the rules alone (no model to load).
_RULES_ONLY = NameFinder(recognizer=None)


@dataclass(frozen=True)
class ScrubResult:
    """The scrubbed text, how many of each kind were replaced (every kind is present), and
    what was taken out: ``(kind, the text as written)``, kind by kind in :data:`KINDS`
    order, each kind's in the order they appear (a name dropped from a greeting or a
    sign-off included, though it leaves no placeholder)."""

    text: str
    counts: Mapping[str, int]
    found: tuple[tuple[str, str], ...] = ()

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def scrub(text: str, names: NameFinder | None = None) -> ScrubResult:
    """Replace emails, IBANs, payment cards, phone numbers and names in ``text``.

    Text around a replacement is kept as it was. Emails go first so digits inside an
    address are not taken for a phone; IBANs before cards because the digits of an IBAN
    can pass the card check; cards before phones so a card is not half-replaced as a phone;
    names last, so an address is not taken for one. ``names`` finds the names (with a
    recogniser and the names known from the logs); without it, the rules alone do.
    Never raises for any text, but a finder may fail to load its recogniser.
    """
    return scrub_batch([text], names)[0]


def scrub_batch(
    texts: Sequence[str], names: NameFinder | None = None, *, staff: Sequence[bool] | None = None
) -> list[ScrubResult]:
    """:func:`scrub` for many texts; a name recogniser runs over them as one batch.
    ``staff`` flags the texts the business's people wrote (agents' replies): their
    greetings and sign-offs are taken for names whatever their words."""
    partial = []
    for text in texts:
        counts = dict.fromkeys(KINDS, 0)
        removed: list[tuple[str, str]] = []
        for kind in KINDS[:-1]:
            taken: list[str] = []
            text, counts[kind] = _SCRUBBERS[kind](text, taken)
            removed += [(kind, value) for value in taken]
        partial.append((text, counts, removed))
    finder = names or _RULES_ONLY
    results = []
    found = finder.find_batch([t for t, _, _ in partial], staff=staff or False)
    for (text, counts, removed), spans in zip(partial, found, strict=True):
        removed += [("name", text[span.start : span.end]) for span in spans]
        text, counts["name"] = scrub_spans(text, spans)
        results.append(ScrubResult(text, counts, tuple(removed)))
    return results


# --- a customer's references ----------------------------------------------------------

REFERENCE_PLACEHOLDER = "[REFERENCE]"
# Order, ticket, tracking and account numbers: a token with at least three digits, and
# either a letter or a joiner ("JO-482913", "1Z999AA10123456784") or five digits or more.
_REFERENCE = re.compile(
    r"(?<![\w-])#?(?=[A-Za-z0-9-]*[0-9][A-Za-z0-9-]*[0-9][A-Za-z0-9-]*[0-9])"
    r"(?:[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+|[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[0-9]{5,})(?![\w-])"
)


def references_in(texts: Iterable[str]) -> set[str]:
    """The order, ticket and account numbers a customer wrote in ``texts``."""
    return {m.group().lstrip("#") for text in texts for m in _REFERENCE.finditer(text)}


def mask_references(text: str, references: Collection[str]) -> str:
    """``text`` with each of ``references`` replaced by ``[REFERENCE]``: what an agent or
    operator wrote to one customer about that customer's order must not reach another."""
    if not references:
        return text

    def masked(match: re.Match[str]) -> str:
        return REFERENCE_PLACEHOLDER if match.group().lstrip("#") in references else match.group()

    return _REFERENCE.sub(masked, text)


# --- email ------------------------------------------------------------------------------

# Not every character RFC 5322 allows: quotes and slashes around an address in prose would
# otherwise be taken into it.
_LOCAL_CHAR = r"A-Za-z0-9_%+-"
_EMAIL = re.compile(
    # The look-behind lets a match start only where a run of address characters starts, so
    # a long run without an "@" is scanned once, not once per character. Dots may repeat
    # or end the local part: some mail providers hand out such addresses, and letting one
    # through would store it unscrubbed (found by tests/test_hardening_properties.py).
    rf"(?<![.{_LOCAL_CHAR}])[{_LOCAL_CHAR}]++(?:\.++[{_LOCAL_CHAR}]++)*+\.*+"
    # A dot is part of the domain only when a label follows it, so the full stop that ends
    # a sentence ("write to jane.roe@example.com.") neither stops the match nor joins it.
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.(?=[A-Za-z0-9]))++[A-Za-z]{2,63}"
    r"(?![A-Za-z0-9-])"
)


def _email_replacement(match: re.Match[str], taken: list[str]) -> str:
    taken.append(match.group())
    return PLACEHOLDERS["email"]


def _scrub_emails(text: str, taken: list[str]) -> tuple[str, int]:
    return _count_changes(_EMAIL, _email_replacement, text, taken)


# --- IBAN -------------------------------------------------------------------------------

# ISO 13616 registry lengths (country code and check digits included).
IBAN_LENGTHS: Mapping[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22,
    "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21,
    "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27,
    "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25,
    "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_UNKNOWN_COUNTRY_LENGTHS = range(15, 35)
# The start of an IBAN-shaped text: country code, check digits and any whole groups after.
_IBAN_HEAD = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}(?: [A-Za-z0-9]{4}){0,7} $")
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,4})?"
    r"(?![A-Za-z0-9])"
)


def is_valid_iban(compact: str) -> bool:
    """Whether ``compact`` (no spaces) passes the ISO 13616 mod-97 check and has the length
    registered for its country (15 to 34 for a country not in :data:`IBAN_LENGTHS`)."""
    compact = compact.upper()
    expected = IBAN_LENGTHS.get(compact[:2])
    if len(compact) != expected and (expected or len(compact) not in _IBAN_UNKNOWN_COUNTRY_LENGTHS):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _iban_replacement(match: re.Match[str], taken: list[str]) -> str:
    # The match can run on into the next word ("BE68 5390 0754 7034 THEN"), so try every
    # prefix that ends between groups, longest first.
    candidate = match.group()
    for end in _group_ends(candidate):
        if is_valid_iban(candidate[:end].replace(" ", "")):
            taken.append(candidate[:end])
            return PLACEHOLDERS["iban"] + candidate[end:]
    return candidate


def _scrub_ibans(text: str, taken: list[str]) -> tuple[str, int]:
    return _count_changes(_IBAN, _iban_replacement, text, taken)


# --- payment cards ----------------------------------------------------------------------

# A run of digit groups separated by single spaces or dashes; which part of it is a card is
# decided in Python, because a regex that fails after a possessive run would rescan it.
# The look-ahead skips runs too short to hold a card without calling back into Python.
_DIGIT_RUN = re.compile(r"(?<![\w.,-])(?=(?:[0-9][ -]?){13})[0-9]++(?:[ -][0-9]++)*+")
_DIGIT_GROUP = re.compile(r"[0-9]+")
_DECIMAL_TAIL = re.compile(r"[.,][0-9]")
_CARD_DIGITS = range(13, 20)


def passes_luhn(digits: str) -> bool:
    """Whether the digit string passes the Luhn check used by payment card numbers."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _card_replacement(match: re.Match[str], taken: list[str]) -> str:
    run = match.group()
    if _DECIMAL_TAIL.match(match.string, match.end()):
        return run  # the integer part of a decimal number, not a card
    if _follows_iban_head(match):
        return run  # the rest of an IBAN that failed its check: an account, not a card
    return _replace_cards_in_run(run, taken)


def _replace_cards_in_run(run: str, taken: list[str]) -> str:
    """Replace cards at either end of ``run``, then look again in what is left between
    them: two cards written one after the other must both go, so that scrubbing the result
    again changes nothing. Iterative, so a hostile run of many cards cannot recurse deep."""
    left: list[str] = []
    right: list[str] = []
    middle = run
    while True:
        found = next(
            (
                (start, end)
                for start, end in _card_windows(middle)
                if passes_luhn(re.sub(r"[ -]", "", middle[start:end]))
            ),
            None,
        )
        if found is None:
            break
        start, end = found
        taken.append(middle[start:end])
        if start == 0:  # a card at the head: keep looking in what follows it
            after = middle[end:]
            rest = after.lstrip(" -")
            left += [PLACEHOLDERS["card"], after[: len(after) - len(rest)]]
            middle = rest
        else:  # a card at the tail: keep looking in what precedes it
            before = middle[:start]
            rest = before.rstrip(" -")
            right += [before[len(rest) :], PLACEHOLDERS["card"]][::-1]
            middle = rest
    return "".join(left) + middle + "".join(reversed(right))


def _card_windows(run: str) -> list[tuple[int, int]]:
    """Spans of whole groups at the start or at the end of ``run`` holding 13 to 19 digits,
    longest first. A card is often followed by its expiry or CVV ("4111 ... 1111 123") or
    preceded by a quantity, so the whole run is not the only candidate; looking at the two
    ends only keeps a long run of numbers (a table, hostile input) linear."""
    head = list(itertools.islice(_DIGIT_GROUP.finditer(run), _CARD_DIGITS.stop))
    tail_from = max(0, len(run) - 2 * _CARD_DIGITS.stop)
    tail = list(_DIGIT_GROUP.finditer(run, tail_from))
    if tail_from and run[tail_from - 1].isdigit():
        tail = tail[1:]  # cut in the middle of a group
    windows = [(0, m.end(), _digits_through(head, i)) for i, m in enumerate(head)]
    windows += [
        (m.start(), len(run), _digits_through(tail[::-1], i)) for i, m in enumerate(reversed(tail))
    ]
    fitting = [(start, end) for start, end, n in windows if n in _CARD_DIGITS]
    return sorted(set(fitting), key=lambda span: span[0] - span[1])


def _digits_through(groups: list[re.Match[str]], index: int) -> int:
    return sum(len(m.group()) for m in groups[: index + 1])


def _scrub_cards(text: str, taken: list[str]) -> tuple[str, int]:
    return _count_changes(_DIGIT_RUN, _card_replacement, text, taken)


# --- phone numbers ----------------------------------------------------------------------

_SEP = r"[ .-]"
_PHONE = re.compile(
    # Not right after a letter, digit or joiner: keeps "JO-482913", "v2.4.1", "14/03" out.
    r"(?<![\w+./#$-])(?:"
    # International: +CC, an optional "(0)" or "(area)", then groups split by separators,
    # or E.164 without separators (+4930123456).
    rf"\+[0-9]{{1,3}}(?:{_SEP}?\([0-9]{{1,5}}\))?{_SEP}?[0-9]{{1,6}}+(?:{_SEP}[0-9]{{1,6}}+){{0,6}}+"
    r"|\+[0-9]{7,15}+"
    # North American: (212) 555-0199, 415.555.0134, 1-800-555-0199.
    rf"|(?:1{_SEP})?(?:\([0-9]{{3}}\){_SEP}?|[0-9]{{3}}{_SEP})[0-9]{{3}}{_SEP}[0-9]{{4}}"
    # National with a trunk 0: 020 7946 0958, (030) 123456, 01 23 45 67 89.
    # A separator is required: an unbroken 0-led number is more often an id than a phone.
    rf"|(?:\(0[0-9]{{1,4}}\){_SEP}?|0[0-9]{{1,4}}{_SEP})[0-9]{{2,8}}+(?:{_SEP}[0-9]{{2,8}}+){{0,3}}+"
    r")(?![0-9]|[.,-][0-9])"
)
_PHONE_DIGITS = range(7, 16)
_DATE_SHAPES = frozenset({(2, 2, 4), (1, 2, 4), (2, 1, 4), (1, 1, 4), (4, 2, 2), (2, 2, 2)})


def _phone_replacement(match: re.Match[str], taken: list[str]) -> str:
    candidate = match.group()
    if _follows_iban_head(match):
        return candidate
    groups = tuple(len(g) for g in re.findall(r"[0-9]+", candidate))
    if sum(groups) not in _PHONE_DIGITS or groups in _DATE_SHAPES:
        return candidate  # too short or long for a phone, or a date such as 01.03.2026
    taken.append(candidate)
    return PLACEHOLDERS["phone"]


def _scrub_phones(text: str, taken: list[str]) -> tuple[str, int]:
    return _count_changes(_PHONE, _phone_replacement, text, taken)


# --- shared -----------------------------------------------------------------------------


def _group_ends(candidate: str) -> list[int]:
    """Offsets where a prefix of ``candidate`` ends between groups, longest first."""
    return [len(candidate)] + [i for i in range(len(candidate) - 1, 0, -1) if candidate[i] == " "]


def _follows_iban_head(match: re.Match[str]) -> bool:
    """Whether the match continues an IBAN-shaped text ("DE89 3704 ...") that failed its
    check: an account number, not a card or a phone."""
    start = match.start()
    return bool(_IBAN_HEAD.search(match.string, max(0, start - 40), start))


def _count_changes(
    pattern: re.Pattern[str],
    replace: Callable[[re.Match[str], list[str]], str],
    text: str,
    taken: list[str],
) -> tuple[str, int]:
    """``pattern.sub`` with a replacement that may decline; counts the matches replaced.
    ``replace`` adds to ``taken`` the text it takes out."""
    changed = 0

    def counted(match: re.Match[str]) -> str:
        nonlocal changed
        replacement = replace(match, taken)
        changed += replacement != match.group()
        return replacement

    return pattern.sub(counted, text), changed


_SCRUBBERS: Mapping[str, Callable[[str, list[str]], tuple[str, int]]] = {
    "email": _scrub_emails,
    "iban": _scrub_ibans,
    "card": _scrub_cards,
    "phone": _scrub_phones,
}
