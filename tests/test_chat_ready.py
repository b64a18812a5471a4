"""A copied past reply reads as a chat reply, not as the end of someone else's e-mail
(retrieval.chat_ready): a business's signature, a sign-off whose name was scrubbed, an
invitation to answer by e-mail, a closing offer of more help, an opening thanks for the
message or for waiting and, mid-conversation, a fresh salutation or thanks for reaching
out are dropped; everything that says something stays as it was."""

from __future__ import annotations

import pytest

from retrieval.chat_ready import (
    CLOSING_OFFER,
    EMAIL_INVITATION,
    SALUTATION,
    SIGNATURE,
    VALEDICTION,
    chat_ready,
    chat_ready_reply,
    generator_ready,
)

ASK = "Could you send me the order number? It starts with JO- (see KB-ORD-01)."


@pytest.mark.parametrize(
    "sign_off",
    [
        "All the best,",
        "Best,",
        "Kind regards,",
        "Best regards,",
        "Warm regards,",
        "Thanks,",
        "Many thanks,",
        "Thank you,",
        "Cheers,",
        "Sincerely,",
        "Take care,",
        "kind regards",  # no comma, lower case: still nobody signs
        "Best,\n[NAME]",  # the name replaced by the placeholder, on its own line
        "Thanks, [NAME]",
        "Thanks again,\n\nBest,",  # two in a row
    ],
)
def test_a_valediction_left_without_a_name_is_dropped(sign_off: str) -> None:
    reply = f"Hi,\n\n{ASK}\n\n{sign_off}"
    assert chat_ready(reply, mid_conversation=False) == f"Hi,\n\n{ASK}"


@pytest.mark.parametrize(
    "reply",
    [
        # Thanks in running text, not a sign-off.
        "Thanks, that's all I needed to know. The refund shows in 5-7 business days.",
        f"Thanks,\nthat's the whole of it: {ASK}",
        f"{ASK} Thanks,",  # not a line of its own: left to the reader
        # A closing that is a wish, not a valediction waiting for a name.
        f"{ASK}\n\nThank you!",
        f"{ASK}\n\nTake care.",
        # Only a valediction: nothing would be left.
        "Thanks,",
        "Best,\n[NAME]",
    ],
)
def test_what_is_not_a_dangling_valediction_stays(reply: str) -> None:
    assert chat_ready(reply, mid_conversation=False) == reply


@pytest.mark.parametrize(
    ("reply", "sent"),
    [
        (
            f"{ASK}\n\nIf you have any other questions, just reply to this email.\n\nAll the best,",
            ASK,
        ),
        (
            f"{ASK}\n\nIf you have any other questions, just reply to this email.\n\n"
            "Thanks,\nThe Support Team",
            ASK,
        ),
        (f"{ASK} If you have any questions, simply reply to this e-mail!", ASK),
        (f"{ASK}\nShould you have any further questions or concerns, reply to this email.", ASK),
        (f"{ASK}\n\nJust reply to this email if you have any other questions.", ASK),
    ],
)
def test_an_invitation_to_answer_by_email_is_dropped(reply: str, sent: str) -> None:
    assert chat_ready(reply, mid_conversation=False) == sent


@pytest.mark.parametrize(
    "reply",
    [
        # It asks for something the customer must do: not only a way of writing back.
        "Please reply to this email with a couple of photos of the damage.",
        f"{ASK}\n\nPlease reply to this email with a photo of the receipt.",
        # In a chat, "this message" is the chat's: fine as it is.
        f"{ASK}\n\nIf you have any other questions, just reply to this message.",
        # In the middle of a sentence that goes on.
        f"If you have any other questions, just reply to this email and ask for KB-ORD-01. {ASK}",
        # Nothing else to send.
        "If you have any other questions, just reply to this email.",
    ],
)
def test_what_is_not_only_an_email_invitation_stays(reply: str) -> None:
    assert chat_ready(reply, mid_conversation=False) == reply


