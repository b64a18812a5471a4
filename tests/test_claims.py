"""A copied past reply never tells a customer that something was done for them
(retrieval.claims, the engine's copy path)."""

from __future__ import annotations

from typing import Literal

import pytest

from retrieval.claims import (
    ACTION,
    ASKS_FOR_DETAILS,
    CASE,
    DONE_ALONE,
    HAVE_DONE,
    LOOK_UP,
    LOOKED_UP,
    PROMISE_TO_SEND,
    RECEIVED,
    CopyableReply,
    as_copied,
    copyable,
    withheld_best,
)
from retrieval.records import RetrievedExchange


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


@pytest.mark.parametrize(
    "reply",
    [
        # Something the customer sent outside the chat, acknowledged as received.
        "Got them, thank you! The correct item is going out by express shipping.",
        "Thanks, I've got the photos. Your label is emailed within 1 business day.",
        "Thanks for sending the photos over. Returns are free for damaged items.",
        "We've received your return and the refund takes 5-7 business days.",
        # Their order looked up, or noted on.
        "I've looked into it: your order shipped yesterday.",
        "I've looked into it.",
        "Yes, we refund the express fee when a parcel is late. I've noted that on your order.",
        # Their order, refund or item under way.
        "The correct item is going out by express shipping (1-2 business days).",
        "The difference is on its way to your original payment method.",
        "Your replacement is being prepared in our warehouse.",
        # What has become of their order.
        "I'm sorry — this order has already been packed, so it can no longer be cancelled.",
        "Unfortunately the order has already shipped, so we can't change the address.",
        "We can change an address only until the order is packed — and yours had already"
        " gone out, sorry.",
        "Unfortunately it's already been packed, and packed orders can't be cancelled.",
        "The order wasn't packed yet, so the cancellation went through.",
        "You'll get the express fee back, since the parcel missed the express window.",
        "Your refund was processed yesterday.",
        # A verdict on their case, or a bare "Done!".
        "Perfect, that qualifies. Price matches are refunded within 5-7 business days.",
        "The recall only covers serials starting EL2-25, so yours isn't affected.",
        "Only serials starting EL2-25 are affected, so your stove isn't part of the recall.",
        "Hello Liam! Done! Cards are only charged when an order is packed.",
        "You're all set.",
        # Having it done promised, whatever the condition: the bot can have nothing shipped.
        "Send me a quick photo of the item and the packing slip and I'll have the correct one"
        " shipped by express (1-2 business days), free of charge.",
        "We'll get your replacement sent out within 2 days.",
    ],
)
def test_what_is_said_of_this_customers_order_is_claimed(reply: str) -> None:
    found = copyable(reply)
    assert found.claimed_action is not None and found.claimed_action in reply
    assert found.text == reply


@pytest.mark.parametrize(
    "reply",
    [
        # The process, in the present or the future: true for whoever it reaches.
        "Orders can't be cancelled once packed.",
        "Refunds take 5-7 business days.",
        "The difference is refunded to your original payment method within 5-7 business days.",
        "We'll email you a prepaid return label within 1 business day.",
        "Your card is only charged when the item is packed.",
        "Your order is packed within 1 hour of ordering.",
        "We ship the replacement once the carrier scans your return.",
        # Any order, or a condition.
        "Codes also can't be applied to an order that's already been placed.",
        "Once an order has been packed we can't change the shipping speed.",
        "If the order was already packed, you get the money back through a return instead.",
        "Refunds take 5-7 business days, and we email you as soon as it's processed.",
        "If it qualifies, we refund the difference.",
        "Our repair service handles damage that isn't eligible for the warranty.",
        "Items marked 'Final sale' aren't eligible for return.",
        # The message itself acknowledged, or apologised for.
        "Got it, thanks. Our rental program covers tents, backpacks and sleeping bags.",
        "Thank you for your email. Returns are free within 30 days.",
        "I've noted order ORD-2024-77; unworn items can be returned within 30 days.",
        "We've got a 30-day returns window, and exchanges are free.",
        "I'm really sorry your Firefly Mini Stove arrived damaged. Returns are free.",
        "I'll have a look at the guide with you: returns are free within 30 days.",
        "You'll have it shipped the same day if you order before noon.",
    ],
)
def test_what_the_process_does_for_anyone_is_sent_as_it_is(reply: str) -> None:
    found = copyable(reply)
    assert found.claimed_action is None and found.text == reply


@pytest.mark.parametrize(
    ("reply", "sent"),
    [
        (
            "Absolutely. I've looked into it. Orders ship within 1 business day.",
            "Absolutely. Orders ship within 1 business day.",
        ),
        (
            "Alright, I've got it here. Carriers do run behind sometimes.",
            "Carriers do run behind sometimes.",
        ),
    ],
)
def test_a_look_up_that_says_nothing_found_is_dropped(reply: str, sent: str) -> None:
    found = copyable(reply)
    assert found.claimed_action is None
    assert found.text == sent


def test_the_best_hit_is_withheld_when_it_is_a_logged_reply_that_claims() -> None:
    def hit(reply: str, kind: Literal["log", "curated"] = "log") -> RetrievedExchange:
        return RetrievedExchange(0.9, "c#1", "cancel my order", reply, kind)

    claims = "Done! I've cancelled it for you."
    assert withheld_best([hit(claims), hit("Refunds take 5-7 business days.")])
    assert not withheld_best([hit("Refunds take 5-7 business days."), hit(claims)])
    assert not withheld_best([hit(claims, kind="curated")])  # an operator's, sent as written
    assert not withheld_best([])


