"""How :class:`retrieval.names.NameFinder` weighs its rules' spans against a learned tagger's
scores, and the brands named after people that are never scrubbed.

Kept apart from :mod:`retrieval.name_tagger` so that the finder (which the engine imports)
never reaches torch: the finder is handed a :class:`WordScorer`, and only the components
that build it import the tagger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import regex

WordScore = tuple[int, int, float]
"""A word's (start, end, highest name probability of its word pieces)."""


@dataclass(frozen=True)
class Rescoring:
    """A rules' span is kept when one of its words scores at least ``keep`` (or none of its
    words is scored: digits, marks, a word past what the tagger read), and a word scoring
    at least ``add`` is a name wherever it stands."""

    keep: float
    add: float


class WordScorer(Protocol):
    """What scores words as names (:class:`retrieval.name_tagger.NameTagger`)."""

    @property
    def rescoring(self) -> Rescoring | None:
        """The thresholds to use; None when the scorer cannot load."""

    def word_scores(self, texts: Sequence[str]) -> list[list[WordScore]] | None:
        """Every word of each text with its name probability; None when it cannot load."""


def rescored(
    text: str,
    spans: Sequence[tuple[int, int]],
    words: Sequence[WordScore],
    rescoring: Rescoring,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The rules' ``spans`` of ``text`` the tagger keeps, and the words it adds on its own:
    not the letters of a code ("JO-482913", "AB12"), which the references' masking reads
    whole, nor a code's prefix written alone ("it starts with JO-"): 35 of the sample's
    agent replies told customers their order number "starts with [NAME]-"."""
    kept = []
    for start, end in spans:
        inside = [p for s, e, p in words if s < end and e > start]
        if not inside or max(inside) >= rescoring.keep:
            kept.append((start, end))
    added = [
        (s, e)
        for s, e, p in words
        if p >= rescoring.add
        and not _DIGIT_BEFORE.search(text, 0, s)
        and not _DIGIT_AFTER.match(text, e)
    ]
    return kept, added


def joined(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``spans`` sorted, overlaps merged, and the words of one name made one span: the
    tagger scores word by word, so "Ivy Bennett", "DUBOIS, Camille" and "S. J. Andersson"
    come as separate words that would read "[NAME] [NAME]" and leave their spaces, commas
    and initials' stops in place. Joined across the spaces of one line, a comma and its
    space (surname first), and an initial's stop. A lower-case handle takes its initial
    ("hamid.r", "grace_o")."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and (
            start <= out[-1][1]
            or (_JOINS.fullmatch(text, out[-1][1], start) and _joinable(text, *out[-1]))
        ):
            out[-1] = (out[-1][0], max(end, out[-1][1]))
        else:
            out.append((start, end))
    return [(s, e + _handle_initial(text, s, e)) for s, e in out]


def _joinable(text: str, start: int, end: int) -> bool:
    # A stop joins only after an initial: "Ana. Bob will call" is two sentences.
    return text[end : end + 1] != "." or _INITIAL_LAST.search(text, start, end) is not None


def _handle_initial(text: str, start: int, end: int) -> int:
    """How many characters of a handle's initial follow a lower-case name ("hamid.r"): not
    an e-mail's ("hamid.r@...") nor a domain's ("hamid.co.uk")."""
    if not text[start:end].islower():
        return 0
    m = _HANDLE_INITIAL.match(text, end)
    return len(m.group()) if m else 0


_INITIAL_LAST = regex.compile(r"(?<![\p{L}\p{M}])\p{L}\Z")
_JOINS = regex.compile(r"[ \t]+|,[ \t]+|\.[ \t]*")
_HANDLE_INITIAL = regex.compile(r"[._]\p{Ll}{1,2}(?![\p{L}\p{N}@_]|\.[\p{L}\p{N}])")
_DIGIT_BEFORE = regex.compile(r"\d[-_/.#]?\Z")
# A digit after the word, or a hyphen that no letter follows ("JO-)", "JO- and"; a
# double-barrelled "Smith-Jones" stays a name).
_DIGIT_AFTER = regex.compile(r"[-_/.#]?\d|-(?!\p{L})")


# Brands, shops and products named after a person, written from general knowledge (not read
# from any labelled set): "my Ted Baker order" names no one. A person who shares one of these
# names is left unscrubbed too; the list keeps to names that are far likelier the brand in a
# support message. The business's own such names go in retrieval.keep_words. Left out on
# purpose: brands that are also an ordinary full name ("John Lewis", "Fred Perry", "Warren
# James"), where a customer's name must not go unscrubbed for a shop's sake. A brand is only
# ever passed over where it is mentioned, never in a greeting or a sign-off.
BRANDS = (
    "Ted Baker",
    "Tommy Hilfiger",
    "Russell Hobbs",
    "Morphy Richards",
    "Ben & Jerry",
    "Ben and Jerry",
    "Sue Ryder",
    "Calvin Klein",
    "Ralph Lauren",
    "Hugo Boss",
    "Louis Vuitton",
    "Yves Saint Laurent",
    "Vera Wang",
    "Kate Spade",
    "Michael Kors",
    "Charles Tyrwhitt",
    "Jo Malone",
    "Laura Ashley",
    "Karen Millen",
    "Victoria's Secret",
    "Victoria’s Secret",
    "Dr Martens",
    "Dr. Martens",
    "Tory Burch",
    "Stella McCartney",
    "Alexander McQueen",
    "Vivienne Westwood",
    "Marc Jacobs",
    "Giorgio Armani",
    "Jimmy Choo",
    "Christian Louboutin",
    "Estée Lauder",
    "Estee Lauder",
    "Elizabeth Arden",
    "Sally Hansen",
    "Johnnie Walker",
    "Dr Pepper",
    "Tim Hortons",
    "Betty Crocker",
    "Harvey Nichols",
    "Dorothy Perkins",
    "Miss Selfridge",
    "Bobbi Brown",
    "Charlotte Tilbury",
    "Emma Bridgewater",
    "Cath Kidston",
    "Orla Kiely",
    "Anya Hindmarch",
    "Jack & Jones",
    "Jack and Jones",
    "Max Factor",
    "John Frieda",
    "Toni & Guy",
    "Vidal Sassoon",
    "Thomas Sabo",
    "Georg Jensen",
    "H. Samuel",
    "H Samuel",
    "Barnes & Noble",
    "Lord & Taylor",
    "Marks & Spencer",
    "Marks and Spencer",
    "Tommy Bahama",
    "Donna Karan",
    "Diane von Furstenberg",
    "Oscar de la Renta",
    "Carolina Herrera",
    "Jean Paul Gaultier",
    "Ann Summers",
    "Helly Hansen",
    "Levi Strauss",
    "Ronald McDonald",
    "Aunt Bessie",
    "Mr Kipling",
    "Henry Hoover",
)
_BRANDS = regex.compile(
    r"(?<![\p{L}\p{M}])(?:"
    + "|".join(regex.escape(b) for b in sorted(set(BRANDS), key=len, reverse=True))
    + r")(?![\p{L}\p{M}])",
    flags=regex.IGNORECASE,
)


def brand_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` names a brand of :data:`BRANDS`."""
    return [m.span() for m in _BRANDS.finditer(text)]


def outside_brands(text: str, spans: Sequence[tuple[int, int]]) -> list[int]:
    """Indexes of the ``spans`` that hold a letter outside every brand ``text`` names: a span
    all of whose letters are a brand's ("Ted Baker", "Baker" of "Ted Baker") is left out."""
    brands = brand_spans(text)
    if not brands:
        return list(range(len(spans)))
    return [
        i
        for i, (start, end) in enumerate(spans)
        if any(
            text[c].isalpha() and not any(s <= c < e for s, e in brands) for c in range(start, end)
        )
    ]
