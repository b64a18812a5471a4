#!/usr/bin/env python3
"""Deterministic generator for the Juniper Outfitters sample support corpus.

Usage::

    python3 data/generate_corpus.py            # (re)write everything under data/sample/
    python3 data/generate_corpus.py --verify   # re-read the output and print statistics
    python3 data/generate_corpus.py --policy-table   # markdown policy sheet for data/README.md

Standard library only.  Every conversation gets its own RNG seeded from its id,
so regenerating is byte-identical and adding conversations (raising
``N_CONVERSATIONS``) never changes the existing ones.  The eval split is a
seeded hash of the id alone, so it is fixed as well.

All personal data in the output (emails, phone numbers, card numbers, IBANs) is
fake and present on purpose, so the PII scrubber has something to catch.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import shutil
import sys
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus_content import (
    AGENT_CHAT_GREETINGS,
    AGENT_EMAIL_GREETINGS,
    AGENT_EMAIL_OPENERS,
    AGENT_GENERIC_GREETINGS,
    AGENT_OFFERS,
    AGENT_PHONE_PREFIXES,
    AGENT_PHONE_PROBLEM_PREFIXES,
    AGENT_PHONE_WELCOME,
    AGENT_SIGNATURES,
    AGENT_WELCOME,
    AGENTS,
    ANGRY_EMPATHY,
    ANGRY_PREFIXES,
    ANGRY_PROBLEM_SUFFIXES,
    ANGRY_SUFFIXES,
    ANGRY_THANKS,
    ARTICLES,
    BOOT_SIZES,
    CA_CITIES,
    CHAT_GREETINGS,
    CHAT_OFFERS,
    CITATIONS,
    CITATIONS_TWO,
    CLARIFY_ASKS,
    CLARIFY_REPLIES,
    COMPETITORS,
    CUSTOMER_THANKS,
    EMAIL_CLOSINGS,
    EMAIL_GREETINGS,
    ESCALATION,
    ESCALATIONS,
    EU_COUNTRIES,
    FAQ_ROWS,
    FILLER_LEAD,
    FIRST_NAMES,
    FOLLOWUP_PREFIXES,
    JACKET_SIZES,
    KIND_NOUN,
    KIND_PLURAL,
    LAST_NAMES,
    LOWERCASE_AFTER_FILLER,
    MISSPELLINGS,
    ORDER_LINES,
    OUT_OF_SCOPE,
    PHONE_CITATIONS,
    PHONE_CLARIFY_ASKS,
    PHONE_FOLLOWUP_PREFIXES,
    PHONE_OFFERS,
    PHONE_OPENERS,
    PII_AGENT_NOTES,
    PII_LINES,
    POLITE_EXTRAS,
    PRODUCTS,
    PROMO_CODES,
    SHOUT_WORDS,
    TOPICS,
    TRIP_EXTRAS,
    UNHAPPY_REPLIES,
    US_STATES,
    WEEKDAYS,
    Article,
    FollowUp,
    Topic,
    Variants,
)

SEED = "juniper-corpus-v1"
EVAL_SALT = "juniper-eval-v1"
EVAL_FRACTION = 0.12
N_CONVERSATIONS = 900
N_SLACK_THREADS = 30
PII_RATE = 0.17  # chance that a conversation volunteers PII (phone verification adds more)
START = datetime(2025, 9, 29, 6, 0, tzinfo=UTC)
GAP = timedelta(seconds=19_000)  # average spacing between conversations (ids are chronological)

OUT_DIR = Path(__file__).resolve().parent / "sample"

Message = dict[str, str]


# --------------------------------------------------------------------------
# Fake PII with valid checksums
# --------------------------------------------------------------------------


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) < 12:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_check_digit(partial: str) -> str:
    for check in "0123456789":
        if luhn_valid(partial + check):
            return check
    raise AssertionError("unreachable")


def make_card(rng: random.Random) -> str:
    """A Luhn-valid test-range card number (Visa 411111, Mastercard 555555, Amex 378282)."""
    prefix, length, groups = rng.choice(
        (
            ("411111", 16, (4, 4, 4, 4)),
            ("411111", 16, (4, 4, 4, 4)),
            ("555555", 16, (4, 4, 4, 4)),
            ("378282", 15, (4, 6, 5)),
        )
    )
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    number = body + luhn_check_digit(body)
    assert luhn_valid(number)
    sep = rng.choice((" ", " ", "-", ""))
    parts, pos = [], 0
    for g in groups:
        parts.append(number[pos : pos + g])
        pos += g
    return sep.join(parts)


def iban_valid(iban: str) -> bool:
    compact = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", compact):
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return int(numeric) % 97 == 1


def random_digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def make_iban(rng: random.Random) -> str:
    """An IBAN with a correct ISO 13616 mod-97 checksum (DE, AT, NL or IE layout)."""

    country = rng.choice(("DE", "DE", "AT", "NL", "IE"))
    if country == "DE":
        b = random_digits(rng, 8) + random_digits(rng, 10)  # bank code + account
    elif country == "AT":
        b = random_digits(rng, 5) + random_digits(rng, 11)
    elif country == "NL":
        b = rng.choice(("ABNA", "INGB", "RABO", "TRIO")) + random_digits(rng, 10)
    else:
        b = rng.choice(("AIBK", "BOFI")) + random_digits(rng, 6) + random_digits(rng, 8)
    numeric = "".join(str(int(c, 36)) for c in b + country + "00")
    check = 98 - int(numeric) % 97
    iban = f"{country}{check:02d}{b}"
    assert iban_valid(iban)
    if rng.random() < 0.7:
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


def ascii_slug(text: str) -> str:
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", norm.lower())


def make_email(rng: random.Random, first: str, last: str) -> str:
    f, s = ascii_slug(first), ascii_slug(last)
    local = rng.choice(
        (
            f"{f}.{s[0]}",
            f"{f}{s}",
            f"{f}_{s}{rng.randint(1, 99)}",
            f"{f[0]}.{s}",
            f"{f}.{s}",
            f"{f}{rng.randint(70, 99)}",
        )
    )
    return f"{local}@{rng.choice(('example.com', 'example.com', 'example.org', 'example.net'))}"


def make_phone(rng: random.Random, region: str) -> str:
    n = f"01{rng.randint(0, 99):02d}"  # 555-0100..0199 is reserved for fiction
    if region == "US":
        area = rng.choice(("415", "212", "303", "512", "617", "206", "503", "312"))
        return rng.choice(
            (
                f"+1 {area}-555-{n}",
                f"({area}) 555-{n}",
                f"{area}.555.{n}",
                f"{area}-555-{n}",
                f"+1 ({area}) 555-{n}",
                f"{area}555{n}",
            )
        )
    if region == "CA":
        area = rng.choice(("416", "604", "403", "514", "613", "902"))
        return rng.choice((f"+1 {area}-555-{n}", f"({area}) 555-{n}", f"{area} 555 {n}"))

    def d(k: int) -> str:
        return random_digits(rng, k)

    return rng.choice(
        (
            f"+49 30 {d(4)} {d(4)}",
            f"+49 151 {d(8)}",
            f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
            f"+31 20 {d(3)} {d(4)}",
            f"+44 20 7946 0{d(3)}",
            f"+353 1 {d(3)} {d(4)}",
            f"+43 1 {d(7)}",
        )
    )


# --------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------


def pick(variants: Variants, kind: str, rng: random.Random) -> str:
    if isinstance(variants, dict):
        options = variants.get(kind, ()) + variants.get("*", ())
    else:
        options = variants
    return rng.choice(options)


def options_of(variants: Variants) -> list[str]:
    if isinstance(variants, dict):
        return [v for opts in variants.values() for v in opts]
    return list(variants)


def article_for(ref: str | dict[str, str] | None, kind: str) -> Article | None:
    if ref is None:
        return None
    if isinstance(ref, dict):
        return ARTICLES[ref[kind]]
    return ARTICLES[ref]


SENTINEL = re.compile(r"\u27e6(\d+)\u27e7")


def add_typos(text: str, rng: random.Random, count: int) -> str:
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if w.isalpha() and len(w) >= 5]
    rng.shuffle(candidates)
    for i in candidates[:count]:
        w = words[i]
        if w.lower() in MISSPELLINGS:
            words[i] = MISSPELLINGS[w.lower()]
            continue
        j = rng.randrange(1, len(w) - 2)
        op = rng.choice(("swap", "drop", "double"))
        if op == "swap":
            w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
        elif op == "drop":
            w = w[:j] + w[j + 1 :]
        else:
            w = w[:j] + w[j] + w[j:]
        words[i] = w
    return " ".join(words)


def sloppify(text: str, rng: random.Random) -> str:
    """Lowercase, drop apostrophes, add typos and texting shortcuts (never touches sentinels)."""
    if rng.random() < 0.75:
        text = text.lower()
    if rng.random() < 0.6:
        text = text.replace("'", "").replace("\u2019", "")
    if rng.random() < 0.25:
        text = re.sub(r"\byou\b", "u", text)
    if rng.random() < 0.35:
        text = re.sub(r"\b[Pp]lease\b", "pls", text)
    text = re.sub(r"\b[Tt]hanks\b", "thx", text) if rng.random() < 0.3 else text
    text = add_typos(text, rng, rng.randint(1, 3))
    if rng.random() < 0.5:
        text = text.rstrip(".")
    return text


def angrify(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    shout = [i for i, w in enumerate(words) if w.strip(".,!?").lower() in SHOUT_WORDS]
    for i in rng.sample(shout, min(len(shout), rng.randint(1, 2))):
        words[i] = words[i].upper()
    text = " ".join(words)
    if rng.random() < 0.6:
        text = re.sub(r"\?(\s|$)", lambda m: rng.choice(("??", "?!", "???")) + m.group(1), text)
    if rng.random() < 0.5:
        text = re.sub(r"\.(\s|$)", lambda m: rng.choice(("!", "!!", ".")) + m.group(1), text)
    return text


def spoken(text: str, rng: random.Random) -> str:
    """Light disfluencies for phone transcripts."""
    if rng.random() < 0.5:
        text = text.replace(", ", rng.choice((", um, ", ", uh, ", ", like, ")), 1)
    return text


def wrap_slack_urls(text: str) -> str:
    return re.sub(r"https?://[^\s<>()]*[^\s<>().,;:!?'\"]", lambda m: f"<{m.group(0)}>", text)


# --------------------------------------------------------------------------
# Conversation builder
# --------------------------------------------------------------------------


@dataclass
class Customer:
    first: str
    last: str
    region: str  # "US", "CA" or "EU"
    angry: bool
    sloppy: bool
    polite: bool
    pii: list[str] = field(default_factory=list)  # PII types still to volunteer
    shared: set[str] = field(default_factory=set)  # PII types already volunteered


@dataclass
class Builder:
    """Builds one conversation with its own RNG.

    ``channel`` is ``email``, ``chat``, ``phone-transcript`` or ``slack``.
    """

    rng: random.Random
    topic: Topic
    channel: str
    customer: Customer
    agent: str
    kind: str
    ctx: dict[str, str]
    messages: list[Message] = field(default_factory=list)
    pending_notes: list[str] = field(default_factory=list)
    name_known: bool = False
    slack_mention: str | None = None

    # -- customer side ----------------------------------------------------

    def fill_customer(self, template: str, extra_lines: list[str] | None = None) -> str:
        """Fill a customer template, apply the customer's style, then restore protected values."""
        protected: list[str] = []

        def protect(value: str) -> str:
            protected.append(value)
            return f"\u27e6{len(protected) - 1}\u27e7"

        values = dict(self.ctx)
        values["order"] = protect(self.ctx["order"])
        for key in ("email", "phone", "card", "iban"):
            values[key] = protect(self.ctx[key])
        text = template.format(**values)
        if extra_lines:
            text = " ".join([text] + [line.format(**values) for line in extra_lines])
        if self.customer.sloppy and self.channel != "phone-transcript":
            text = sloppify(text, self.rng)
        if self.channel == "phone-transcript":
            text = spoken(text, self.rng)
        text = SENTINEL.sub(lambda m: protected[int(m.group(1))], text)
        return text

    def pii_lines(self, max_items: int = 2) -> list[str]:
        lines: list[str] = []
        while self.customer.pii and len(lines) < max_items:
            kind = self.customer.pii.pop(0)
            lines.append(self.rng.choice(PII_LINES[kind]))
            self.customer.shared.add(kind)
            if kind in PII_AGENT_NOTES:
                self.pending_notes.append(self.rng.choice(PII_AGENT_NOTES[kind]))
        return lines

    def add_customer(self, text: str) -> None:
        self.messages.append({"role": "customer", "text": text})

    def opening(self, side: FollowUp | None) -> bool:
        """Adds the first customer message; returns True if it mentions the order number."""
        rng, cust = self.rng, self.customer
        parts: list[str] = []
        if cust.angry and rng.random() < 0.5:
            parts.append(rng.choice(ANGRY_PREFIXES))
        situation = pick(self.topic.situations, self.kind, rng)
        parts.append(situation)
        if self.topic.needs_order and rng.random() < 0.18:
            parts.append(rng.choice(TRIP_EXTRAS))
        asks = list(self.topic.asks)
        rng.shuffle(asks)
        if not (situation.endswith("?") and rng.random() < 0.65):
            parts.append(asks[0])
            if rng.random() < 0.2:
                parts.append(asks[1])
        if side is not None:
            parts.append(rng.choice(side.inline))
        mentions_order = "{order}" in situation
        if self.topic.needs_order and not mentions_order and rng.random() < 0.45:
            parts.append(rng.choice(ORDER_LINES))
            mentions_order = True
        if cust.polite and not cust.angry and rng.random() < 0.5:
            parts.append(rng.choice(POLITE_EXTRAS))
        if cust.angry and rng.random() < 0.6:
            suffixes = ANGRY_SUFFIXES + (ANGRY_PROBLEM_SUFFIXES if self.topic.problem else ())
            parts.append(rng.choice(suffixes))
        pii = (
            self.pii_lines()
            if (rng.random() < 0.6 or not self.topic.needs_order or mentions_order)
            else []
        )

        body = " ".join(parts)
        if cust.angry:
            body = angrify(body, rng)
        body = self.fill_customer(body, pii)

        if self.channel == "email":
            greeting = rng.choice(EMAIL_GREETINGS)
            closing = rng.choice(EMAIL_CLOSINGS).format(first=cust.first, last=cust.last)
            self.name_known = cust.first in closing
            text = "\n\n".join(p for p in (greeting, body, closing) if p)
            self.add_customer(text)
        elif self.channel == "phone-transcript":
            self.name_known = rng.random() < 0.4
            prefix = (
                rng.choice(("", "Yeah, hi. ", "Hi. ")) if cust.angry else rng.choice(PHONE_OPENERS)
            )
            if prefix.endswith(("So ", ", ")) and body.split(" ", 1)[0] in LOWERCASE_AFTER_FILLER:
                body = body[0].lower() + body[1:]
            self.add_customer(prefix + body)
        else:  # chat / slack
            self.name_known = self.channel == "chat" and rng.random() < 0.6
            greeting = rng.choice(CHAT_GREETINGS)
            if greeting and cust.sloppy:
                greeting = greeting.lower()
            text = f"{greeting} {body}".strip()
            if self.channel == "chat" and rng.random() < 0.07 and len(parts) > 2:
                # Some chat users hit enter mid-thought: two consecutive customer messages.
                cut = text.find(". ")
                if 0 < cut < len(text) - 3:
                    self.add_customer(text[: cut + 1])
                    text = text[cut + 2 :]
            self.add_customer(text)
        return mentions_order

    # -- agent side -------------------------------------------------------

    def citation(self, articles: list[Article]) -> str:
        if not articles:
            return ""
        a = articles[0]
        if self.channel == "phone-transcript":
            return self.rng.choice(PHONE_CITATIONS).format(code=a.code)
        if len(articles) > 1:
            b = articles[1]
            return self.rng.choice(CITATIONS_TWO).format(
                code=a.code, url=a.url, code2=b.code, url2=b.url
            )
        return self.rng.choice(CITATIONS).format(code=a.code, url=a.url, title=a.title)

    def add_agent(
        self,
        body: str,
        articles: list[Article],
        first_reply: bool,
        cite_prob: float = 0.88,
        question: bool = False,
    ) -> None:
        """Add an agent message.

        ``question`` says whether the customer's last message was a question.
        """
        rng = self.rng
        body = body.format(**self.ctx)
        cite = self.citation(articles) if rng.random() < cite_prob else ""
        notes = " ".join(
            n for n in self.pending_notes if not ("card" in n and "card details" in body)
        )
        self.pending_notes.clear()
        empathy = rng.choice(ANGRY_EMPATHY) if (self.customer.angry and first_reply) else ""
        if empathy:
            body = FILLER_LEAD.sub("", body, count=1)
        first = self.customer.first

        if self.channel == "email":
            if self.name_known:
                greeting = rng.choice(AGENT_EMAIL_GREETINGS).format(first=first)
            else:
                greeting = rng.choice(AGENT_GENERIC_GREETINGS)
            opener = rng.choice(AGENT_EMAIL_OPENERS) if first_reply and not empathy else ""
            lead = " ".join(p for p in (opener, empathy) if p)
            paragraphs = [
                greeting,
                f"{lead} {body}".strip(),
                notes,
                cite,
                rng.choice(AGENT_OFFERS) if first_reply else "",
                rng.choice(AGENT_SIGNATURES).format(agent=self.agent),
            ]
            text = "\n\n".join(p for p in paragraphs if p)
        elif self.channel == "phone-transcript":
            if not first_reply:
                prefix = rng.choice(PHONE_FOLLOWUP_PREFIXES)
            elif self.topic.problem or empathy:
                prefix = rng.choice(AGENT_PHONE_PROBLEM_PREFIXES)
            else:
                prefix = rng.choice(AGENT_PHONE_PREFIXES)
            offer = rng.choice(PHONE_OFFERS) if rng.random() < 0.5 else ""
            text = " ".join(p for p in (empathy, prefix, body, notes, cite, offer) if p)
        else:  # chat / slack
            greeting = ""
            already_talking = any(m["role"] == "agent" for m in self.messages)
            if first_reply and not already_talking:
                if self.channel == "slack" and self.slack_mention and rng.random() < 0.4:
                    greeting = f"Hi {self.slack_mention}!"
                else:
                    greeting = rng.choice(AGENT_CHAT_GREETINGS)
                    if "{first}" in greeting and not self.name_known:
                        greeting = "Hi there!"
                    greeting = greeting.format(first=first)
            elif question and rng.random() < 0.3:
                greeting = rng.choice(FOLLOWUP_PREFIXES)
            offer = rng.choice(CHAT_OFFERS) if first_reply else ""
            text = " ".join(p for p in (greeting, empathy, body, notes, cite, offer) if p)
            if self.channel == "slack":
                text = wrap_slack_urls(text)
        self.messages.append({"role": "agent", "text": text})

    def add_agent_plain(self, text: str) -> None:
        """A short agent message with no facts; emails still get a greeting and signature."""
        if self.channel == "email":
            if self.name_known:
                greeting = self.rng.choice(AGENT_EMAIL_GREETINGS).format(first=self.customer.first)
            else:
                greeting = self.rng.choice(AGENT_GENERIC_GREETINGS)
            signature = self.rng.choice(AGENT_SIGNATURES).format(agent=self.agent)
            text = f"{greeting}\n\n{text}\n\n{signature}"
        self.messages.append({"role": "agent", "text": text})

    def main_articles(self) -> list[Article]:
        topic = self.topic
        if self.kind in topic.kind_articles:
            return [ARTICLES[topic.kind_articles[self.kind]]]
        arts = [ARTICLES[topic.articles[0]]]
        if len(topic.articles) > 1 and self.rng.random() < 0.25:
            arts.append(ARTICLES[topic.articles[1]])
        return arts

    # -- whole conversation --------------------------------------------------

    def build(self) -> bool:
        """Generate all messages; returns the ``resolved`` flag."""
        rng, topic, cust = self.rng, self.topic, self.customer
        if self.channel == "phone-transcript":
            self.messages.append(
                {"role": "agent", "text": rng.choice(AGENT_PHONE_WELCOME).format(agent=self.agent)}
            )

        followups = list(topic.followups)
        side = None
        inline_ok = [f for f in followups if f.inline]
        if inline_ok and rng.random() < 0.12:
            side = rng.choice(inline_ok)
            followups.remove(side)

        mentions_order = self.opening(side)
        customer_turns = 1

        # Clarifying question: the agent needs the order number first.
        if topic.needs_order and not mentions_order and rng.random() < 0.85:
            if self.channel == "phone-transcript":
                ask = rng.choice(PHONE_CLARIFY_ASKS)
                if "email address" in ask and rng.random() < 0.6 and "email" not in cust.shared:
                    cust.pii.insert(0, "email")
            else:
                ask = rng.choice(CLARIFY_ASKS)
            if self.slack_mention and rng.random() < 0.3:
                ask = f"{self.slack_mention} {ask}"
            self.add_agent_plain(ask)
            reply = rng.choice(CLARIFY_REPLIES)
            self.add_customer(self.fill_customer(reply, self.pii_lines(1)))
            customer_turns += 1

        body = pick(topic.answers, self.kind, rng)
        articles = self.main_articles()
        if side is not None:
            body = f"{body} {pick(side.agent, self.kind, rng)}"
            side_article = article_for(side.article, self.kind)
            if side_article and side_article not in articles and len(articles) < 2:
                articles.append(side_article)
        self.add_agent(body, articles, first_reply=True)

        # Dependent follow-up questions.
        n_follow = min(len(followups), rng.choices((0, 1, 2), weights=(58, 31, 11))[0])
        chosen = sorted(rng.sample(range(len(followups)), n_follow))  # keep the authored order
        for fu in (followups[i] for i in chosen):
            if customer_turns >= 4:
                break
            text = pick(fu.customer, self.kind, rng)
            if cust.angry and rng.random() < 0.4:
                text = angrify(text, rng)
            extra = self.pii_lines(1) if rng.random() < 0.5 else []
            if self.channel == "email" and rng.random() < 0.5:
                text = f"Hi {self.agent},\n\n{self.fill_customer(text, extra)}\n\n{cust.first}"
            else:
                text = self.fill_customer(text, extra)
            self.add_customer(text)
            customer_turns += 1
            art = article_for(fu.article, self.kind)
            self.add_agent(
                pick(fu.agent, self.kind, rng),
                [art] if art else [],
                first_reply=False,
                cite_prob=0.6,
                question=text.rstrip().endswith("?"),
            )

        # Resolution.
        resolved = rng.random() >= (0.25 if cust.angry else 0.07)
        if not resolved:
            if customer_turns < 4 and rng.random() < 0.6:
                self.add_customer(self.fill_customer(rng.choice(UNHAPPY_REPLIES)))
                self.add_agent_plain(rng.choice(ESCALATIONS))
        elif customer_turns < 4 and rng.random() < 0.2:
            self.add_customer(rng.choice(ANGRY_THANKS if cust.angry else CUSTOMER_THANKS))
            if rng.random() < 0.7:
                self.add_agent_plain(rng.choice(AGENT_WELCOME))
        return resolved


