"""Names found by where they stand: spoken to, mentioned where only people stand, typed in
lower case, after titles and in signatures; and the capitalised words there that name
nobody are kept."""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from retrieval import given_names
from retrieval.given_names import GivenNames
from retrieval.name_lexicon import _mimesis_names
from retrieval.names import NameFinder, NameLexicon

# A lexicon small enough to read. "sunny", "hope", "mark", "will" are given names that are
# also English verbs or adjectives (``common``); "river", "sky", "tyler" English nouns.
LEXICON = NameLexicon(
    given=frozenset(
        """
        sunny victoria river sky hope chase tyler brianna dolores mark jade femi marcus
        summer grace will tom jerry ruth valentine king
        """.split()  # noqa: SIM905 (a word list reads better as words)
    ),
    surnames=frozenset({"rahman", "berg", "masri", "nakamura"}),
    english=frozenset(
        """
        sunny victoria river sky hope chase tyler mark jade summer sale grace will kat
        success customer app bank billing hoodie stock team escalations review feature
        period marc dolor account box tom ruth valentine king road
        """.split()  # noqa: SIM905
    ),
    common=frozenset({"sunny", "hope", "chase", "mark", "jade", "will"}),
    # The broad list knows names no other list does; no brand is in it.
    broad=frozenset({"yevgenia", "tevita", "olamide", "oluwaseun", "hyun-woo", "shona"}),
)


def scrub(text: str) -> str:
    return NameFinder(recognizer=None, lexicon=LEXICON).scrub(text)[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Spoken to, mid-line, after what is said to them, or first.
        ("lol thanks Sunny you're the best", "lol thanks [NAME] you're the best"),
        ("ok Victoria I'll try restarting it", "ok [NAME] I'll try restarting it"),
        (
            "Good news, River! Your card is on its way.",
            "Good news, [NAME]! Your card is on its way.",
        ),
        ("Sky, your hoodie is back in stock.", "[NAME], your hoodie is back in stock."),
        # Where only a person stands, an English word that is a given name is the name, and
        # so is a word no list knows.
        ("Tell Hope I said thanks.", "Tell [NAME] I said thanks."),
        ("hey, is Chase working today?", "hey, is [NAME] working today?"),
        ("Sky was super helpful on chat.", "[NAME] was super helpful on chat."),
        (
            "I spoke to Summer and Grace in your call centre.",
            "I spoke to [NAME] and [NAME] in your call centre.",
        ),
        (
            "I was told by Yevgenia on the phone that it was fine.",
            "I was told by [NAME] on the phone that it was fine.",
        ),
        (
            "Internal: transferring to Tevita in escalations.",
            "Internal: transferring to [NAME] in escalations.",
        ),
        ("Driver Femi will retry tomorrow.", "Driver [NAME] will retry tomorrow."),
        ("Kindly ask Olamide to resend the contract.", "Kindly ask [NAME] to resend the contract."),
        ("Can Oluwaseun call me back?", "Can [NAME] call me back?"),
        ("It was for my son Dylan's birthday.", "It was for my son [NAME]'s birthday."),
        ("Hello Ms Achterberg, your repair is done.", "Hello, your repair is done."),
        ("Of course, Hyun-woo! Here's the link.", "Of course, [NAME]! Here's the link."),
        ("Hiya Shona x", "Hiya x"),
        ("Escalated by Ruth to tier 2.", "Escalated by [NAME] to tier 2."),
        ("Booked under Nakamura for 7pm.", "Booked under [NAME] for 7pm."),
        (
            "Tom's replacement came but Jerry's didn't.",
            "[NAME]'s replacement came but [NAME]'s didn't.",
        ),
        # A Slack mention: one that greets goes as a greeting's name does.
        ("@sarah can you check ticket 4412?", "can you check ticket 4412?"),
        ("Hi @Priya! Sorry about this.", "Hi! Sorry about this."),
        ("Please ask @Priya to call me back.", "Please ask [NAME] to call me back."),
        # Lower case in chat.
        ("pls tell tyler the game crashes", "pls tell [NAME] the game crashes"),
        ("hey is brianna there?", "hey is [NAME] there?"),
        ("thank u dolores ❤️", "thank u [NAME] ❤️"),
        ("lol thanks mark you're a legend", "lol thanks [NAME] you're a legend"),
        ("hi my names jade, my code didnt work", "hi my names [NAME], my code didnt work"),
        # Titles before a surname's particle, initials.
        ("Dr. van der Berg cancelled twice.", "Dr. [NAME] cancelled twice."),
        ("Dear Ms. al-Masri,\nYour bag was found.", "Dear customer,\nYour bag was found."),
        (
            "Please send the invoice.\n\nRegards,\nM. A. Rahman\nFinance Director",
            "Please send the invoice.\n\nRegards,\nFinance Director",
        ),
        # Signatures after a caret or a dash, nicknames included.
        ("Your refund has been processed. ^Marcus", "Your refund has been processed."),
        ("Ticket can be closed. -Kat, Field Ops", "Ticket can be closed. Field Ops"),
    ],
)
def test_names_where_people_are_addressed_and_mentioned_are_scrubbed(
    text: str, expected: str
) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Hi, hope you're well. I need a new invoice.",  # a verb before "you", not a name
        "Will the Summer Sale price apply to kids' sizes?",
        "I spoke to the Summer Sale team about it.",  # "Sale" names nobody
        "Kind regards,\nCustomer Success",  # a team signs
        "Review: Bank App is great but the feature is confusing.",
        "Can you transfer me to Billing?",
        "Grace period is 14 days.",
        "ok thanks so much, you're great",
        "I spoke to PeakFit about my membership.",  # written like a brand
        "Spoke with Vodafone about my bill.",  # a brand: in no list of names
        "I live on King's Road.",  # a place
        "Happy Valentine's Day!",
        "@channel please look at the queue",
        "write to jane@example.com today",  # an e-mail, scrubbed as one elsewhere
    ],
)
def test_capitalised_words_in_those_places_that_name_nobody_are_kept(text: str) -> None:
    assert scrub(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Spoken to before a comma and a clause: a name even when it is also a word.
        (
            "Mark, can you mark this ticket as urgent?",
            "[NAME], can you mark this ticket as urgent?",
        ),
        (
            "Can you help me, Will? The last agent couldn't.",
            "Can you help me, [NAME]? The last agent couldn't.",
        ),
        # Lower case, after a relation, a role, a title or a greeting, or signing alone.
        ("my son tyler broke the screen", "my son [NAME] broke the screen"),
        ("the tech guy femi was super helpful", "the tech guy [NAME] was super helpful"),
        ("my boss, mr nakamura, wants a letter", "my boss, mr [NAME], wants a letter"),
        ("hi grace, any update on the ticket?", "hi [NAME], any update on the ticket?"),
        ("thanks, ill wait for the email then\nbrianna", "thanks, ill wait for the email then"),
        # Listed beside a name found: a name no English word is.
        (
            "Reminder: Femi and Yevgenia are covering the queue.",
            "Reminder: [NAME] and [NAME] are covering the queue.",
        ),
        # In capitals in an ordinary line.
        (
            "Invoice overdue. ATTN: RUTH BERG, ACCOUNTS PAYABLE.",
            "Invoice overdue. ATTN: [NAME], ACCOUNTS PAYABLE.",
        ),
        # In a form's name field: a name no English word is, or a listed one.
        ("Name: Olamide Adeyemi\nOrder: #41177", "Name: [NAME]\nOrder: #41177"),
        ("Account holder: Shona Nakamura, postcode 3HX", "Account holder: [NAME], postcode 3HX"),
        # Thanked or praised at the end of a sentence.
        (
            "Thanks for the help, Tevita. Much appreciated.",
            "Thanks for the help, [NAME]. Much appreciated.",
        ),
        ("Great work on this, Femi!", "Great work on this, [NAME]!"),
        # Speaking or acting as people do, even a name that is also a word.
        ("Will said he'd call me back.", "[NAME] said he'd call me back."),
        ("Summer and I tried to book it.", "[NAME] and I tried to book it."),
        ("Yes, Marcus is my husband.", "Yes, [NAME] is my husband."),
        ("My husband is Femi.", "My husband is [NAME]."),
        ("Grace is off today, I'll cover her queue", "[NAME] is off today, I'll cover her queue"),
        ("Mark did a fantastic job on the boiler.", "[NAME] did a fantastic job on the boiler."),
        # A header's or a ticket's person, pronouns, the name an account is in.
        ("From: Femi Rahman <fr@example.com>", "From: [NAME] <fr@example.com>"),
        ("Customer: Shona Nakamura\nIssue: overheating", "Customer: [NAME]\nIssue: overheating"),
        ("River (they/them) was great", "[NAME] (they/them) was great"),
        (
            "The account is in the name of Olamide Rahman.",
            "The account is in the name of [NAME].",
        ),
        ("Order placed by Yevgenia Berg today", "Order placed by [NAME] today"),
        # Lower case: thanked, called, handed over to, asked.
        ("thanks mark, enjoy ur weekend", "thanks [NAME], enjoy ur weekend"),
        ("thx for nothing tyler", "thx for nothing [NAME]"),
        ("i spoke to a lady called hope", "i spoke to a lady called [NAME]"),
        ("handed over to hope on nights", "handed over to [NAME] on nights"),
        ("jade can u check the voucher?", "[NAME] can u check the voucher?"),
    ],
)
def test_names_that_only_their_place_gives_away_are_scrubbed(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Victoria, BC is in Canada, not Australia.",
        "my son said the screen broke",
        "the app said Delivered but nothing came",
        "We ship with UPS and DHL, or by SIM card courier.",
        "Honestly, the new Dark Mode is hard to read.",
        # A product's or a company's name field, and a shop thanked by its name.
        "Product name: Hoodie Classic\nCompany name: Acme Road Ltd",
        "Thanks for shopping with us, Grace Outfitters.",
        "Thanks for the update, Team.",
        # A company speaks, a date is no one, "will" after thanks is a promise.
        "Evri says the parcel is at the depot.",
        "A decision will be made by April.",
        "thanks, will do",
        "thanks devs!",
        "To: Customer Services",
        "Ridgeway Homes said the appliances were covered.",
    ],
)
def test_words_in_those_places_that_name_nobody_are_kept(text: str) -> None:
    assert scrub(text) == text