def test_a_reply_is_judged_as_the_engine_sends_it_copied() -> None:
    letter = "Hi,\n\nDone! I've cancelled it for you.\n\nBest,\nJuniper Outfitters Customer Care"
    withheld = as_copied(letter, "log", mid_conversation=True)
    assert withheld.claimed_action == "Done!"
    # With engine.hand_off_claimed_actions off, the engine sends it, as a chat reply.
    sent = as_copied(letter, "log", mid_conversation=True, withhold_claims=False)
    assert sent == CopyableReply("Done! I've cancelled it for you.")
    promise = (
        "Hi,\n\nI'll also email you the help article for this, it's KB-ORD-03. Refunds take 5 days."
    )
    assert as_copied(promise, "log", mid_conversation=False).text == (
        "Hi,\n\nSee KB-ORD-03. Refunds take 5 days."
    )
    # An operator's correction is sent as written.
    assert as_copied(letter, "curated", mid_conversation=True) == CopyableReply(letter)


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ("I've cancelled it for you. Refunds take 5-7 business days.", ACTION),
        ("Send me a photo and I'll have the correct one shipped.", HAVE_DONE),
        ("Got them, thank you! Refunds take 5-7 business days.", RECEIVED),
        ("Done!", DONE_ALONE),
        ("Perfect, that qualifies. See KB-PM-01.", CASE),
        ("I've looked into it.", LOOKED_UP),
        ("Could you send me the order number so I can take a look?", ASKS_FOR_DETAILS),
    ],
)
def test_a_withheld_reply_tells_what_it_claims(reply: str, kind: str) -> None:
    found = copyable(reply)
    assert found.claimed_action is not None and found.claim_kind == kind


def test_a_shortened_reply_tells_what_it_goes_without() -> None:
    found = copyable(
        "I've looked into it. I'm sending you a link to article KB-ORD-05 right now."
        " Addresses can be changed until the order is packed."
    )
    assert found.claimed_action is None
    assert found.text == "See KB-ORD-05. Addresses can be changed until the order is packed."
    assert found.shortened == (PROMISE_TO_SEND, LOOK_UP)
    assert copyable("Refunds take 5-7 business days.").shortened == ()


@pytest.mark.parametrize(
    "reply",
    [
        # The sample's replies (data/sample/conversations.jsonl) that ask for what only an
        # agent reads: copied, the customer answers and nobody looks at it.
        "Hi,\n\nSorry to hear that. Could you send me the order number so I can take a look?",
        "Sure — could you share the order number (it starts with JO-)?",
        "I can check that for you. What's your order number?",
        "Let me pull that up. What's the order number?",
        "Of course. Could you give me the order number, or the email address on the account?",
        "Sure, can I get your order number, please?",
        "Happy to look into this! Could you send me your order number? It starts with JO- and"
        " you'll find it in your confirmation email.",
        # Policy whose next step is what the customer sends the agent: the label, the
        # replacement, the refund wait on someone who reads it.
        "I'm really sorry your Ridgeback 3P Tent arrived damaged. Please reply with a couple"
        " of photos of the damage and the shipping box. Since it was damaged in transit, we'll"
        " email you a free return label, and you can choose a replacement or a full refund.",
        "Oh no, sorry about that! Send us photos of the Nightjar Down Quilt and the box it came"
        " in, and we'll email a free return label straight away.",
        "Apologies for the mix-up. If you can send a photo of the item and the packing slip,"
        " we'll get the right item out to you free of charge by express shipping.",
        "Yes, we price match within 14 days of your purchase. Send us the link and your order"
        " number, and the difference goes back to your original payment method within 5-7"
        " business days.",
        "Send me the link; the difference is refunded to your original payment method within"
        " 5-7 business days.",
        "Good news there: if our price dropped within 14 days of your purchase, we refund the"
        " difference. Just reply with your order number.",
        "Don't pay anything; your duties and taxes were collected at checkout. Send us what the"
        " courier sent you and we'll take care of it.",
        "Please stop using the stove. Could you tell me the serial number under its base?",
    ],
)
def test_a_request_for_details_an_agent_must_act_on_is_withheld(reply: str) -> None:
    found = copyable(reply)
    assert found.claim_kind == ASKS_FOR_DETAILS
    assert found.claimed_action is not None and found.claimed_action in reply
    assert found.text == reply


@pytest.mark.parametrize(
    "reply",
    [
        # What the customer does alone: a form, the store, a text, the parcel, an address.
        "Please file a claim at https://www.juniperoutfitters.example/warranty with your order"
        " number and a few photos. We review claims within 3 business days.",
        "Submit a claim at https://www.juniperoutfitters.example/warranty with the order number"
        " and photos; we review it within 3 business days and repair, replace or refund it.",
        "Bring your order number and a photo ID; someone else can collect it if you forward"
        " them the email and they bring their own ID.",
        "Absolutely — bring it to our flagship store at 418 Alder Lane in Portland with your"
        " order number. In-store returns have no label fee.",
        "Register at https://www.juniperoutfitters.example/recall for a free replacement. No"
        " receipt needed.",
        "Reply STOP to any of our texts to unsubscribe.",
        "Include your order number in the return package.",
        "Send the photos to returns@juniperoutfitters.example with your order number.",
        # What the details are, said, not asked for.
        "No problem — if you bought it in store or don't have the order number, a photo of the"
        " receipt or the email address used at checkout works too.",
        "Please make sure you're using the email address the account was created with — the"
        " reset email only goes there.",
        "Lost physical cards can be replaced with the card number or the receipt.",
        "We review claims within 3 business days of receiving your photos.",
    ],
)
def test_a_request_the_customer_acts_on_alone_is_sent(reply: str) -> None:
    found = copyable(reply)
    assert found.claimed_action is None and found.text == reply