@pytest.mark.parametrize(
    ("reply", "later"),
    [
        (f"Hi,\n\n{ASK}", ASK),
        (f"Hello,\n{ASK}", ASK),
        (f"Dear customer,\n\n{ASK}", ASK),
        (f"Hi there!\n\n{ASK}", ASK),
        (f"Good morning,\n\n{ASK}", ASK),
        (f"Hi [NAME],\n\n{ASK}", ASK),
        (f"Hi there! {ASK}", ASK),
        (f"Hello! {ASK}", ASK),
        (f"Hi. {ASK}", ASK),
    ],
)
def test_a_salutation_is_dropped_mid_conversation_and_kept_at_the_start(
    reply: str, later: str
) -> None:
    assert chat_ready(reply, mid_conversation=True) == later
    assert chat_ready(reply, mid_conversation=False) == reply


@pytest.mark.parametrize(
    "reply",
    [
        # The opening says something: it is kept.
        f"Good question! {ASK}",
        f"Good news: it shipped today. {ASK}",
        "Hello Kitty backpacks are back in stock; see KB-STK-02.",
        f"Hey, that's odd. {ASK}",
        # Only a salutation: nothing would be left.
        "Hi there!",
    ],
)
def test_what_is_not_a_bare_salutation_stays_mid_conversation(reply: str) -> None:
    assert chat_ready(reply, mid_conversation=True) == reply


@pytest.mark.parametrize(
    ("reply", "sent"),
    [
        # The sample's three signatures, as scrubbing leaves them.
        (f"{ASK}\n\nBest,\nJuniper Outfitters Customer Care", ASK),
        (f"{ASK}\n\nThanks,\nJuniper Outfitters Support", ASK),
        (f"{ASK}\n\nHappy trails!\nJuniper Outfitters", f"{ASK}\n\nHappy trails!"),
        # With the agent's name as the placeholder, or missed by the scrubber.
        (f"{ASK}\n\nBest,\n[NAME]\nJuniper Outfitters Customer Care", ASK),
        (f"{ASK}\n\nThanks,\n[NAME] — Juniper Outfitters Support", ASK),
        (f"{ASK}\n\nBest,\nJonas\nJuniper Outfitters Customer Care", ASK),
        (f"{ASK}\n\nHappy trails!\nKeiko | Juniper Outfitters", f"{ASK}\n\nHappy trails!"),
        (f"{ASK}\n\nKind regards,\nThe Support Team", ASK),
        (f"{ASK}\n\nTake care!\nCustomer Care", f"{ASK}\n\nTake care!"),
    ],
)
def test_a_business_signature_is_dropped_and_a_wish_before_it_stays(reply: str, sent: str) -> None:
    # "... Best, Juniper Outfitters Customer Care" in a chat: the customer knows whom they
    # are chatting with.
    assert chat_ready(reply, mid_conversation=False) == sent
    assert chat_ready(reply, mid_conversation=True) == sent


@pytest.mark.parametrize(
    "reply",
    [
        # A last line that names something after what is no valediction: the answer.
        "Our pick for wet trails:\nStormline Rain Jacket",
        f"{ASK}\n\nYou'll want the\nRidgeline Hiking Boots",
        # A signature that says how to reach someone carries that.
        f"{ASK}\n\nThanks,\nReturns Team: returns@juniperoutfitters.example",
        # Lower case after the valediction: a sentence, not a name.
        f"{ASK}\n\nBest,\nthe returns desk calls back within a day",
        # Only a sign-off: nothing would be left.
        "Best,\nJuniper Outfitters Customer Care",
    ],
)
def test_what_is_not_a_business_signature_stays(reply: str) -> None:
    assert chat_ready(reply, mid_conversation=True) == reply


