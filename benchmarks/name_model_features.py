"""The features of benchmarks/name_model.py's learned name finder (issue 18).

Each candidate word of a message (a word written with a capital, a word the lexicon knows
as a given name or surname, a word inside one of the tagger's entities or a rule's span) is
described by sparse features: its shape, what the lexicon says of it, the tagger's part of
speech, entity and dependency, the words around it, where it stands in its line, and which
of :class:`retrieval.names.NameFinder`'s signals found it. A logistic regression weighs
them; the words it scores over its threshold are names, and runs of them separated by
spaces one span. Kept with the benchmark: the model did not beat the rules on the sixth set,
so the product does not use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import regex

from retrieval.name_lexicon import NameLexicon
from retrieval.name_patterns import _NEVER_NAMES, _TITLES, NOT_NAMES

Token = tuple[int, int, str, str, int, str]
"""One token of the tagger's analysis: start, end, fine part-of-speech tag, dependency
label, index of its head token, entity label ("" outside an entity)."""

Features = dict[str, float]

_WORD_OR_MARK = regex.compile(
    r"\n|[\p{L}\p{M}]+(?:['’-][\p{L}\p{M}]+)*|\p{N}+|[^\s\p{L}\p{M}\p{N}]"
)
_WORDLIKE = regex.compile(r"[\p{L}\p{M}]")
_POSSESSIVE = regex.compile(r"['’]s?$")
_INITIAL_GAP = regex.compile(r"\.[ \t]*+")
_INITIAL_END = regex.compile(r"(?<![\p{L}\p{M}])\p{Lu}\Z")


@dataclass(frozen=True)
class Candidate:
    start: int
    end: int
    features: Features


def _shape(word: str) -> str:
    if word.isupper() and len(word) > 1:
        return "CAPS"
    if word[:1].isupper():
        rest = word[1:]
        if any(c.isupper() for c in rest):
            return "XxX"
        return "Xx"
    if word.islower():
        return "x"
    return "other"


def _context(token: str, lexicon: NameLexicon) -> str:
    """A neighbouring word as a feature: English words by themselves, names and other
    capitalised words by their kind (no personal name is ever a feature)."""
    if token == "\n":
        return "<NL>"
    if not _WORDLIKE.match(token):
        return "<NUM>" if token[:1].isdigit() else token
    folded = token.casefold()
    if folded in NOT_NAMES or folded in _TITLES:
        return folded
    if lexicon.is_name_word(folded) and not lexicon.is_english(folded):
        return "<NAME>" if token[:1].isupper() else "<name>"
    if not lexicon.is_english(folded):
        return "<CAP>" if token[:1].isupper() else "<oov>"
    return folded if token[:1].islower() else "C:" + folded


def _lexicon_flags(word: str, lexicon: NameLexicon) -> list[str]:
    folded = word.casefold()
    flags = []
    if folded in lexicon.given:
        flags.append("given")
    if folded in lexicon.surnames:
        flags.append("surname")
    if lexicon.is_english(folded):
        flags.append("english")
    if folded in lexicon.common:
        flags.append("common")
    if folded in lexicon.describers:
        flags.append("describer")
    if lexicon.is_broad_given(folded):
        flags.append("broad")
    if folded in NOT_NAMES:
        flags.append("notname")
    if folded in _NEVER_NAMES:
        flags.append("never")
    if folded in _TITLES:
        flags.append("title")
    return flags


def _is_candidate(word: str, lexicon: NameLexicon) -> bool:
    if word[:1].isupper():
        return True
    folded = word.casefold()
    return (
        folded in lexicon.given
        or folded in lexicon.surnames
        or lexicon.is_broad_given(folded)
        or not lexicon.is_english(folded)
    )


def candidates(
    text: str,
    tokens: Sequence[Token],
    lexicon: NameLexicon,
    sources: Mapping[str, Sequence[tuple[int, int]]],
) -> list[Candidate]:
    """The candidate words of ``text`` and their features. ``tokens``: the tagger's
    analysis of ``text``; ``sources``: spans found by each of the finder's signals."""
    marks = [(m.start(), m.end(), m.group()) for m in _WORD_OR_MARK.finditer(text)]
    by_start = {t[0]: i for i, t in enumerate(tokens)}
    found: list[Candidate] = []
    for k, (start, end, word) in enumerate(marks):
        if not _WORDLIKE.match(word):
            continue
        bare = _POSSESSIVE.sub("", word) if word[:1].isupper() else word
        if not bare:
            continue
        end = start + len(bare)
        sourced = [
            name for name, spans in sources.items() if any(s < end and start < e for s, e in spans)
        ]
        in_entity = False
        token: Token | None = None
        ti = by_start.get(start)
        if ti is None:
            ti = next((i for i, t in enumerate(tokens) if t[0] <= start < t[1]), None)
        if ti is not None:
            token = tokens[ti]
            in_entity = bool(token[5])
        if not (_is_candidate(bare, lexicon) or in_entity or sourced):
            continue
        f: Features = {}
        shape = _shape(bare)
        flags = _lexicon_flags(bare, lexicon)
        f["bias"] = 1.0
        f["shape=" + shape] = 1.0
        f["len=" + str(min(len(bare), 10))] = 1.0
        if "-" in bare or "'" in bare or "’" in bare:
            f["inner_mark"] = 1.0
        if bare != word:
            f["possessive"] = 1.0
        key = "|".join(flags) or "none"
        f["lex=" + key] = 1.0
        f["lex+shape=" + key + "/" + shape] = 1.0
        for flag in flags:
            f["flag=" + flag] = 1.0
            f["flag+shape=" + flag + "/" + shape] = 1.0
        folded = bare.casefold()
        if lexicon.is_english(folded):
            f["word=" + folded] = 1.0  # an English word's own habits ("June", "Will")
        # Where it stands.
        before = text[:start].rstrip(" \t\"'“(")
        initial = not before or before[-1] in ".!?\n:;"
        line_start = text.rfind("\n", 0, start) + 1
        line_first = not text[line_start:start].strip()
        line_end = text.find("\n", end)
        line_last = not text[end : line_end if line_end >= 0 else len(text)].strip(" \t.,!?")
        f["initial=" + str(initial)] = 1.0
        f["line_first=" + str(line_first)] = 1.0
        f["line_last=" + str(line_last)] = 1.0
        f["alone_on_line"] = float(line_first and line_last)
        if k == len(marks) - 1 or all(m[2] in ".!?" for m in marks[k + 1 :]):
            f["text_last"] = 1.0
        f["initial+shape+lex=" + str(initial) + "/" + shape + "/" + key] = 1.0
        # The words around it.
        p1 = _context(marks[k - 1][2], lexicon) if k >= 1 else "<S>"
        p2 = _context(marks[k - 2][2], lexicon) if k >= 2 else "<S>"
        n1 = _context(marks[k + 1][2], lexicon) if k + 1 < len(marks) else "<E>"
        n2 = _context(marks[k + 2][2], lexicon) if k + 2 < len(marks) else "<E>"
        f["p1=" + p1] = 1.0
        f["p2=" + p2] = 1.0
        f["n1=" + n1] = 1.0
        f["n2=" + n2] = 1.0
        f["p2p1=" + p2 + "_" + p1] = 1.0
        f["n1n2=" + n1 + "_" + n2] = 1.0
        f["p1n1=" + p1 + "_" + n1] = 1.0
        f["p1+shape=" + p1 + "/" + shape] = 1.0
        f["n1+shape=" + n1 + "/" + shape] = 1.0
        # The tagger's view.
        if token is not None:
            tag, dep, head, entity = token[2], token[3], token[4], token[5]
            f["tag=" + tag] = 1.0
            f["ent=" + (entity or "O")] = 1.0
            f["ent+lex=" + (entity or "O") + "/" + key] = 1.0
            if dep:
                f["dep=" + dep] = 1.0
                if 0 <= head < len(tokens) and head != ti:
                    h = tokens[head]
                    head_word = text[h[0] : h[1]].casefold()
                    f["dep+headtag=" + dep + "/" + h[2]] = 1.0
                    if head_word.isalpha() and lexicon.is_english(head_word):
                        f["dep+head=" + dep + "/" + head_word] = 1.0
            if ti is not None and ti > 0:
                f["ptag=" + tokens[ti - 1][2]] = 1.0
            if ti is not None and ti + 1 < len(tokens):
                f["ntag=" + tokens[ti + 1][2]] = 1.0
        for name in sourced:
            f["src=" + name] = 1.0
        f["nsrc=" + str(min(len(sourced), 3))] = 1.0
        found.append(Candidate(start, end, f))
    return found


def spans_of(text: str, chosen: Sequence[Candidate]) -> list[tuple[int, int]]:
    """Runs of chosen words separated by spaces or tabs only, or by the full stop of an
    initial ("J. R. Okafor"), as spans."""
    spans: list[tuple[int, int]] = []
    for c in sorted(chosen, key=lambda c: c.start):
        gap = text[spans[-1][1] : c.start] if spans else "x"
        if not gap.strip(" \t") or (
            _INITIAL_GAP.fullmatch(gap) and _INITIAL_END.search(text, 0, spans[-1][1])
        ):
            spans[-1] = (spans[-1][0], c.end)
        else:
            spans.append((c.start, c.end))
    return spans