def make_context(
    rng: random.Random, topic: Topic, customer: Customer
) -> tuple[str, dict[str, str]]:
    kind = rng.choice(topic.kinds)
    product = rng.choice(PRODUCTS[kind])
    others = [p for k, ps in PRODUCTS.items() if k != kind for p in ps]
    sizes = BOOT_SIZES if kind == "boots" else JACKET_SIZES
    i = rng.randrange(1, len(sizes) - 1)
    size, other = sizes[i], sizes[i + rng.choice((-1, 1))]
    order_num = f"JO-{rng.randint(100000, 999999)}"
    order = rng.choices(
        (order_num, f"#{order_num}", order_num.replace("-", ""), order_num.lower()),
        weights=(80, 8, 6, 6),
    )[0]
    ctx = {
        "order": order,
        "product": product,
        "other_product": rng.choice(others),
        "kind": KIND_NOUN[kind],
        "kinds": KIND_PLURAL[kind],
        "size": size,
        "other_size": other,
        "promo": rng.choice(PROMO_CODES),
        "competitor": rng.choice(COMPETITORS),
        "eu_country": rng.choice(EU_COUNTRIES),
        "ca_city": rng.choice(CA_CITIES),
        "us_state": rng.choice(US_STATES),
        "days": str(rng.randint(3, 12)),
        "weekday": rng.choice(WEEKDAYS),
        "email": make_email(rng, customer.first, customer.last),
        "phone": make_phone(rng, customer.region),
        "card": make_card(rng),
        "iban": make_iban(rng),
    }
    return kind, ctx


