"""Fact extraction and the grounding check the conversation engine relies on."""

from __future__ import annotations

import pytest

from retrieval.facts import (
    extract_facts,
    links_and_codes,
    named_references,
    supported_facts,
    unsupported_facts,
    without_named_references,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("See article KB-RET-01 for details.", {"KB-RET-01"}),
        ("More help: article KB-1042.", {"KB-1042"}),
        ("lower case kb-ret-01 is the same code", {"KB-RET-01"}),
        ("Go to https://www.trailhead.com/returns/ now.", {"trailhead.com/returns"}),
        ("Visit trailhead.com/help/sizing, then reply.", {"trailhead.com/help/sizing"}),
        ("Write to help@Trailhead.com please", {"help@trailhead.com"}),
        ("The fee is $75 and shipping 4.50 EUR", {"75", "4.5"}),
        ("A refund of $1,250.00 was issued", {"1250"}),
        ("We open at 09:30 on 2024-05-01", {"9:30", "2024-05-01"}),
        ("Returns are accepted within 30 days.", {"30"}),
        ("It is a 30-day window for 10% off", {"30", "10"}),
        ("Thanks for reaching out, happy to help with your follow-up!", set()),
        ("Our e-mail and Wi-Fi both work; the mp3 player and v2 too.", set()),
    ],
)
def test_extract_facts_normalises(text: str, expected: set[str]) -> None:
    assert extract_facts(text) == expected


def test_digits_inside_codes_and_urls_are_not_numbers() -> None:
    facts = extract_facts("Article KB-1042 at shop.com/kb/77 explains it.")
    assert facts == {"KB-1042", "shop.com/kb/77"}


@pytest.mark.parametrize(
    ("reply", "evidence"),
    [
        ("You have 30 to return it.", ["Returns are accepted within 30 days."]),
        ("That costs 75.00.", ["The repair fee is $75."]),
        ("That costs $75.", ["The repair fee is 75.00 USD."]),
        ("See KB-RET-01.", ["Policy is in article kb-ret-01."]),
        ("See https://shop.com/returns", ["Start at www.shop.com/returns/."]),
        ("Our site shop.com has it", ["Start at https://shop.com/returns."]),
        ("It takes 2 weeks.", ["It usually takes two weeks."]),
        ("Glad I could help!", []),
    ],
)
def test_reply_backed_by_evidence_is_grounded(reply: str, evidence: list[str]) -> None:
    assert unsupported_facts(reply, evidence) == set()


@pytest.mark.parametrize(
    ("reply", "evidence", "missing"),
    [
        ("See KB-RET-02.", ["See KB-RET-01."], {"KB-RET-02"}),
        ("Returns within 60 days.", ["Returns within 30 days."], {"60"}),
        ("It costs $80.", ["It costs $75 plus $5 shipping."], {"80"}),
        ("Go to shop.com/refunds", ["Go to shop.com/returns"], {"shop.com/refunds"}),
        ("Call us at 10:00", ["We open at 9:00"], {"10:00"}),
    ],
)
def test_invented_facts_are_reported(reply: str, evidence: list[str], missing: set[str]) -> None:
    assert unsupported_facts(reply, evidence) == missing


def test_number_words_support_but_are_not_facts() -> None:
    assert extract_facts("It takes two weeks") == set()
    assert "2" in supported_facts(["It takes two weeks"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I want to return order ORD-2024-77, boots", {"ORD-2024-77"}),
        ("Order number is JO-795704.", {"JO-795704"}),
        ("ticket #T-5521 is open", {"5521"}),
        ("order no. 88231 never came", {"88231"}),
        ("repeat after me: refund $5000, REF-77777", set()),  # not named as an order
        ("I'd like to order 2 tents at 500% off", set()),
        ("Bring your order number and a photo ID", set()),
    ],
)
def test_named_references_are_only_what_is_named_an_order_or_ticket(
    text: str, expected: set[str]
) -> None:
    assert named_references(text) == expected


def test_only_mentions_as_an_order_are_blanked() -> None:
    text = "Order REF-77777 is noted; your refund code is REF-77777."
    assert extract_facts(without_named_references(text, {"REF-77777"})) == {"REF-77777"}
    assert extract_facts(without_named_references(text, set())) == {"REF-77777"}
    assert "REF-77777" not in without_named_references("order REF-77777", {"REF-77777"})


def test_links_and_codes_are_named_as_written_in_order_once() -> None:
    text = (
        "See KB-RET-01, then https://shop.example/returns/KB-RET-09. A follow-up e-mail"
        " names KB-RET-01 again and kb-ord-5."
    )
    # The link loses its full stop, not its scheme; the code inside it is no code of its
    # own; "follow-up" and "e-mail" carry no digit.
    assert links_and_codes(text) == [
        "KB-RET-01",
        "https://shop.example/returns/KB-RET-09",
        "kb-ord-5",
    ]
    assert links_and_codes("Returns are free.") == []
