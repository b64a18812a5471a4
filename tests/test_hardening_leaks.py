"""Secrets and personal data never reach the logs or the training data.

One scenario touches every door at once, with every logger at DEBUG: customers write to
the bot over Slack (signed events, a forged one, a button click) and the web API (a
message, a rating with a comment), all carrying e-mail addresses, phone and card numbers;
an operator logs in (after a wrong password), approves a reply and logs out. Then the
captured log text and the exported training records (bot/feedback.py) are searched for
the Slack signing secret, the bot token, the operator's passwords, the session cookie and
each piece of personal data.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.feedback import export_feedback
from bot.ops.auth import SESSION_COOKIE
from bot.slack import blocks
from tests.support.dashboard import PASSWORD, Site, add_operator, csrf_of, login
from tests.support.hardening import record
from tests.support.slack import (
    BOT_TOKEN,
    DM,
    SECRET,
    Start,
    event_body,
    message,
    signed,
)

EMAIL = "dana.k@example.com"
PHONE = "+44 7700 900123"
CARD = "4111 1111 1111 1111"
WRONG_PASSWORD = "hunter2-not-the-password"
PII = (EMAIL, PHONE, CARD, CARD.replace(" ", ""))


async def test_no_secret_or_personal_data_is_logged_or_exported(
    start: Start,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, including slack_sdk, bolt and aiohttp
    bot = await start()
    site = Site(bot.client, bot.client.app, Path(sa.make_url(bot.store.url).database or ""))
    add_operator(site.database)

    # Slack: a question with personal data, a forged copy, a click on "helpful".
    asked = message(f"How do I return boots? Mail me at {EMAIL} or call {PHONE}", channel=DM)
    await bot.send(asked)
    reply = await bot.final_reply(asked["ts"], channel=DM)
    forged = event_body(message(f"my card is {CARD}", channel=DM))
    assert (await bot.post(forged, signed(forged, secret="forged-secret"))).status == 401
    await bot.click(blocks.RATE_UP, reply.button_value(blocks.RATE_UP), reply)

    # The web API: a message with a card number and a rating comment with an address.
    created = await bot.client.post("/api/conversations")
    conversation = (await created.json())["conversation_id"]
    answered = await bot.client.post(
        f"/api/conversations/{conversation}/messages",
        json={"text": f"When will my order arrive? I paid with {CARD}"},
    )
    turn_id = (await answered.json())["turn_id"]
    rated = await bot.client.post(
        f"/api/turns/{turn_id}/rating", json={"rating": "down", "comment": f"write {EMAIL}"}
    )
    assert rated.status == 200

    # An operator: a wrong password, then the right one, approves the web reply, leaves.
    assert (await login(site, "alice", WRONG_PASSWORD)).status == 401
    site.client.session.cookie_jar.clear()
    assert (await login(site)).status == 303
    cookie = site.client.session.cookie_jar.filter_cookies(site.client.make_url("/ops/"))[
        SESSION_COOKIE
    ].value
    token = csrf_of(await (await site.client.get("/ops/")).text())
    headers = {"Origin": site.origin}
    approved = await site.client.post(
        f"/ops/turns/{turn_id}/approve",
        data={"csrf_token": token},
        headers=headers,
        allow_redirects=False,
    )
    assert approved.status == 303
    await site.client.post(
        "/ops/logout", data={"csrf_token": token}, headers=headers, allow_redirects=False
    )
    await bot.idle()

    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert len(caplog.records) > 20  # the scenario did log: the search below means something
    secrets = {
        "slack signing secret": SECRET,
        "slack bot token": BOT_TOKEN,
        "operator password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "session cookie": cookie,
        "csrf token": token,
    }
    secrets_logged = [name for name, value in secrets.items() if value in logged]
    pii_logged = [value for value in PII if value in logged]

    exported = export_feedback(site.database)
    assert exported, "the approved reply is exported for training"
    texts: list[str] = []
    for item in exported:
        texts += [item.customer_text, item.reply, *(m.text for m in item.history)]
    pii_exported = [value for value in PII if any(value in text for text in texts)]
    assert any("[CARD]" in text for text in texts)  # the card was there, and was scrubbed
    record(
        "access",
        check="secrets and PII in logs and training data",
        log_records=len(caplog.records),
        secrets_checked=len(secrets),
        secrets_logged=len(secrets_logged),
        pii_checked=len(PII),
        pii_logged=len(pii_logged),
        training_records=len(exported),
        pii_in_training=len(pii_exported),
    )
    assert secrets_logged == []
    assert pii_logged == []
    assert pii_exported == []
