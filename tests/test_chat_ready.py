"""A copied past reply reads as a chat reply, not as the end of someone else's e-mail
(retrieval.chat_ready): a sign-off whose name was scrubbed, an invitation to answer by
e-mail and, mid-conversation, a fresh salutation are dropped; everything that says
something stays as it was."""

from __future__ import annotations

import pytest

from retrieval.chat_ready import chat_ready, generator_ready

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
        # A signature that was kept: the business signs, and that reads fine in a chat.
        f"{ASK}\n\nBest,\nThe Support Team",
        f"{ASK}\n\nKind regards,\nCustomer Care",
        f"{ASK}\n\nHappy trails!\nThe Outfitters",
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
            f"{ASK}\n\nThanks,\nThe Support Team",
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
        f"{ASK}\n\nAnything else, just reply here.",
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
        f"Hi, thanks for reaching out. {ASK}",  # the rest of its sentence would need recasing
        "Hello Kitty backpacks are back in stock; see KB-STK-02.",
        f"Hey, that's odd. {ASK}",
        # Only a salutation: nothing would be left.
        "Hi there!",
    ],
)
def test_what_is_not_a_bare_salutation_stays_mid_conversation(reply: str) -> None:
    assert chat_ready(reply, mid_conversation=True) == reply


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
