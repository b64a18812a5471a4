"""People's names are scrubbed: dropped from greetings and sign-offs, [NAME] elsewhere."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from retrieval.names import NameFinder, NameLexicon
from retrieval.pii import scrub

LABELLED = Path(__file__).resolve().parent.parent / "benchmarks" / "data"

# A lexicon small enough to read: which words are given names, surnames, English words.
LEXICON = NameLexicon(
    given=frozenset({"emeka", "siobhan", "grace", "june", "aurora", "sam"}),
    surnames=frozenset({"ellison", "okafor"}),
    english=frozenset({"grace", "june", "aurora", "headlamp", "accounts", "payable"}),
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi Julia, thanks for waiting.", "Hi, thanks for waiting."),
        ("Hi Ethan! I'm sorry it arrived damaged.", "Hi! I'm sorry it arrived damaged."),
        (
            "Dear Mr. Okafor,\nYour refund is on its way.",
            "Dear customer,\nYour refund is on its way.",
        ),
        (
            "Your parcel left today.\n\nBest,\nKeiko\nJuniper Outfitters Customer Care",
            "Your parcel left today.\n\nBest,\nJuniper Outfitters Customer Care",
        ),
        ("Happy trails!\nTomás | Juniper Outfitters", "Happy trails!\nJuniper Outfitters"),
        ("Thanks,\nKeiko — Juniper Outfitters Support", "Thanks,\nJuniper Outfitters Support"),
        ("Order JO-123456 never came. Thanks, Carlos", "Order JO-123456 never came. Thanks"),
        ("It still leaks.\n- Marcus", "It still leaks."),
        (
            "Customer care, Tomás speaking — how can I help?",
            "Customer care, [NAME] speaking — how can I help?",
        ),
        ("My name's Keiko, what can I do for you?", "My name's [NAME], what can I do for you?"),
        ("I spoke to Priya on Monday.", "I spoke to [NAME] on Monday."),
        ("my name is sam and my order is late", "my name is [NAME] and my order is late"),
    ],
)
def test_names_in_their_usual_places_are_scrubbed_by_the_rules(text: str, expected: str) -> None:
    assert NameFinder(recognizer=None).scrub(text)[0] == expected


@pytest.mark.parametrize(
    "text",
    [
        "Hi there, can you help?",
        "Hello Team,\nmy order is late.",
        "Thanks,\nJuniper Outfitters Customer Care",
        "Best,\nThe Customer Care Team",
        "Will it arrive by Friday?",
        "May I return my Summit Down Jacket?",
        "We ship with UPS and DHL.",
        "Robert'); DELETE FROM bot_conversations WHERE ('1'='1",
    ],
)
def test_capitalised_words_that_name_nobody_are_kept(text: str) -> None:
    assert NameFinder(recognizer=None).scrub(text) == (text, 0)


def test_the_lexicon_finds_given_names_that_are_no_english_word_anywhere() -> None:
    finder = NameFinder(recognizer=None, lexicon=LEXICON)

    assert finder.scrub("The box was signed for by Emeka at the door.")[0] == (
        "The box was signed for by [NAME] at the door."
    )
    assert finder.scrub("Emeka picked it up.")[0] == "[NAME] picked it up."
    # A given name that is an English word needs a surname beside it.
    assert finder.scrub("It came in June Ellison's name.")[0] == "It came in [NAME]'s name."
    assert finder.scrub("The Aurora headlamp is back.") == ("The Aurora headlamp is back.", 0)
    # In a sign-off place, English words alone are a department, not a person.
    assert finder.scrub("Best,\nAccounts Payable") == ("Best,\nAccounts Payable", 0)
    # Chat in lower case: only with the lexicon's word that it is a given name.
    assert finder.scrub("hi im sam, where is my parcel")[0] == "hi im [NAME], where is my parcel"


@pytest.mark.parametrize(
    "text",
    [
        # The product's sample data: "My order jo-212655" was stored as "[NAME]-212655".
        "My order jo-212655 hasn't arrived yet.",
        "my order jo212655 is late",
        "my order jo 212655 is late",
        "hi, my parcel sam/4471 never came",
    ],
)
def test_a_lower_case_prefix_of_an_order_number_is_no_name(text: str) -> None:
    # "jo" and "sam" are given names, and "my order ..." is where a lower-case name may
    # stand ("my son jack"), but a word joined to digits is part of a code.
    lexicon = dataclasses.replace(LEXICON, given=LEXICON.given | {"jo"})
    assert NameFinder(recognizer=None, lexicon=lexicon).scrub(text) == (text, 0)


def test_a_lower_case_name_beside_its_order_number_is_still_scrubbed() -> None:
    finder = NameFinder(recognizer=None, lexicon=LEXICON)
    assert finder.scrub("hi im sam, order jo-212655 is late")[0] == (
        "hi im [NAME], order jo-212655 is late"
    )


def test_the_recogniser_is_asked_and_implausible_persons_are_dropped() -> None:
    asked: list[list[str]] = []

    def recognizer(texts: list[str]) -> list[list[tuple[int, int]]]:
        asked.append(list(texts))
        # Claims "Siobhan" (a person) and "Klarna" (a brand) are persons.
        return [
            [(t.find(w), t.find(w) + len(w)) for w in ("Siobhan", "Klarna") if w in t]
            for t in texts
        ]

    finder = NameFinder(recognizer=recognizer, lexicon=LEXICON)
    texts = ["I paid with Klarna.", "Please ask Siobhan to call me back."]

    assert finder.scrub_batch(texts) == [
        ("I paid with Klarna.", 0),
        ("Please ask [NAME] to call me back.", 1),
    ]
    assert asked == [texts]  # one batch


def test_festivals_the_recogniser_takes_for_persons_are_kept() -> None:
    # spaCy's English pipeline tagged "Diwali" and "Eid" as persons (the sixth labelled set),
    # and the broad list of given names holds both.
    def recognizer(texts: list[str]) -> list[list[tuple[int, int]]]:
        return [
            [(t.find(w), t.find(w) + len(w)) for w in ("Diwali", "Eid", "Noel") if w in t]
            for t in texts
        ]

    finder = NameFinder(recognizer=recognizer)  # the product's lexicon: it knows both
    texts = ["Are you closed for Diwali?", "Will it arrive before Eid?", "Ask Noel about Eid."]

    assert finder.scrub_batch(texts) == [
        ("Are you closed for Diwali?", 0),
        ("Will it arrive before Eid?", 0),
        ("Ask [NAME] about Eid.", 1),
    ]


def test_names_learned_from_the_logs_are_found_in_running_text() -> None:
    finder = NameFinder(recognizer=None)
    assert finder.scrub("Keiko will follow up tomorrow.") == ("Keiko will follow up tomorrow.", 0)

    texts = ["Thanks for waiting.\n\nBest,\nKeiko", "Hi Juniper,\nmy tent", "I love Juniper tents"]
    assert finder.learn_from(texts) == 1  # Juniper is written elsewhere as often: no name

    assert finder.scrub("Keiko will follow up tomorrow.")[0] == "[NAME] will follow up tomorrow."
    # A learned name is a name at the start of a sentence too; common words are not learned.
    assert finder.learn(["Rowan", "the", "Will"]) == 1
    assert finder.scrub("Rowan called back.")[0] == "[NAME] called back."
    assert finder.scrub("Will it arrive?") == ("Will it arrive?", 0)
    assert finder.known_names == {"Keiko", "Rowan"}


def test_a_display_name_teaches_the_persons_name_not_the_business() -> None:
    # A Slack export's agents: "Diego (Juniper Support)". Juniper is the shop: learned as a
    # name, it became [NAME] in "Juniper gift cards never expire".
    finder = NameFinder(recognizer=None)
    learned = ["Diego (Juniper Support)", "Keiko | Juniper Outfitters", "Juniper Support", "Sam"]
    assert finder.learn(learned) == 3
    assert finder.known_names == {"Diego", "Keiko", "Sam"}
    assert finder.scrub("Juniper gift cards never expire.") == (
        "Juniper gift cards never expire.",
        0,
    )


@pytest.mark.parametrize(
    "text",
    [
        # Where a signature stands ("Keiko — Juniper Outfitters"), a word that is no name.
        "Anytime — enjoy your time outdoors!",
        "Here is the guide: https://help.example/articles/boot-fit-guide Anything else?",
    ],
)
def test_words_like_anything_are_no_names_in_a_names_place(text: str) -> None:
    finder = NameFinder(recognizer=None, lexicon=LEXICON)
    assert finder.scrub(text) == (text, 0)
    assert finder.learn_from([text]) == 0


def test_scrub_reports_names_with_the_other_kinds_and_scrubbing_twice_changes_nothing() -> None:
    text = "Hi Julia,\nwrite to jane.roe@example.com. or call +1 415-555-0134.\nBest,\nKeiko"

    first = scrub(text)
    second = scrub(first.text)

    assert first.text == "Hi,\nwrite to [EMAIL]. or call [PHONE].\nBest,"
    assert first.counts["name"] == 2 and first.counts["email"] == 1
    assert second.text == first.text and second.total == 0


@pytest.mark.slow
def test_the_product_finder_meets_its_floor_on_the_labelled_set() -> None:
    """The real spaCy pipeline and lexicon (Faker, Mimesis) on the labelled set that
    ``benchmarks/names.py`` reports on: a floor, so a regression shows."""
    named = [json.loads(x) for x in (LABELLED / "names_labelled.jsonl").open(encoding="utf-8")]
    plain = [json.loads(x) for x in (LABELLED / "non_names_labelled.jsonl").open(encoding="utf-8")]
    finder = NameFinder()

    found = finder.find_batch([row["text"] for row in named])
    hits = total = 0
    for row, spans in zip(named, found, strict=True):
        for name in row["names"]:
            start = row["text"].find(name)
            total += 1
            hits += all(
                any(s.start <= i < s.end for s in spans) for i in range(start, start + len(name))
            )
    scrubbed_plain = sum(bool(spans) for spans in finder.find_batch([r["text"] for r in plain]))

    assert hits / total >= 0.95
    assert scrubbed_plain / len(plain) <= 0.02


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Mentioned: the title is no one's name and keeps the sentence readable.
        (
            "Could I please be put through to Mrs Okafor in claims?",
            "Could I please be put through to Mrs [NAME] in claims?",
        ),
        # Greeted or signing: the title goes with the name, as before.
        ("Dear Mr Okafor,\nYour card is on its way.", "Dear customer,\nYour card is on its way."),
        ("Hi Ms Okafor, your refund is done.", "Hi, your refund is done."),
        ("It arrived today. Many thanks, Mr Okafor", "It arrived today. Many thanks"),
    ],
)
def test_a_title_is_kept_out_of_the_name_it_stands_before(text: str, expected: str) -> None:
    # The twelfth labelled set: 68 of the 94 words of no name scrubbed in its named
    # messages were "Mr", "Ms", "Mrs", "Dr" before the name.
    finder = NameFinder(recognizer=None, lexicon=LEXICON)
    assert finder.scrub(text)[0] == expected
    spans = finder.find(text)
    assert [text[s.start : s.end] for s in spans] == ["Okafor"]


def test_words_the_recogniser_runs_into_a_name_are_kept() -> None:
    # spaCy's small model takes "Apparently Siobhan" and "Asked Emeka" for one person.
    runs = ("Apparently Siobhan", "Asked Emeka", "Grace Okafor", "Chased Siobhan Okafor")

    def recognizer(texts: list[str]) -> list[list[tuple[int, int]]]:
        return [[(t.find(r), t.find(r) + len(r)) for r in runs if r in t] for t in texts]

    lexicon = dataclasses.replace(LEXICON, common=frozenset({"apparently", "ask", "chase"}))
    finder = NameFinder(recognizer=recognizer, lexicon=lexicon)

    assert finder.scrub_batch(
        [
            "Apparently Siobhan from your Leeds store sold it to me.",
            "Asked Emeka to call the customer back.",
            "Grace Okafor rang twice.",
            "Chased Siobhan Okafor twice.",
        ]
    ) == [
        ("Apparently [NAME] from your Leeds store sold it to me.", 1),
        ("Asked [NAME] to call the customer back.", 1),
        ("[NAME] rang twice.", 1),  # a given name that is a word, before a surname: kept whole
        ("Chased [NAME] twice.", 1),  # a verb's past opens a run of any length
    ]


def test_a_surname_naming_what_a_family_holds_is_scrubbed() -> None:
    # "June" a surname too: what makes it no name here is that it is an English word.
    lexicon = dataclasses.replace(LEXICON, surnames=LEXICON.surnames | {"june"})
    finder = NameFinder(recognizer=None, lexicon=lexicon)
    assert finder.scrub("Can you check the duplicate charge on the Okafor account?")[0] == (
        "Can you check the duplicate charge on the [NAME] account?"
    )
    assert finder.scrub("so the Ellison claim will have to wait")[0] == (
        "so the [NAME] claim will have to wait"
    )
    # English words in the same place name no one.
    for text in ("Is the Premier account free?", "The June booking is confirmed."):
        assert finder.scrub(text) == (text, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("siobhan is it ok to send a code?", "[NAME] is it ok to send a code?"),
        ("emeka, pls check ur DMs", "[NAME], pls check ur DMs"),
        ("is siobhan available for a callback?", "is [NAME] available for a callback?"),
        # A word that is no given name, or one that is an English word first, stays.
        ("sorry im late", "sorry im late"),
        ("grace pls check my order", "grace pls check my order"),
    ],
)
def test_a_lower_case_colleague_opening_a_chat_line_is_scrubbed(text: str, expected: str) -> None:
    # The eleventh set's staff chat: "jenny is it ok to give the customer a 10% code".
    lexicon = dataclasses.replace(LEXICON, common=frozenset({"grace"}))
    assert NameFinder(recognizer=None, lexicon=lexicon).scrub(text)[0] == expected