# Topics where a customer plausibly pastes a card number or bank details.
CARD_TOPICS = frozenset(
    {
        "payment-declined",
        "refund-status",
        "cancel-order",
        "order-status",
        "price-match",
        "promo-code",
        "membership-club",
        "gift-card",
        "returns-policy",
        "pre-order",
    }
)
REFUND_TOPICS = frozenset(
    {
        "returns-policy",
        "refund-status",
        "damaged-item",
        "wrong-item",
        "missing-item",
        "cancel-order",
        "price-match",
        "delayed-package",
        "package-marked-delivered",
        "membership-club",
    }
)


def make_customer(rng: random.Random, topic: Topic, channel: str) -> Customer:
    region = rng.choices(("US", "CA", "EU"), weights=(65, 15, 20))[0]
    angry = rng.random() < topic.angry_rate
    sloppy_rate = {"chat": 0.35, "slack": 0.3, "email": 0.15, "phone-transcript": 0.0}[channel]
    cust = Customer(
        first=rng.choice(FIRST_NAMES),
        last=rng.choice(LAST_NAMES),
        region=region,
        angry=angry,
        sloppy=rng.random() < sloppy_rate,
        polite=rng.random() < 0.35,
    )
    if rng.random() < PII_RATE:
        kinds = ["email", "phone"]
        weights = [40, 35]
        if topic.id in CARD_TOPICS:
            kinds.append("card")
            weights.append(35)
        if topic.id in REFUND_TOPICS:
            kinds.append("iban")
            weights.append(25)
        cust.pii.append(rng.choices(kinds, weights=weights)[0])
        if cust.pii[0] == "iban":
            cust.region = "EU"  # IBANs come from EU customers
        if rng.random() < 0.15:
            second = rng.choice([k for k in ("email", "phone") if k not in cust.pii])
            cust.pii.append(second)
    return cust