@pytest.mark.parametrize(
    ("reply", "sent"),
    [
        (f"{ASK}\n\nAnything else, just reply here.", ASK),
        (f"{ASK}\n\nLet me know if there's anything else I can do.\n\nKind regards,\n[NAME]", ASK),
        (f"{ASK}\n\nHope this helps!", ASK),
        (f"{ASK}\n\nHope this helps! Let me know if you have any other questions.", ASK),
        (f"{ASK}\nFeel free to reach out if you have any other questions.", ASK),
        (
            f"{ASK}\n\nAnything else, just reply here.\n\nHappy trails!\nJuniper Outfitters",
            f"{ASK}\n\nHappy trails!",
        ),
    ],
)
def test_a_closing_offer_of_more_help_is_dropped(reply: str, sent: str) -> None:
    assert chat_ready(reply, mid_conversation=False) == sent


@pytest.mark.parametrize(
    "reply",
    [
        # A question: chat agents ask it too, and the customer may answer it.
        f"{ASK}\n\nAnything else I can help with?",
        # The offer as the last sentence of a line that says something: the chat logs' own.
        "Refunds take 5-7 business days (KB-REF-01). Let me know if you have any other questions!",
        # It tells the customer what to do and what follows.
        f"{ASK}\n\nIf it hasn't arrived in 48 hours, just reply here and we'll open a claim.",
        # It asks for something.
        f"{ASK}\n\nLet me know which size you'd like.",
        # Not at the close.
        f"Let me know if there's anything else I can do.\n\n{ASK}",
        # Nothing else to send.
        "Hope this helps!",
    ],
)
def test_what_is_not_only_a_closing_offer_stays(reply: str) -> None:
    assert chat_ready(reply, mid_conversation=False) == reply


@pytest.mark.parametrize(
    ("reply", "first", "later"),
    [
        (f"Hi,\n\nThank you for your message. {ASK}", f"Hi,\n\n{ASK}", ASK),
        (f"Thank you for your e-mail.\n\n{ASK}", ASK, ASK),
        (f"Hi there! Thanks for waiting! {ASK}", f"Hi there! {ASK}", ASK),
        (f"Thanks for your patience! {ASK}", ASK, ASK),
        (f"Hello, thank you for your message. {ASK}", f"Hello! {ASK}", ASK),
        # Thanks for reaching out is said as a conversation starts, in chats too.
        (
            f"Hi,\n\nThanks for reaching out to Juniper Outfitters. {ASK}",
            f"Hi,\n\nThanks for reaching out to Juniper Outfitters. {ASK}",
            ASK,
        ),
        (f"Hi, thanks for reaching out. {ASK}", f"Hi, thanks for reaching out. {ASK}", ASK),
        (
            f"Thanks for getting in touch! Thanks for your patience! {ASK}",
            f"Thanks for getting in touch! {ASK}",
            ASK,
        ),
        # The business's name ends at its sentence: the answer after it stays.
        (
            "Thanks for reaching out to Juniper Outfitters. Yes! We rent tents (KB-RNT-01).",
            "Thanks for reaching out to Juniper Outfitters. Yes! We rent tents (KB-RNT-01).",
            "Yes! We rent tents (KB-RNT-01).",
        ),
    ],
)
def test_an_opening_thanks_for_the_message_or_for_waiting_is_dropped(
    reply: str, first: str, later: str
) -> None:
    assert chat_ready(reply, mid_conversation=False) == first
    assert chat_ready(reply, mid_conversation=True) == later


@pytest.mark.parametrize(
    "reply",
    [
        # Thanks for something the customer did that the answer is about.
        f"Thanks for your question about sizes: {ASK}",
        f"Thanks for your interest! {ASK}",
        f"Thanks for checking in. {ASK}",
        # Not an opening.
        f"{ASK} Thank you for your patience.",
        # Nothing else to send.
        "Thank you for your message.",
    ],
)
def test_what_is_not_an_opening_thanks_stays(reply: str) -> None:
    assert chat_ready(reply, mid_conversation=True) == reply