def test_english_words_are_cut_to_their_singular_only_at_a_plural_ending() -> None:
    # "Marcus" is no plural of "marc", nor "Dolores" of "dolor": names, not words.
    assert not LEXICON.is_english("Marcus")
    assert not LEXICON.is_english("Dolores")
    assert LEXICON.is_english("Accounts") and LEXICON.is_english("boxes")
    # "Apologies" is "apology"'s; "Davies" is a surname, not "davy"'s.
    assert SIXTH.is_english("Apologies") and not SIXTH.is_english("Davies")


def test_the_lexicon_holds_mimesis_names_that_faker_lacks() -> None:
    given, surnames = _mimesis_names()

    assert {"keiko", "sunita", "femi"} <= given
    assert {"smith", "müller"} <= surnames
    assert not any("(" in w for w in given)  # "світ (світан)" is two spellings, not a name


def test_the_broad_list_of_given_names_is_built_once_and_then_read_from_its_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    lines = [
        {"name": "tevita", "gender_prob": {"M": 1.0}},
        {"name": "Olamide", "gender_prob": {"F": 0.6, "M": 0.4}},
        {"name": "a bang", "gender_prob": {"M": 1.0}},  # two words: never looked up
        {"name": "\u5cfb\u5c90", "gender_prob": {"M": 1.0}},  # no capitals: left out
    ]
    with gzip.open(data / "gender_wgnd2.0.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    cache = tmp_path / "cache"

    names = GivenNames.load(cache, data=data)
    (saved,) = cache.iterdir()

    def read_again(files: object) -> None:
        raise AssertionError("the list was built again instead of read from its cache")

    monkeypatch.setattr(given_names, "_names_in", read_again)
    again = GivenNames.load(cache, data=data)

    assert saved.suffix == ".npy"
    for loaded in (names, again):
        assert "Tevita" in loaded and "olamide" in loaded
        assert "Evri" not in loaded and "a bang" not in loaded and len(loaded) == 2


def test_shouted_lines_are_read_in_title_case_and_scrubbed_as_written() -> None:
    from retrieval.names import unshouted

    assert unshouted("HI TOM I STILL HAVE NOT RECEIVED MY REFUND") == (
        "Hi Tom I Still Have Not Received My Refund"
    )
    assert unshouted("my DHL parcel, order KB-123") == "my DHL parcel, order KB-123"
    assert scrub("PLEASE CALL ME BACK, MY NAME IS TOM NAKAMURA") == (
        "PLEASE CALL ME BACK, MY NAME IS [NAME]"
    )
    assert scrub("WHY HAS MY BILL GONE UP AGAIN THIS MONTH") == (
        "WHY HAS MY BILL GONE UP AGAIN THIS MONTH"
    )


def test_a_cache_that_cannot_be_written_leaves_the_list_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk or a read-only home must not take name scrubbing down with it."""
    data = tmp_path / "data"
    data.mkdir()
    with gzip.open(data / "gender_wgnd2.0.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps({"name": "Tevita", "gender_prob": {"M": 1.0}}) + "\n")

    def disk_full(path: Path, hashes: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(given_names, "_save_atomically", disk_full)
    with caplog.at_level("WARNING", logger="retrieval.given_names"):
        names = GivenNames.load(tmp_path / "cache", data=data)
    assert "tevita" in names
    assert "could not cache the list of given names" in caplog.text
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


# The sixth labelled set's kinds of names in running text, and what stands beside them and
# names nobody. "victor", "rose", "frank" are given names and English words; "taini",
# "okoye", "deepika" only the broad list knows.
SIXTH = NameLexicon(
    given=LEXICON.given
    | frozenset(
        """
        victor rose frank june cormac cheryl arizona phoenix sage slate harper lady thu harley
        clarke lindell rain mine gene
        """.split()  # noqa: SIM905
    ),
    surnames=LEXICON.surnames | frozenset({"ridgeway", "street", "harley", "clarke", "davies"}),
    english=LEXICON.english
    | frozenset(
        """
        victor rose frank june arizona phoenix sage slate harper lady home removal apology
        street rain mine gene stock restock davy speaker
        """.split()  # noqa: SIM905
    ),
    common=LEXICON.common | frozenset({"frank", "rain", "mine"}),
    broad=frozenset(LEXICON.broad)
    | frozenset({"taini", "okoye", "deepika", "jaket", "where", "ive", "sove"}),
    describers=frozenset({"frank"}),
)


def scrub_sixth(text: str) -> str:
    return NameFinder(recognizer=None, lexicon=SIXTH).scrub(text)[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A name doing what people do, even one that is an English word.
        (
            "Victor has the original receipt, I'll get it off him.",
            "[NAME] has the original receipt, I'll get it off him.",
        ),
        ("Rose signed for the parcel.", "[NAME] signed for the parcel."),
        ("June will be at the house from 9.", "[NAME] will be at the house from 9."),
        ("Gene was the one I spoke to.", "[NAME] was the one I spoke to."),
        # Beside what the person is to someone.
        ("Frank, the installer, left a mess.", "[NAME], the installer, left a mess."),
        ("Chase (my husband) will call you.", "[NAME] (my husband) will call you."),
        # Together with another: both, twins, a list that goes on from a name found.
        (
            "Can Grace and Summer both be added as users?",
            "Can [NAME] and [NAME] both be added as users?",
        ),
        (
            "I've been bounced between Cormac, Síle and a bot.",
            "I've been bounced between [NAME], [NAME] and a bot.",
        ),
        # Spoken to between commas, or after a sentence.
        (
            "I'll be honest, Frank, this is the worst service.",
            "I'll be honest, [NAME], this is the worst service.",
        ),
        (
            "We'll be in touch by Friday. Victor, please check the quote.",
            "We'll be in touch by Friday. [NAME], please check the quote.",
        ),
        # Owning something, or a full name, that only the broad list knows.
        ("We need Taini's signature on the form.", "We need [NAME]'s signature on the form."),
        ("The account was set up by Summer Okoye.", "The account was set up by [NAME]."),
        # Lower case: given as one's own, told or asked, reported.
        ("hi im grace, the app keeps crashing", "hi im [NAME], the app keeps crashing"),
        ("i'm deepika. my sister gave me the code", "i'm [NAME]. my sister gave me the code"),
        ("ask grace she knows", "ask [NAME] she knows"),
        ("i swear if cheryl tells me to restart it", "i swear if [NAME] tells me to restart it"),
        # From next door, signing at a team, connected to.
        ("luckily Sunny from next door took it in", "luckily [NAME] from next door took it in"),
        ("Enjoy! — Sunny @ Support", "Enjoy! Support"),
        # A pronoun picks the name up; a dash sets it beside a relation; staff; chat thanks.
        (
            "I gave the spare key to Hope, she's home all day.",
            "I gave the spare key to [NAME], she's home all day.",
        ),
        (
            "I'm Okoye's wife — Taini — calling about his order.",
            "I'm [NAME]'s wife — [NAME] — calling about his order.",
        ),
        ("Your staff Taini promised me.", "Your staff [NAME] promised me."),
        ("Nice one Taini, sorted", "Nice one [NAME], sorted"),
        # A name only the broad list knows, alone in running text.
        (
            "It was meant to be a surprise for Taini so please don't tell her.",
            "It was meant to be a surprise for [NAME] so please don't tell her.",
        ),
        ("Please call Okoye at 2pm.", "Please call [NAME] at 2pm."),
        # A relation before a lower-case name and a verb in the past; a list's first
        # item before a full name; a rota.
        ("my flatmate frank took the parcel in", "my flatmate [NAME] took the parcel in"),
        ("Tom and Ruth Berg share this account.", "[NAME] and [NAME] share this account."),
        ("Evening shift: Summer on email.", "Evening shift: [NAME] on email."),
    ],
)
def test_names_in_running_text_that_are_also_words_are_scrubbed(text: str, expected: str) -> None:
    assert scrub_sixth(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Sage and Slate are both out of stock on the Harper.",  # colours
        "Can you ship to a PO Box in Phoenix, Arizona?",  # a place
        "Ridgeway Homes said the appliances were covered by you.",  # a company
        "I bought a Harper three-seater in Sage from your Manchester store.",  # a colour
        "Apologies — the Mark II version is not compatible.",
        "Can the cool box keep ice for 5 days? Mine's melted in one.",
        "some lady in your shop said online would be cheaper",  # a role
        "Estimated delivery: Tue 14 – Thu 16 May.",
        "Clarke Removals dropped and scratched the dresser.",
        "I work on Harley Street — can the courier leave it with reception?",
        "Can I get a receipt with our company name (Lindell & Co) on it?",
        "Traillhead has the same Stormline Rain Jaket for $30 less.",  # a product
        "Where's the Gift Wrap option at checkout?",
        "Hi, hope you're well. Victor and Victoria are the models we stock.",
        # ... but not where places, products and brands stand.
        "We use Slack, Taini and Drive for our files.",
        "Is there a branch in Taini?",
        "Can you send it to the Okoye store instead?",
        "Does it work with Okoye speakers?",
        "Can I return it if Ive tried it on?",  # typed without its apostrophe
        "The Emberline 2.1 Sove inside is ruined.",  # a typo in a model's name
    ],
)
def test_words_in_running_text_that_name_nobody_are_kept(text: str) -> None:
    assert scrub_sixth(text) == text


def test_a_weekday_in_running_text_is_kept_and_a_name_like_it_in_a_greeting_is_not() -> None:
    # "Thu" is a Vietnamese given name as well as Thursday: the greeting decides, with or
    # without a lexicon.
    assert scrub_sixth("Estimated delivery: Tue 14 – Thu 16 May.") == (
        "Estimated delivery: Tue 14 – Thu 16 May."
    )
    for finder in (NameFinder(recognizer=None), NameFinder(recognizer=None, lexicon=SIXTH)):
        assert finder.scrub("Hello Thu Trang,\nDo you sell batteries?")[0] == (
            "Hello,\nDo you sell batteries?"
        )


# The seventh labelled set's kinds of capitalised words that name nobody: what a customer
# owns, where a journey goes, a saint's town, a company signing under its team, a voice
# assistant; and the places of its names. "arlo", "kuala", "siri", "alexa", "ted" are given
# names; "depot", "whitman" English words; "sunny" an adjective.
SEVENTH = NameLexicon(
    given=SIXTH.given | frozenset({"arlo", "kuala", "siri", "alexa", "ted", "helier"}),
    surnames=SIXTH.surnames,
    english=SIXTH.english | frozenset({"depot", "whitman", "security", "camera", "dispatch"}),
    common=SIXTH.common,
    broad=SIXTH.broad,
    describers=SIXTH.describers | {"sunny"},
)


def persons_named(*names: str) -> Callable[[Sequence[str]], list[list[tuple[int, int]]]]:
    """A recogniser that calls every occurrence of ``names`` a person, as spaCy does with
    places and brands."""

    def recognize(texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [
            [m.span() for name in names for m in re.finditer(re.escape(name), text)]
            for text in texts
        ]

    return recognize


@pytest.mark.parametrize(
    ("text", "recognised"),
    [
        ("My Arlo security camera keeps going offline.", ()),
        ("Can I change the flight to Kuala Lumpur?", ()),
        ("We missed the ferry to St Helier.", ("St Helier",)),
        ("Is St Helier covered by next-day delivery?", ("St Helier",)),
        ("Kind regards,\nDispatch\nMillbrook Depot", ()),
        ("Siri keeps reading out the wrong delivery time.", ()),
        ("Does your app work with Google Assistant or Alexa?", ()),
    ],
)
def test_things_places_and_companies_where_a_name_could_stand_are_kept(
    text: str, recognised: tuple[str, ...]
) -> None:
    finder = NameFinder(recognizer=persons_named(*recognised), lexicon=SEVENTH)
    assert finder.scrub(text)[0] == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A signature that opens with a given name is a person's, even before an English word.
        ("Thanks again,\nTed Whitman", "Thanks again,"),
        # A greeting still takes a given name that is a voice assistant's too.
        ("Hi Alexa, your order has shipped.", "Hi, your order has shipped."),
        # ... and "her" before a name speaks to her.
        ("I told her Arlo would call back.", "I told her [NAME] would call back."),
    ],
)
def test_names_beside_those_cues_are_still_scrubbed(text: str, expected: str) -> None:
    assert NameFinder(recognizer=None, lexicon=SEVENTH).scrub(text)[0] == expected


def found(text: str, lexicon: NameLexicon = SEVENTH) -> list[str]:
    finder = NameFinder(recognizer=None, lexicon=lexicon)
    return [text[s.start : s.end] for s in finder.find(text)]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # What people are done by, go by, agree with; a phone registered to them.
        ("The claim was handled by Rose last week.", ["Rose"]),
        ("Our account was set up by Victor before he left.", ["Victor"]),
        ("My name is Ruth and I never go by Grace.", ["Ruth", "Grace"]),
        # What people would or can do, or cover.
        ("Support said Victor would call me at 3.", ["Victor"]),
        ("Rose can take the refunds today.", ["Rose"]),
        ("Victor is on leave this week, so Rose is covering.", ["Victor", "Rose"]),
        ("Can Rose confirm the new date?", ["Rose"]),
        ("Is Victor still on shift?", ["Victor"]),
        ("Is Rose still handling my case?", ["Rose"]),
        # Greetings quoted in a message, and birthday wishes.
        ("The app shows 'Welcome back, Victor' but that's not me.", ["Victor"]),
        ("The card should say 'Happy birthday Rose, love from us'.", ["Rose"]),
        ("thank you so much tevita x", ["tevita"]),
        # A signature with its role in brackets; a field of people in the plural.
        ("Regards,\nV. Rose (Leaseholder, Block C)", ["V. Rose"]),
        ("Escalation:\n- Previous agents: Victor, Tevita", ["Victor", "Tevita"]),
        # Roles beside the name.
        ("The flight attendant, Victor, was amazing with my son.", ["Victor"]),
        ("The caretaker, Rose, said the lift is fixed.", ["Rose"]),
        ("The meter reader who came today, Victor, said it's faulty.", ["Victor"]),
        # Spoken to after "over to you", or first before news or an apology.
        ("The export is done. Over to you, Victor.", ["Victor"]),
        ("Sunny, it's not good news I'm afraid.", ["Sunny"]),
        # A surname given; a ticket reassigned; a report; a neighbour's flat.
        ("My surname is Rose-Ward since the wedding.", ["Rose-Ward"]),
        ("Ticket 4411 reassigned from Grace to the night team.", ["Grace"]),
        ("Grace reports a leak from upstairs.", ["Grace"]),
        ("Note: Grace in flat 3 has a newborn.", ["Grace"]),
        # A rank before a surname; who someone is; thanks for something; a chat's speaker.
        ("Captain Rose would like a callback.", ["Rose"]),
        ("Sorry, who is Victor? I never authorised anyone.", ["Victor"]),
        ("I'd like to thank Victor for sorting our car hire.", ["Victor"]),
        ("Victor (Support): Sorry for the wait!", ["Victor"]),
    ],
)
def test_the_seventh_sets_places_of_names_are_scrubbed(text: str, names: list[str]) -> None:
    assert found(text) == names


@pytest.mark.parametrize(
    "text",
    [
        "How do I turn on Dark Mode in the desktop app?",  # "desk", a team's word, inside
        "HOPE YOU'RE HAPPY WITH THIS, I'VE HAD ENOUGH",  # shouted, not spoken to
        "Is Summer Sale still on?",
        "Is Sky still my broadband provider?",  # a company, still someone's
        "Can Apple confirm the order?",
        "Who is Amazon's courier here?",
        "Sorry, who is the manager?",
        "Thank You for the quick reply.",
        "Summary (Support): refund issued.",
    ],
)
def test_words_in_the_seventh_sets_places_that_name_nobody_are_kept(text: str) -> None:
    assert found(text) == []


# Where the names found are widened or cut: "eveline", "chris" are given names; "pat" and
# "faith" given names and English words; "love" a surname too.
WIDENED = NameLexicon(
    given=SEVENTH.given | frozenset({"mette", "eveline", "chris", "pat", "faith"}),
    surnames=SEVENTH.surnames | frozenset({"love"}),
    english=SEVENTH.english | frozenset({"pat", "faith", "green", "order", "love"}),
    common=SEVENTH.common | frozenset({"pat"}),
    broad=SEVENTH.broad,
    describers=SEVENTH.describers,
)


@pytest.mark.parametrize(
    ("text", "recognised", "names"),
    [
        # The recogniser's span across a line break is weighed line by line (and the
        # surname written before the given name goes with it).
        (
            "Kind regards,\nSørensen, Mette\nOrder 10492",
            ("Mette\nOrder",),
            ["Sørensen, Mette"],
        ),
        # An initial before a name found goes with it, and so do a double-barrelled
        # surname's second half and a surname's particles.
        ("J. Nakamura's order was flagged by fraud checks.", ("Nakamura",), ["J. Nakamura"]),
        (
            "The booking was under 'Faith Nwosu' but we booked as Faith Nwosu-Harris.",
            (),
            ["Faith Nwosu", "Faith Nwosu-Harris"],
        ),
        ("Patients: Eveline de Vries (9:40).", (), ["Eveline de Vries"]),
        # A name found elsewhere finds the words beside it in turn.
        (
            "It is in the names of Pat Green and Chris Green. Pat has passed away.",
            ("Chris Green",),
            ["Pat Green", "Chris Green", "Pat"],
        ),
        # After a title, a capitalised word is the surname, even one that is a word.
        ("Ms Love from the claims team left me a voicemail.", (), ["Love"]),
    ],
)
def test_names_found_are_widened_to_their_initials_and_surnames_and_cut_at_lines(
    text: str, recognised: tuple[str, ...], names: list[str]
) -> None:
    finder = NameFinder(recognizer=persons_named(*recognised), lexicon=WIDENED)
    assert [text[s.start : s.end] for s in finder.find(text)] == names


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # A lower-case name given after a greeting.
        ("hey its mark, locked out of the app again", ["mark"]),
        ("hi sunny here, wifi keeps dropping", ["sunny"]),
        # After a relation: in brackets, or before what is said of a person.
        ("my dad (frank) is 82 and got a scam call", ["frank"]),
        ("ask for gran (ruth), she's deaf so knock loud", ["ruth"]),
        ("my son mark is flying alone next week", ["mark"]),
        ("Sorry I missed it, my little boy Victor was sick.", ["Victor"]),
        # Denied, called, passed to, looped in.
        ("i'm not tom. did you merge accounts?", ["tom"]),
        ("i think she was called ruth", ["ruth"]),
        ("please pass to grace she knows the whole story", ["grace"]),
        ("pls loop in femi he set up the integration", ["femi"]),
        # A lower-case surname goes with the given name.
        ("send the invoice to my accountant femi nakamura pls", ["femi nakamura"]),
        ("so gran (her names ruth nakamura) got a letter", ["ruth nakamura"]),
        ("name on it is tom o'connor, flight tomorrow", ["tom o'connor"]),
        # Listed with "and then"; "again" after a greeting's name; booked under a name; what
        # a person may be allowed to do; signing as.
        ("After speaking with Femi and then Grace, I still don't know.", ["Femi", "Grace"]),
        ("Hi, Victor again. The boiler still isn't working.", ["Victor"]),
        ("The booking for the restaurant is under Victor, party of 6.", ["Victor"]),
        ("Is it possible for Victor to use his air miles?", ["Victor"]),
        ("It was taken by someone signing as 'V. Rose', is that your staff?", ["V. Rose"]),
    ],
)
def test_the_seventh_sets_lower_case_names_and_running_names_are_scrubbed(
    text: str, names: list[str]
) -> None:
    assert found(text) == names


@pytest.mark.parametrize(
    "text",
    [
        "Hi, hope you're well.",
        "hi its fine now",
        "hi im new here",
        "my son will call you back",
        "The booking is under review.",
        "Is it possible for Apple Pay to use my card?",
    ],
)
def test_words_beside_the_seventh_sets_lower_case_cues_are_kept(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # Rung, paid or sent to: a name more likely than a word needs nothing more.
        ("can you ask the driver to ring femi on arrival", ["femi"]),
        ("my transfer to femi didnt go through", ["femi"]),
        # Left for another of them.
        ("can i switch my sessions from grace to another trainer", ["grace"]),
        ("Please switch my appointment from Rose to another vet.", ["Rose"]),
        # Between commas after a role, reporting.
        ("the guy from your depot, grace, said to email here", ["grace"]),
        # A surname's initial after a name; a quoted message signed after a dash.
        ("I spoke to Victor B about the refund.", ["Victor B"]),
        ("He wrote: \"I'll make sure it's sorted — Victor.\" It wasn't.", ["Victor"]),
    ],
)
def test_names_rung_left_and_signed_in_quotes_are_scrubbed(text: str, names: list[str]) -> None:
    assert found(text) == names


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("can you call me back tomorrow", []),
        ("please ring back after 5", []),
        ("I spoke to Victor I think, on Monday.", ["Victor"]),  # the pronoun is no initial
    ],
)
def test_words_after_those_cues_are_kept(text: str, names: list[str]) -> None:
    assert found(text) == names


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Ticket shows 'NAKAMURA/TEVITA MR' — is that right?", ["NAKAMURA/TEVITA"]),
        ("Does it use TCP/UDP MR ports?", []),  # no name's words
        ("Filed under NAKAMURA/TEVITA in the archive", []),  # no title: a folder's name
    ],
)
def test_a_passengers_name_as_tickets_write_it_is_scrubbed(text: str, names: list[str]) -> None:
    assert found(text) == names


def test_pronouns_and_determiners_that_lists_of_given_names_hold_are_kept() -> None:
    # The lists hold "them" and "these" as given names, which are no English words in
    # WordNet: after "ask" or "call" they looked like a name more likely than a word.
    lexicon = dataclasses.replace(SEVENTH, given=SEVENTH.given | {"them", "these"})
    for text in ("please ask them to check their spam folder", "can you call these numbers"):
        assert found(text, lexicon) == []


# The eighth set's name-free half: places, companies and thanks that lists of names hold.
EIGHTH = NameLexicon(
    given=SEVENTH.given | frozenset({"preston", "louise", "alice", "carmen", "kia", "notting"}),
    surnames=SEVENTH.surnames | frozenset({"preston", "hill"}),
    english=SEVENTH.english
    | frozenset({"deliveries", "delivery", "springs", "spring", "carnival", "hill", "declined"}),
    common=SEVENTH.common,
    broad=frozenset(SEVENTH.broad) | {"merci", "tevita"},
    describers=SEVENTH.describers,
)


@pytest.mark.parametrize(
    ("text", "recognised"),
    [
        # Companies report things too, and the recogniser takes them for persons.
        ("Klarna says all fine on their side.", ("Klarna",)),
        # A lake's or a saint's town.
        ("The campsite near Lake Louise says our booking is lost.", ()),
        # A town's word after a name.
        ("The confirmation says Alice Springs but we booked Adelaide.", ("Alice Springs",)),
        # Between a determiner and a noun: what kind of thing it is.
        ("All Preston deliveries are back on schedule.", ()),
        ("The Notting Hill carnival weekend is no good.", ()),
        # A place's word after a capitalised word and a contracted particle.
        ("Can we switch to a hotel in Puerto del Carmen instead?", ()),
        # Thanks and greetings in other languages.
        ("Merci, but I still need the invoice in French.", ()),
        ("Kia ora, does the Auckland store have it?", ()),
    ],
)
def test_places_companies_and_greetings_that_lists_of_names_hold_are_kept(
    text: str, recognised: tuple[str, ...]
) -> None:
    finder = NameFinder(recognizer=persons_named(*recognised), lexicon=EIGHTH)
    assert finder.scrub(text)[0] == text


@pytest.mark.parametrize(
    ("text", "recognised", "names"),
    [
        # A name a list holds still reports things.
        ("Tevita says the parcel is at the depot.", ("Tevita",), ["Tevita"]),
        # ... is still a name spoken to, and owns what it owns.
        ("I spoke to Preston about the deliveries.", (), ["Preston"]),
        ("Please ask that Louise calls me back.", (), ["Louise"]),
    ],
)
def test_names_beside_the_eighth_sets_cues_are_still_scrubbed(
    text: str, recognised: tuple[str, ...], names: list[str]
) -> None:
    finder = NameFinder(recognizer=persons_named(*recognised), lexicon=EIGHTH)
    assert [text[s.start : s.end] for s in finder.find(text)] == names


# "amir", "rebecca" are given names WordNet holds too (proper nouns there); "art",
# "patience" given names that are English nouns; "tendai" only the broad list knows.
ACTING = dataclasses.replace(
    EIGHTH,
    given=EIGHTH.given | {"amir", "rebecca", "art", "patience"},
    english=EIGHTH.english | {"amir", "rebecca", "art", "patience", "print"},
    broad=frozenset(EIGHTH.broad) | {"tendai", "promo"},
)


@pytest.mark.parametrize(
    ("text", "recognised", "names"),
    [
        # A name only the broad list knows, doing what people do, first in its sentence.
        ("Tendai is the account owner; I'm helping.", (), ["Tendai"]),
        ("Tendai just told me the label expired.", (), ["Tendai"]),
        # A given name WordNet holds too, where the recogniser calls it a person.
        ("Amir asked if we can fit the shelving.", ("Amir",), ["Amir"]),
        ("I see Rebecca already offered you a code.", ("Rebecca",), ["Rebecca"]),
        # ... and not without it (unless it does what a customer does, opening its
        # sentence: "Amir asked", "Heather bought"), nor an English noun's plural or a word
        # after a place's.
        ("Amir fitted the shelving last week.", (), []),
        ("Amir asked if we can fit the shelving.", (), ["Amir"]),
        ("Patience is wearing thin.", (), []),
        ("Art prints arrived bent.", ("Art",), []),
        ("Promo codes can't be combined.", (), []),
        ("The flight to Tendai was cancelled.", (), []),
    ],
)
def test_names_doing_what_people_do_are_scrubbed(
    text: str, recognised: tuple[str, ...], names: list[str]
) -> None:
    finder = NameFinder(recognizer=persons_named(*recognised), lexicon=ACTING)
    assert [text[s.start : s.end] for s in finder.find(text)] == names


# "clive", "jordan", "fatima" given names WordNet holds too; "macleod", "kipling" surnames
# only WordNet holds; "folake" only the broad list knows.
RELATED = dataclasses.replace(
    EIGHTH,
    given=EIGHTH.given | {"clive", "jordan", "fatima"},
    english=EIGHTH.english | {"clive", "jordan", "fatima", "macleod", "kipling", "cake"},
    broad=frozenset(EIGHTH.broad) | {"folake"},
)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # A relation by marriage, or a step-parent, before the name.
        ("My stepdad Clive is the one who set it up.", ["Clive"]),
        ("Send it to my mother-in-law Fatima in Valencia.", ["Fatima"]),
        # A relation written as a title: the name goes, the aunt stays.
        ("It was a present for Auntie Folake and it won't turn on.", ["Folake"]),
        # After "Mr", a surname that only WordNet holds.
        ("Mr MacLeod asked whether the surcharge can be waived.", ["MacLeod"]),
        # A role after "the", without commas, that does something.
        ("Jordan the agent booked me onto the wrong flight.", ["Jordan"]),
        # Who issued something.
        ("The refund was issued by Fatima on the 3rd.", ["Fatima"]),
        # Not a question to the role, nor a brand between a determiner and a noun.
        ("Will the courier need ID?", []),
        ("Hope the plumber can come before the weekend.", []),
        ("The Mr Kipling cakes were squashed.", []),
    ],
)
def test_relations_titles_and_roles_beside_a_name_are_scrubbed(text: str, names: list[str]) -> None:
    assert found(text, RELATED) == names


CLAUSES = dataclasses.replace(
    RELATED,
    given=RELATED.given | {"stephen"},
    surnames=RELATED.surnames | {"okafor"},
    english=RELATED.english | {"stephen"},
    broad=frozenset(RELATED.broad) | {"yusra"},
)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # The word ending the sentence before is no capitalised word beside the name.
        ("Noted. Yusra will be the point of contact.", ["Yusra"]),
        # A relative clause tells of a person.
        ("Ivy took over the case from Stephen, who has left the company.", ["Stephen"]),
        # A surname after an initial, the initial with it.
        ('The transactions to "J. Okafor" aren\'t mine.', ["J. Okafor"]),
    ],
)
def test_names_after_a_sentence_an_initial_or_before_a_clause_are_scrubbed(
    text: str, names: list[str]
) -> None:
    assert found(text, CLAUSES) == names


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # A name with its own relation beside it is a person's, even one that is a word.
        ("Grace and her friend Jade are booked in the same room.", ["Grace", "Jade"]),
        # Forwarding from someone.
        ("Forwarding from Grace in the showroom: velvet, not linen.", ["Grace"]),
    ],
)
def test_names_with_their_own_relation_or_forwarded_from_are_scrubbed(
    text: str, names: list[str]
) -> None:
    assert found(text) == names


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # Away from work, or still on a team: a person, even a name that is a verb.
        ("Is Mark still on the team? He promised a refund.", ["Mark"]),
        ("If Mark is still off sick, can someone else take it?", ["Mark"]),
        ("The case moved because Mark is on sick leave.", ["Mark"]),
    ],
)
def test_names_away_from_work_are_scrubbed(text: str, names: list[str]) -> None:
    assert found(text) == names


def test_a_name_after_a_verb_opening_the_sentence_is_scrubbed() -> None:
    # "Adding" is no capitalised word of a brand's or a place's ("Google Drive").
    assert found("Adding Hyun-woo to cc so he can see it.") == ["Hyun-woo"]


# The ninth set's name-free half: stations, airports and towns that lists of names hold.
NINTH = dataclasses.replace(
    CLAUSES,
    given=CLAUSES.given | {"arlanda", "norton", "margaret", "faith", "nadia", "norma"},
    surnames=CLAUSES.surnames | {"norton", "street", "oduya"},
    english=CLAUSES.english
    | {"stockholm", "chipping", "faith", "lady", "street", "road", "heathrow"},
    broad=frozenset(CLAUSES.broad) | {"sonoma"},
)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # A first line asking about what its heading names, not a signature.
        ("Paddington — is the Heathrow Express included in our rail package?", []),
        ("Lady Margaret Road — can the parcel be left in the porch?", []),
        # ... but a note's heading names its person.
        ("Faith Oduya — upgrade request — approved by supervisor.", ["Faith Oduya"]),
        # Where a run opens with a word of no name, what stands before the run counts.
        ("Any direct flights from Stockholm Arlanda to Reykjavik?", []),
        # After "in", a run of several words is a place, unless "in" is a verb's.
        ("Broadband in Chipping Norton is terrible, any fibre coming?", []),
        ("Let me loop in Nadia Rahman, she manages enterprise accounts.", ["Nadia Rahman"]),
        # A surname that is a street's word stays a name.
        ("Customer Norma Street called about her pet insurance claim.", ["Norma Street"]),
        # Before a version, a product's name.
        ("The VPN client keeps crashing on macOS Sonoma 14.4 for us.", []),
    ],
)
def test_the_ninth_sets_places_and_headings_are_kept(text: str, names: list[str]) -> None:
    assert found(text, NINTH) == names


FULL = dataclasses.replace(
    NINTH,
    given=NINTH.given | {"campbell", "dieter", "hunter", "ana"},
    surnames=NINTH.surnames | {"campbell", "cole", "costa", "royce"},
    english=NINTH.english | {"campbell", "cole", "dieter", "hunter", "costa", "rolls"},
    broad=frozenset(NINTH.broad) | {"mhairi", "beatriz"},
)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # A given name opening the sentence before a surname found goes with it.
        ("Mhairi Campbell's claim for storm damage has been settled.", ["Mhairi Campbell"]),
        # ... not a verb: "Ask".
        ("Ask Campbell's team about it.", ["Campbell"]),
        # A given name before a double-barrelled surname whose halves are names.
        ("Grace Adeyemi-Cole's booking was cancelled by the hotel.", ["Grace Adeyemi-Cole"]),
        ("The Rolls-Royce parts are on back order.", []),
        # Spoken to between a comma and a colon or another comma, before a clause.
        ("Just to confirm, Hunter: your excess is £250.", ["Hunter"]),
        ("It is with the assessor now, Dieter, and I've marked it priority.", ["Dieter"]),
    ],
)
def test_full_names_and_names_spoken_to_mid_sentence_are_scrubbed(
    text: str, names: list[str]
) -> None:
    assert found(text, FULL) == names


PLACED = dataclasses.replace(
    FULL,
    given=FULL.given | {"gemma", "beth", "sam", "reed", "lorraine", "jack"},
    surnames=FULL.surnames | {"reed"},
    english=FULL.english | {"gemma", "reed", "jack", "side", "speaker"},
    broad=frozenset(FULL.broad) | {"nkechi", "ashok"},
)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # A name signing after kisses.
        ("lovely, thank you so much for sorting the refund so fast x Gemma", ["Gemma"]),
        # Together with the writer or the writer's people.
        ("Could you check that the flights for Will and me are both confirmed?", ["Will"]),
        ("Lorraine and the kids sat on the hard shoulder for four hours.", ["Lorraine"]),
        # Confirmed with, forwarded to, put through to, lodged by.
        ("Confirmed with Sam that the order was sent to the right address.", ["Sam"]),
        ("I'll forward this to Nkechi as she handles our telecoms.", ["Nkechi"]),
        ("If Ashok from the vendor side calls, put him through to Beth.", ["Ashok", "Beth"]),
        ("The claim for the hail damage was lodged by Reed last Thursday.", ["Reed"]),
        # Asked whether they can have what someone has.
        ("Can Summer get the same discount as me? She's on my account.", ["Summer"]),
        # ... not a thing's side.
        ("Jack on the side of the speaker is loose, the sound cuts out.", []),
    ],
)
def test_names_with_the_writer_or_passed_to_are_scrubbed(text: str, names: list[str]) -> None:
    assert found(text, PLACED) == names


LOWERED = dataclasses.replace(
    PLACED,
    given=PLACED.given | {"reza", "joy", "blessing", "amber", "bill", "patience"},
    english=PLACED.english | {"joy", "blessing", "amber", "bill", "patience", "keep", "fine"},
    common=PLACED.common | {"joy", "amber", "bill", "keep"},
    broad=frozenset(PLACED.broad) | {"amaka"},
)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # Lower case: a name giving itself after "it's", spoken to before a dash, or a
        # relation's before a verb in "s".
        ("sorry to bother you again, it's amaka, did the refund go through?", ["amaka"]),
        ("it's fine, the refund came through", []),
        ("reza — can you take the ticket from the lady on hold?", ["reza"]),
        ("my nan joy keeps getting texts saying she owes money", ["joy"]),
        # A given name that is also a word, capitalised after a conjunction, did something.
        ("Okay so Blessing dropped off the groceries but half were swapped.", ["Blessing"]),
        ("The light came on and Amber pulled over immediately.", ["Amber"]),
        ("The invoice was wrong, so Bill paid the difference and wants it back.", ["Bill"]),
        # ... not a month, nor the word being what it is.
        ("The order was placed in May and June was when it shipped.", []),
        ("We waited and Patience is wearing thin.", []),
    ],
)
def test_lower_case_names_and_names_after_a_conjunction_are_scrubbed(
    text: str, names: list[str]
) -> None:
    assert found(text, LOWERED) == names


SURNAME_FIRST = dataclasses.replace(
    LOWERED,
    given=LOWERED.given | {"mette", "kari", "austin", "texas"},
    surnames=LOWERED.surnames | {"sørensen", "haugland", "patel", "austin"},
    english=LOWERED.english | {"austin", "texas", "tier", "escalate"},
    common=LOWERED.common | {"escalate"},
    broad=frozenset(LOWERED.broad) | {"hemant"},
)


@pytest.mark.parametrize(
    ("text", "recognised", "names"),
    [
        # A surname before its given name, as lists and forms write them.
        ("Account holder: Sørensen, Mette. Please add her husband.", (), ["Sørensen, Mette"]),
        ("Patel, Hemant (acct 11930477): disputes early termination fee", (), ["Patel, Hemant"]),
        ("Haugland, Kari reported damage to the rental car.", (), ["Haugland, Kari"]),
        # ... not a town and its state.
        ("Austin, Texas to Denver — any direct flights on Monday?", (), []),
        # A note's status, and a level before its number, are no names.
        ("Escalating — customer's been without broadband for 11 days.", (), []),
        ("Ticket #45521 escalated to Tier 2 this morning.", ("Tier 2",), []),
    ],
)
def test_surnames_first_are_scrubbed_and_statuses_and_levels_kept(
    text: str, recognised: tuple[str, ...], names: list[str]
) -> None:
    finder = NameFinder(recognizer=persons_named(*recognised), lexicon=SURNAME_FIRST)
    assert [text[s.start : s.end] for s in finder.find(text)] == names


PAIRED = dataclasses.replace(
    SURNAME_FIRST,
    given=SURNAME_FIRST.given | {"wale", "rebecca", "tane", "bridget"},
    surnames=SURNAME_FIRST.surnames | {"walker", "chen", "seller"},
    english=SURNAME_FIRST.english | {"wale", "rebecca", "walker", "chen", "seller", "rate"},
    common=SURNAME_FIRST.common | {"rate"},
    broad=frozenset(SURNAME_FIRST.broad) | {"bex", "jiahui", "rated"},
)


@pytest.mark.parametrize(
    ("text", "recognised", "names"),
    [
        # A nickname, and a short name beside the full one in brackets.
        ("The booking is under my nickname Wale.", (), ["Wale"]),
        ("Bex (Rebecca) said she'd sort it but I'm still waiting.", (), ["Bex", "Rebecca"]),
        ("Mum (Bridget) ordered the recliner.", (), ["Bridget"]),
        # The recogniser's full name: a given name, accents aside, and a surname WordNet
        # holds; not a verb's past and a surname.
        ("Tāne Walker asked if the food suits working dogs.", ("Tāne Walker",), ["Tāne Walker"]),
        ("Top Rated Seller badge disappeared.", ("Rated Seller",), []),
        # A name only the broad list knows beside a surname, either way round.
        (
            "Chen Jiahui (passport) vs Jiahui Chen on the booking?",
            (),
            ["Chen Jiahui", "Jiahui Chen"],
        ),
    ],
)
def test_nicknames_and_full_names_beside_a_surname_are_scrubbed(
    text: str, recognised: tuple[str, ...], names: list[str]
) -> None:
    finder = NameFinder(recognizer=persons_named(*recognised), lexicon=PAIRED)
    assert [text[s.start : s.end] for s in finder.find(text)] == names


CUSTOMERS = dataclasses.replace(
    PAIRED,
    given=PAIRED.given | {"heather", "rich", "chase", "art"},
    english=PAIRED.english | {"heather", "rich", "art", "print"},
    common=PAIRED.common | {"rich", "print"},
)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # A given name, even an English word, opening its sentence before what a customer
        # does.
        ("Heather bought the purple fleece and wants to swap it.", ["Heather"]),
        ("Rich has asked for the bill to be split between the two flats.", ["Rich"]),
        ("Faith used her loyalty points but nothing was deducted.", ["Faith"]),
        # ... not being, nor a plural noun, nor a month.
        ("Patience is wearing thin.", []),
        ("Art prints arrived bent.", []),
        ("June ordered stock runs late every year.", []),
    ],
)
def test_names_opening_a_sentence_before_what_a_customer_does_are_scrubbed(
    text: str, names: list[str]
) -> None:
    assert found(text, CUSTOMERS) == names
