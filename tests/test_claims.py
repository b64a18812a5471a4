"""A copied past reply never tells a customer that something was done for them
(bot.core.claims, the engine's copy path)."""

from __future__ import annotations

import pytest

from bot.core.claims import copyable


@pytest.mark.parametrize(
    "reply",
    [
        "Good news, it hadn't been packed yet, so I've cancelled it for you. We only charge"
        " once it ships.",
        "I understand, and I'm sorry. I've escalated your case to a senior member of our team.",
        "Sorry about that! I've just resent it to the recipient's email address.",
        "Since it's past 48 hours, I've opened a claim with the carrier now.",
        "Send me the order number and I'll refund the difference.",
        "We've refunded the shipping fee to your card.",
        "I HAVE UPDATED the shipping address.",
        "Hi Marisol,\n\nI've started the return for order OC-771245. Unworn items can go back.",
        "I've deleted the card details from your account.",
        "Hi,\n\nDone — you've been unsubscribed from marketing emails. It can take 48 hours.",
        "Good news: your refund has now been issued to the original card.",
        "It's been cancelled, so no charge will show.",
    ],
)
def test_an_action_on_the_order_or_account_is_claimed(reply: str) -> None:
    found = copyable(reply)
    assert found.claimed_action is not None and found.claimed_action in reply
    assert found.text == reply


@pytest.mark.parametrize(
    ("reply", "sent"),
    [
        (
            "Points expire after 12 months. I'm sending you a link to article KB-LOY-01 right now.",
            "Points expire after 12 months. See KB-LOY-01.",
        ),
        (
            "Yes, rewards combine with one promo code.\nI'll also email you the help article"
            " for this, it's KB-LOY-01.\nAnything else?",
            "Yes, rewards combine with one promo code.\nSee KB-LOY-01.\nAnything else?",
        ),
        (
            "Returns are free within 30 days. I'll email you the instructions. Thanks!",
            "Returns are free within 30 days. Thanks!",
        ),
        (
            "I'm sending you the link https://shop.example/returns now. It has the form.",
            "See https://shop.example/returns. It has the form.",
        ),
    ],
)
def test_a_promise_to_send_what_the_reply_can_carry_becomes_its_references(
    reply: str, sent: str
) -> None:
    found = copyable(reply)
    assert found.claimed_action is None
    assert found.text == sent


@pytest.mark.parametrize(
    "reply",
    [
        "We refund within 5 business days of receiving the return.",
        "I'm sorry to hear that! You can cancel an order before it ships from your account.",
        "I understand. Standard shipping takes 3-5 business days (KB-SHP-01).",
        "I'll explain: returns are free within 30 days.",
        "We have a 30-day returns policy, and exchanges are free.",
        "Once your return has been received, the refund takes 5 business days.",
        "If your order has been shipped, it can no longer be cancelled.",
    ],
)
def test_policies_and_explanations_are_sent_as_they_are(reply: str) -> None:
    found = copyable(reply)
    assert found.claimed_action is None and found.text == reply