def test_the_forms_dropped_are_told_by_kind() -> None:
    reply = (
        "Hi,\n\nThank you for your message. Refunds take 5-7 business days (KB-REF-01).\n\n"
        "If you have any other questions, just reply to this email.\n\n"
        "Anything else, just reply here.\n\nBest,\nJuniper Outfitters Customer Care"
    )
    first = chat_ready_reply(reply, mid_conversation=False)
    assert first.text == "Hi,\n\nRefunds take 5-7 business days (KB-REF-01)."
    forms = (SIGNATURE, VALEDICTION, EMAIL_INVITATION, CLOSING_OFFER, "thanks for the message")
    assert first.dropped == forms
    later = chat_ready_reply(reply, mid_conversation=True)
    assert later.text == "Refunds take 5-7 business days (KB-REF-01)."
    assert later.dropped == (*forms, SALUTATION)
    assert chat_ready_reply(ASK, mid_conversation=True).dropped == ()


def test_an_email_reply_becomes_a_chat_reply_with_its_facts_intact() -> None:
    reply = (
        "Hello,\n\nSorry about that! Refunds reach your card within 5-7 business days; the"
        " details are at https://help.example.com/articles/refunds (KB-REF-01).\n\n"
        "If you have any other questions, just reply to this email.\n\nKind regards,\n[NAME]"
    )
    body = (
        "Sorry about that! Refunds reach your card within 5-7 business days; the details are"
        " at https://help.example.com/articles/refunds (KB-REF-01)."
    )
    assert chat_ready(reply, mid_conversation=False) == f"Hello,\n\n{body}"
    assert chat_ready(reply, mid_conversation=True) == body


@pytest.mark.parametrize(
    ("reply", "first", "later"),
    [
        # A greeting of the placeholder greets no one; mid-conversation it goes, as any.
        (f"Hi [NAME],\n\n{ASK}\n\nAll the best,\n[NAME]", f"Hi,\n\n{ASK}", ASK),
        (f"Dear [NAME],\n\n{ASK}", f"Dear customer,\n\n{ASK}", ASK),
        (f"Hello [NAME]! {ASK}", f"Hello! {ASK}", ASK),
        ("Hi [NAME]!", "Hi!", None),  # a greeting alone stays a greeting
        # The placeholder spoken to.
        ("[NAME], that qualifies. See KB-PM-01.", "That qualifies. See KB-PM-01.", None),
        ("Thanks so much, [NAME]! See KB-PM-01.", "Thanks so much! See KB-PM-01.", None),
        # An agent introducing themself: the bot has no name to give.
        (
            "Thank you for calling Juniper Outfitters, this is [NAME]. How can I help you today?",
            "Thank you for calling Juniper Outfitters. How can I help you today?",
            None,
        ),
        (
            "Hi, thanks for calling Juniper Outfitters. My name's [NAME], what can I do for you?",
            "Hi, thanks for calling Juniper Outfitters. What can I do for you?",
            None,
        ),
        (
            "Juniper Outfitters customer care, [NAME] speaking — how can I help?",
            "Juniper Outfitters customer care — how can I help?",
            None,
        ),
        (f"Hello! This is [NAME]. {ASK}", f"Hello! {ASK}", ASK),
    ],
)
def test_a_generated_reply_addresses_and_introduces_no_one_by_the_placeholder(
    reply: str, first: str, later: str | None
) -> None:
    assert generator_ready(reply, mid_conversation=False) == first
    assert generator_ready(reply, mid_conversation=True) == (later or first)


@pytest.mark.parametrize(
    "reply",
    [
        # A person mentioned: without them the sentence would say something else.
        "My colleague [NAME] from the returns team will call you tomorrow (KB-RET-02).",
        "Hi, I'm [NAME] from the returns team. The label is on its way.",
        # A product the scrubber took for a name: its words stay as the copy sends them.
        "The Ridgeline Hiking [NAME] and [NAME] Mid GTX Boots run about half a size small.",
    ],
)
def test_a_placeholder_that_is_no_address_stays_in_a_generated_reply(reply: str) -> None:
    assert generator_ready(reply, mid_conversation=False) == reply


def test_a_copied_reply_keeps_its_placeholder_greeting_as_before() -> None:
    # Only the generator's replies (and what it learns) lose it; the copy path is unchanged.
    assert chat_ready(f"Hi [NAME],\n\n{ASK}", mid_conversation=False) == f"Hi [NAME],\n\n{ASK}"