def csat_for(rng: random.Random, resolved: bool, angry: bool) -> int | None:
    if rng.random() < 0.4:
        return None
    if not resolved:
        return rng.choice((1, 1, 2, 2, 3))
    if angry:
        return rng.choice((2, 3, 3, 4, 5))
    return rng.choice((3, 4, 4, 5, 5, 5))


def generate_conversation(index: int) -> dict[str, Any]:
    conv_id = f"conv-{index:05d}"
    rng = random.Random(f"{SEED}|{conv_id}")
    topic = rng.choices(TOPICS, weights=[t.weight for t in TOPICS])[0]
    channel = rng.choices(("email", "chat", "phone-transcript"), weights=(35, 45, 20))[0]
    customer = make_customer(rng, topic, channel)
    kind, ctx = make_context(rng, topic, customer)
    builder = Builder(
        rng=rng,
        topic=topic,
        channel=channel,
        customer=customer,
        agent=rng.choice(AGENTS),
        kind=kind,
        ctx=ctx,
    )
    resolved = builder.build()
    created = START + GAP * (index - 1) + timedelta(seconds=rng.randrange(int(GAP.total_seconds())))
    return {
        "id": conv_id,
        "channel": channel,
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "topic": topic.id,
        "messages": builder.messages,
        "resolved": resolved,
        "csat": csat_for(rng, resolved, customer.angry),
        "pii_types": sorted(customer.shared),
    }


