"""Small embedder-tuning runs: their config and logs."""

from __future__ import annotations

from retrieval.config import TuningConfig
from tests.support.corpus import exchange

# Eight answers, each asked eight ways; replies differ in greeting and sign-off only.
TOPICS = {
    "KB-2001 Returns are free within 30 days: print the label from your account.": [
        "how do I return my boots",
        "can I send back a jacket that doesn't fit",
        "what is your return policy",
        "I want to return an item",
        "return label please",
        "is returning free",
        "how many days do I have to return something",
        "send back an order",
    ],
    "KB-2002 Gift cards never expire and work online and in stores.": [
        "do gift cards expire",
        "is there an expiry date on giftcards",
        "can I use a gift card in the shop",
        "gift card validity",
        "my gift card is two years old, still good?",
        "do giftcards run out",
        "can gift cards be used online",
        "how long is a gift card valid",
    ],
    "KB-2003 Standard shipping takes 3 to 5 business days.": [
        "how long does shipping take",
        "when will my order arrive",
        "delivery time for standard shipping",
        "how many days for delivery",
        "shipping duration",
        "how fast do you ship",
        "when does a parcel usually arrive",
        "expected delivery time",
    ],
    "KB-2004 You can change your delivery address until the order ships.": [
        "can I change my shipping address",
        "wrong address on my order",
        "update delivery address",
        "I moved, change the address of my order",
        "edit the address on an order",
        "my order has an old address",
        "fix the delivery address",
        "ship to a different address",
    ],
    "KB-2005 Reset your password from the sign-in page with 'Forgot password'.": [
        "I forgot my password",
        "can't log in",
        "reset my password",
        "how do I change my password",
        "locked out of my account",
        "password not working",
        "sign in problem",
        "lost my login",
    ],
    "KB-2006 We ship to the EU, the UK, Canada and the US.": [
        "do you ship to Canada",
        "which countries do you deliver to",
        "international shipping?",
        "can you send to the UK",
        "do you deliver to Germany",
        "shipping abroad",
        "can I order from France",
        "do you ship overseas",
    ],
    "KB-2007 Our stores open 9am to 8pm Monday to Saturday.": [
        "what are your opening hours",
        "when is the store open",
        "are you open on Saturday",
        "shop hours",
        "what time do you close",
        "opening times of the store",
        "when do you open in the morning",
        "store schedule",
    ],
    "KB-2008 Warranty covers manufacturing defects for two years.": [
        "is there a warranty",
        "my tent broke after a year",
        "how long is the guarantee",
        "warranty on jackets",
        "defective product coverage",
        "zip broke, is it covered",
        "what does the warranty cover",
        "guarantee period",
    ],
}


GREETINGS = ["Hi Anna, ", "Hello Bob! ", "Hey there. ", ""]


def tuning_logs() -> list[dict[str, object]]:
    logs = []
    for t, (answer, questions) in enumerate(TOPICS.items()):
        for q, question in enumerate(questions):
            reply = GREETINGS[q % len(GREETINGS)] + answer
            logs.append(exchange(f"c-{t}-{q}", question, reply))
    return logs


def small_config(**overrides: object) -> TuningConfig:
    values: dict[str, object] = {
        "batch_size": 8,
        "min_budget_s": 0.0,
        "min_messages": 2,
        "validation_share": 0.15,
        "held_out_topic_share": 0.125,
        "eval_every_share": 0.5,
        "learning_rate": 5e-5,
    }
    values.update(overrides)
    return TuningConfig(**values)  # type: ignore[arg-type]
