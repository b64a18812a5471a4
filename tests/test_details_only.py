"""Messages that only give the customer's details are recognised, and nothing else is."""

from __future__ import annotations

import pytest

from retrieval.details_only import gives_details_only
from retrieval.pii import scrub
from retrieval.small_talk import answered_with_set_reply


@pytest.mark.parametrize(
    "text",
    [
        "it's JO-771204",
        "It’s JO-771204, thanks!",
        "order number JO-553201",
        "Order number is #JO-475081.",
        "my order number is JO590527",
        "JO-610022 thanks",
        "here you go: JO-693318",
        "sure, JO-333658",
        "JO-653372",
        "order no. 4417",  # a short number counts when it is named as an order
        "ticket #812",
        "my email is jane.doe@example.com",  # scrubbed to [EMAIL] first, as the engine does
        "my number is 07700 900123",
        "email: jane.doe@example.com, phone 07700 900123",
        "oh sorry, uh, JO-995203",
        "#JO-783336 You can reach me at jane.doe@example.com.",
        "JO-707625 thx feel free to ring me on 07700 900123.",
    ],
)
def test_a_message_of_details_only_is_recognised(text: str) -> None:
    assert gives_details_only(scrub(text).text)
    assert answered_with_set_reply(scrub(text).text, after_answer=False)
    assert answered_with_set_reply(scrub(text).text, after_answer=True)


@pytest.mark.parametrize(
    "text",
    [
        "where is JO-771204?",
        "refund for order JO-553201",
        "can you check JO-771204",
        "cancel JO-771204 please",
        "JO-771204 hasn't arrived",
        "my order JO-771204 is late",
        "I was charged twice, please refund the duplicate",
        "it's 2024",  # a bare number is no order number
        "order 2 tents",
        "I paid 1500 for it",
        "my card number is 4111 1111 1111 1111",
        "thanks",
        "my email is",  # no detail given
        "can you call me on 07700 900123 about the refund",
        "Bank details for the refund: GB82 WEST 1234 5698 7654 32",
        "I changed my email to jane.doe@example.com but still get nothing",
    ],
)
def test_anything_that_asks_or_reports_is_not_details_only(text: str) -> None:
    assert not gives_details_only(scrub(text).text)