def is_eval(conv_id: str) -> bool:
    """Fixed held-out split: depends only on the id, never on content or corpus size."""
    digest = hashlib.sha256(f"{EVAL_SALT}:{conv_id}".encode()).hexdigest()
    return int(digest[:8], 16) / 0x1_0000_0000 < EVAL_FRACTION


# --------------------------------------------------------------------------
# Slack export
# --------------------------------------------------------------------------

SLACK_TEAM = "T05JUNIPER"
SLACK_CHANNEL_ID = "C05SUPPORT1"
SLACK_AGENT_TITLE = "Support agent"


def slack_ts(moment: datetime, rng: random.Random) -> str:
    return f"{int(moment.timestamp())}.{rng.randrange(1_000_000):06d}"


def slack_user(uid: str, handle: str, real_name: str, agent: bool) -> dict[str, Any]:
    return {
        "id": uid,
        "team_id": SLACK_TEAM,
        "name": handle,
        "deleted": False,
        "real_name": real_name,
        "tz": "America/Los_Angeles" if agent else "America/New_York",
        "is_admin": False,
        "is_owner": False,
        "is_bot": False,
        "is_app_user": False,
        "is_restricted": not agent,
        "is_ultra_restricted": not agent,
        "profile": {
            "title": SLACK_AGENT_TITLE if agent else "",
            "real_name": real_name,
            "display_name": f"{real_name.split()[0]} (Juniper Support)"
            if agent
            else real_name.split()[0],
            "team": SLACK_TEAM,
        },
    }


def generate_slack() -> tuple[
    list[dict[str, Any]], list[dict[str, Any]], dict[str, list[dict[str, Any]]]
]:
    rng = random.Random(f"{SEED}|slack")
    agent_names = ("Priya", "Diego", "Keiko", "Sam")
    agent_lastnames = ("Raman", "Ortega", "Sato", "Whitfield")
    users: list[dict[str, Any]] = []
    agent_ids: dict[str, str] = {}
    for i, (first, last) in enumerate(zip(agent_names, agent_lastnames, strict=True), start=1):
        uid = f"U05AGT{i:04d}"
        agent_ids[first] = uid
        users.append(
            slack_user(uid, f"{first.lower()}.{last[0].lower()}", f"{first} {last}", agent=True)
        )
    customers: list[tuple[str, str, str]] = []
    names = rng.sample([(f, s) for f in FIRST_NAMES for s in LAST_NAMES], 18)
    for i, (first, last) in enumerate(names, start=1):
        uid = f"U06CUS{i:04d}"
        customers.append((uid, first, last))
        users.append(
            slack_user(
                uid, ascii_slug(first) + "." + ascii_slug(last)[:1], f"{first} {last}", agent=False
            )
        )

    topics = list(TOPICS)
    rng.shuffle(topics)
    days = [datetime(2026, 3, d, tzinfo=UTC) for d in (2, 3, 4, 5, 6, 9, 10, 11, 12, 13)]
    per_day: dict[str, list[dict[str, Any]]] = {}
    joined: set[str] = set()

    for n in range(N_SLACK_THREADS):
        topic = topics[n % len(topics)]
        day = days[n // 3]
        uid, first, last = customers[n % len(customers)]
        agent = rng.choice(agent_names)
        t_rng = random.Random(f"{SEED}|slack|{n}")
        cust = make_customer(t_rng, topic, "slack")
        cust.first, cust.last = first, last
        kind, ctx = make_context(t_rng, topic, cust)
        builder = Builder(
            rng=t_rng,
            topic=topic,
            channel="slack",
            customer=cust,
            agent=agent,
            kind=kind,
            ctx=ctx,
            slack_mention=f"<@{uid}>",
        )
        builder.build()

        moment = day + timedelta(hours=14 + (n % 3) * 2.5, minutes=rng.randrange(60))
        events: list[dict[str, Any]] = []
        if uid not in joined and rng.random() < 0.5:
            join_moment = moment - timedelta(minutes=rng.randint(2, 20))
            events.append(
                {
                    "type": "message",
                    "subtype": "channel_join",
                    "user": uid,
                    "text": f"<@{uid}> has joined the channel",
                    "ts": slack_ts(join_moment, rng),
                }
            )
        joined.add(uid)

        parent_ts = slack_ts(moment, rng)
        replies: list[dict[str, Any]] = []
        for msg in builder.messages[1:]:
            moment += timedelta(minutes=rng.randint(2, 40))
            user = agent_ids[agent] if msg["role"] == "agent" else uid
            replies.append(
                {
                    "type": "message",
                    "user": user,
                    "text": msg["text"],
                    "ts": slack_ts(moment, rng),
                    "client_msg_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "thread_ts": parent_ts,
                    "parent_user_id": uid,
                }
            )
        reply_users = sorted({r["user"] for r in replies})
        parent = {
            "type": "message",
            "user": uid,
            "text": builder.messages[0]["text"],
            "ts": parent_ts,
            "client_msg_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "thread_ts": parent_ts,
            "reply_count": len(replies),
            "reply_users_count": len(reply_users),
            "latest_reply": replies[-1]["ts"] if replies else parent_ts,
            "reply_users": reply_users,
            "replies": [{"user": r["user"], "ts": r["ts"]} for r in replies],
        }
        events.append(parent)
        events.extend(replies)
        for ev in events:
            date = datetime.fromtimestamp(float(ev["ts"]), tz=UTC).strftime("%Y-%m-%d")
            per_day.setdefault(date, []).append(ev)

    for evs in per_day.values():
        evs.sort(key=lambda e: float(e["ts"]))
    first_ts = min(float(e["ts"]) for evs in per_day.values() for e in evs)
    channels = [
        {
            "id": SLACK_CHANNEL_ID,
            "name": "support",
            "created": int(first_ts) - 86_400 * 30,
            "creator": agent_ids["Priya"],
            "is_archived": False,
            "is_general": False,
            "members": [u["id"] for u in users],
            "topic": {
                "value": "Ask the Juniper Outfitters support team anything — replies in threads",
                "creator": agent_ids["Priya"],
                "last_set": int(first_ts) - 86_400 * 30,
            },
            "purpose": {
                "value": "Customer support for Juniper Trail Club members and business customers",
                "creator": agent_ids["Priya"],
                "last_set": int(first_ts) - 86_400 * 30,
            },
        }
    ]
    return channels, users, per_day


# --------------------------------------------------------------------------
# Validation of the static content
# --------------------------------------------------------------------------

NUMBER = re.compile(r"\d+(?:\.\d+)?")
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def numbers_in(text: str) -> set[str]:
    return set(NUMBER.findall(PLACEHOLDER.sub("", text)))


def validate_content() -> None:
    """Every number an agent states must be in the facts of the article it cites."""
    escalation_numbers = numbers_in(ESCALATION)
    problems: list[str] = []

    def check(texts: list[str], article_codes: list[str], where: str) -> None:
        allowed = set(escalation_numbers)
        for code in article_codes:
            a = ARTICLES[code]
            allowed |= numbers_in(" ".join(a.facts) + " " + a.title + " " + a.code)
        for t in texts:
            extra = numbers_in(t) - allowed
            if extra:
                problems.append(
                    f"{where}: numbers {sorted(extra)} not in {article_codes}: {t[:80]}..."
                )
            for code in re.findall(r"KB-[A-Z0-9]+-\d\d", t):
                if code not in ARTICLES:
                    problems.append(f"{where}: unknown article {code}")

    for topic in TOPICS:
        if len(options_of(topic.situations)) < 6 or len(topic.asks) < 4:
            problems.append(f"{topic.id}: too few situations/asks")
        for code in topic.articles + tuple(topic.kind_articles.values()):
            if code not in ARTICLES:
                problems.append(f"{topic.id}: unknown article {code}")
        check(options_of(topic.answers), list(topic.articles), topic.id)
        for fu in topic.followups:
            refs = (
                fu.article
                if isinstance(fu.article, dict)
                else ({"*": fu.article} if fu.article else {})
            )
            check(options_of(fu.agent), list(refs.values()), f"{topic.id}/follow-up")
    for question, answer in FAQ_ROWS:
        check([answer], re.findall(r"KB-[A-Z0-9]+-\d\d", answer), f"faq '{question}'")
    if problems:
        raise SystemExit("content validation failed:\n" + "\n".join(problems))


# --------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------


def dump_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def dump_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=4) + "\n", encoding="utf-8")


def out_of_scope_rows() -> list[dict[str, Any]]:
    rng = random.Random(f"{SEED}|oos")
    rows = []
    for i, (category, question) in enumerate(OUT_OF_SCOPE, start=1):
        text = question
        roll = rng.random()
        if roll < 0.2:
            text = text.lower().rstrip("?.") + "?"
        elif roll < 0.35:
            text = f"{rng.choice(('Hi,', 'Hello!', 'hey'))} {text}"
        rows.append(
            {
                "id": f"oos-{i:03d}",
                "category": category,
                "messages": [{"role": "customer", "text": text}],
            }
        )
    return rows


def write_all(out_dir: Path = OUT_DIR) -> None:
    validate_content()
    out_dir.mkdir(parents=True, exist_ok=True)
    conversations = [generate_conversation(i) for i in range(1, N_CONVERSATIONS + 1)]
    dump_jsonl(out_dir / "conversations.jsonl", [c for c in conversations if not is_eval(c["id"])])
    dump_jsonl(out_dir / "eval.jsonl", [c for c in conversations if is_eval(c["id"])])
    dump_jsonl(out_dir / "out_of_scope.jsonl", out_of_scope_rows())

    with (out_dir / "faq.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("question", "answer"))
        writer.writerows(FAQ_ROWS)

    slack_dir = out_dir / "slack_export"
    if slack_dir.exists():
        shutil.rmtree(slack_dir)
    (slack_dir / "support").mkdir(parents=True)
    channels, users, per_day = generate_slack()
    dump_json(slack_dir / "channels.json", channels)
    dump_json(slack_dir / "users.json", users)
    for date in sorted(per_day):
        dump_json(slack_dir / "support" / f"{date}.json", per_day[date])


# --------------------------------------------------------------------------
# Verification / statistics
# --------------------------------------------------------------------------

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.(?:com|org|net)\b")
CARD_RE = re.compile(r"(?<![\w+-])\d(?:[ -]?\d){14,18}(?![\w-])")
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")
PHONE_RE = re.compile(
    r"\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}|\(\d{3}\) ?\d{3}-\d{4}|\b\d{3}[ .-]\d{3}[ .-]\d{4}\b"
    r"|\b\d{10}\b"
)


def find_pii(text: str) -> dict[str, list[str]]:
    """Rough detector used by --verify (IBANs first, so their digits aren't mistaken for cards)."""
    found: dict[str, list[str]] = {"email": EMAIL_RE.findall(text), "iban": IBAN_RE.findall(text)}
    rest = text
    for value in found["iban"]:
        rest = rest.replace(value, " ")
    found["card"] = [m for m in CARD_RE.findall(rest) if m[0] in "345"]
    for value in found["card"]:
        rest = rest.replace(value, " ")
    rest = re.sub(r"(?i)JO-?\d{6}|EL2-\d\d|RC-\d{4}-\d\d", " ", rest)
    found["phone"] = [p for p in PHONE_RE.findall(rest) if sum(c.isdigit() for c in p) >= 10]
    return found


def verify(out_dir: Path = OUT_DIR) -> int:
    failures: list[str] = []
    convs: list[dict[str, Any]] = []
    for name in ("conversations.jsonl", "eval.jsonl"):
        for n, line in enumerate(
            (out_dir / name).read_text(encoding="utf-8").splitlines(), start=1
        ):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                failures.append(f"{name}:{n}: {exc}")
                continue
            obj["_file"] = name
            convs.append(obj)

    topics = Counter(c["topic"] for c in convs)
    multi = sum(1 for c in convs if customer_turns(c["messages"]) >= 2)
    substantive = sum(1 for c in convs if substantive_multi(c))
    pii_convs = 0
    pii_counts: Counter[str] = Counter()
    for c in convs:
        if not (
            c["id"].startswith("conv-") and c["channel"] in ("email", "chat", "phone-transcript")
        ):
            failures.append(f"{c['id']}: bad id/channel")
        if is_eval(c["id"]) != (c["_file"] == "eval.jsonl"):
            failures.append(f"{c['id']}: in the wrong split")
        if c["csat"] is not None and c["csat"] not in range(1, 6):
            failures.append(f"{c['id']}: bad csat")
        customer_pii: set[str] = set()
        has_pii = False
        for m in c["messages"]:
            if m["role"] not in ("customer", "agent") or not m["text"].strip():
                failures.append(f"{c['id']}: bad message")
            found = find_pii(m["text"])
            if m["role"] == "customer":
                for kind, values in found.items():
                    if values:
                        has_pii = True
                        pii_counts[kind] += len(values)
                        customer_pii.update(values)
                for card in found["card"]:
                    if not luhn_valid(card):
                        failures.append(f"{c['id']}: card fails Luhn: {card}")
                for iban in found["iban"]:
                    if not iban_valid(iban):
                        failures.append(f"{c['id']}: IBAN fails mod-97: {iban}")
            else:
                leaked = [v for v in customer_pii if v in m["text"]]
                if leaked or any(found.values()):
                    failures.append(f"{c['id']}: agent message contains PII {leaked or found}")
        if has_pii != bool(c["pii_types"]):
            failures.append(
                f"{c['id']}: pii_types {c['pii_types']} disagrees with detection ({has_pii})"
            )
        pii_convs += has_pii

    n = len(convs)
    n_train = sum(1 for c in convs if c["_file"] == "conversations.jsonl")
    size = (out_dir / "conversations.jsonl").stat().st_size
    oos = [
        json.loads(line)
        for line in (out_dir / "out_of_scope.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    with (out_dir / "faq.csv").open(encoding="utf-8", newline="") as fh:
        faq = list(csv.DictReader(fh))
    slack_threads, slack_msgs = verify_slack(out_dir / "slack_export", failures)

    print(
        f"conversations: {n} total ({n_train} train, {n - n_train} eval = {(n - n_train) / n:.1%})"
    )
    print(f"conversations.jsonl size: {size / 1e6:.2f} MB")
    low, high = min(topics.values()), max(topics.values())
    print(f"topics: {len(topics)} distinct, min {low} / max {high} per topic")
    print(f"channels: {dict(Counter(c['channel'] for c in convs))}")
    print(
        f"multi-turn (>=2 customer turns): {multi} ({multi / n:.1%}); "
        f"with a clarifying or dependent follow-up: {substantive} ({substantive / n:.1%})"
    )
    print(
        f"conversations with PII: {pii_convs} ({pii_convs / n:.1%}); "
        f"PII items by type: {dict(pii_counts)}"
    )
    resolved = sum(c["resolved"] for c in convs)
    print(f"resolved: {resolved}; csat given: {sum(c['csat'] is not None for c in convs)}")
    print(f"out_of_scope: {len(oos)} questions; faq.csv: {len(faq)} rows")
    print(f"slack: {slack_threads} threads, {slack_msgs} messages")
    cited = {
        code
        for c in convs
        for m in c["messages"]
        for code in re.findall(r"KB-[A-Z0-9]+-\d\d", m["text"])
    }
    print(f"articles cited: {len(cited)} of {len(ARTICLES)}")
    if failures:
        print(f"\nFAILED ({len(failures)}):")
        for f in failures[:50]:
            print("  " + f)
        return 1
    print(
        "all checks passed (JSON parses, split is fixed, Luhn/IBAN valid, no PII in agent replies)"
    )
    return 0


def customer_turns(messages: list[Message]) -> int:
    """Number of customer turns (consecutive customer messages count as one)."""
    turns, prev = 0, None
    for m in messages:
        if m["role"] == "customer" and prev != "customer":
            turns += 1
        prev = m["role"]
    return turns


def substantive_multi(conv: dict[str, Any]) -> bool:
    """Multi-turn beyond a plain 'thanks' or complaint: a clarification or a dependent follow-up."""
    texts = [m["text"] for m in conv["messages"] if m["role"] == "customer"]
    trivial = set(CUSTOMER_THANKS) | set(ANGRY_THANKS)
    return customer_turns(conv["messages"]) >= 2 and sum(t not in trivial for t in texts[1:]) >= 1


def verify_slack(slack_dir: Path, failures: list[str]) -> tuple[int, int]:
    users = {u["id"]: u for u in json.loads((slack_dir / "users.json").read_text(encoding="utf-8"))}
    channels = json.loads((slack_dir / "channels.json").read_text(encoding="utf-8"))
    threads, total = 0, 0
    for ch in channels:
        for day_file in sorted((slack_dir / ch["name"]).glob("*.json")):
            for msg in json.loads(day_file.read_text(encoding="utf-8")):
                total += 1
                if msg.get("subtype"):
                    continue
                agent = users[msg["user"]]["profile"]["title"] == SLACK_AGENT_TITLE
                if msg.get("thread_ts") == msg["ts"]:
                    threads += 1
                    if agent:
                        failures.append(f"slack {msg['ts']}: thread parent written by an agent")
                elif agent and any(find_pii(msg["text"]).values()):
                    failures.append(f"slack {msg['ts']}: agent reply contains PII")
    return threads, total


def policy_table() -> str:
    lines = ["| Topic(s) | Article | URL | Key facts |", "|---|---|---|---|"]
    by_article: dict[str, list[str]] = {}
    for t in TOPICS:
        for code in t.articles:
            by_article.setdefault(code, []).append(t.id)
    for code, a in ARTICLES.items():
        topics = ", ".join(by_article.get(code, ["(follow-ups)"]))
        lines.append(f"| {topics} | {a.code} | {a.url} | {'; '.join(a.facts)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--verify", action="store_true", help="check the generated files and print statistics"
    )
    parser.add_argument(
        "--policy-table", action="store_true", help="print the policy sheet as a markdown table"
    )
    parser.add_argument(
        "--out", type=Path, default=OUT_DIR, help="output folder (default: data/sample)"
    )
    args = parser.parse_args()
    if args.policy_table:
        print(policy_table())
        return 0
    if args.verify:
        return verify(args.out)
    write_all(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
