"""What a copied past reply loses before a customer reads it, counted on the sample's logs
(issues 16 and 19): the claims the engine will not send, and the e-mail forms it drops.

    python benchmarks/claims.py [--logs data/sample/conversations.jsonl] [--examples N]

* Claims (retrieval.claims.copyable) over every agent message of the logs as written (the
  sample: 1,670, 179 of them call-centre openings that answer no one): withheld (the engine
  hands the conversation to a person), by what the reply claims or asks for (details a
  person must act on); sent shortened, by what it goes without; sent whole.
* The same over the replies an index holds: one per customer turn an agent answered,
  scrubbed as ingest scrubs them, with the rules alone (no spaCy recogniser: a name it
  would find changes none of the forms counted here).
* E-mail forms (retrieval.chat_ready.chat_ready_reply) in those indexed replies as the
  engine sends them copied (with engine.hand_off_claimed_actions on: the ones not withheld,
  shortened first), sent as a conversation's first reply and sent later in it: replies
  changed, by the kind of form dropped.
* ``--examples N`` prints N changed replies of each, before and after (seeded), to be read
  by hand: every fragment dropped should be one of the forms named.

Writes benchmarks/results/claims.json. Counts, not times; not run in CI.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from retrieval.chat_ready import EMAIL_FORMS, chat_ready_reply  # noqa: E402
from retrieval.claims import CLAIM_KINDS, SHORTENINGS, copyable  # noqa: E402
from retrieval.entries import entries_of  # noqa: E402
from retrieval.ingest import scrub_conversations  # noqa: E402
from retrieval.parsers import read_logs  # noqa: E402
from retrieval.records import Conversation  # noqa: E402

SAMPLE = REPO / "data" / "sample" / "conversations.jsonl"
RESULTS = Path(__file__).resolve().parent / "results"


def claim_counts(replies: Sequence[str]) -> dict[str, Any]:
    """How many of ``replies`` the engine withholds (by what they claim), sends shortened
    (by what they go without) and sends whole."""
    withheld: Counter[str] = Counter()
    shortened: Counter[str] = Counter()
    sent_shortened = 0
    for reply in replies:
        found = copyable(reply)
        if found.claim_kind is not None:
            withheld[found.claim_kind] += 1
        elif found.shortened:
            sent_shortened += 1
            shortened.update(found.shortened)
    return {
        "replies": len(replies),
        "withheld": sum(withheld.values()),
        "withheld_by_claim": {kind: withheld[kind] for kind in CLAIM_KINDS},
        "sent_shortened": sent_shortened,
        "shortened_by": {kind: shortened[kind] for kind in SHORTENINGS},
        "sent_whole": len(replies) - sum(withheld.values()) - sent_shortened,
    }


def email_form_counts(
    replies: Sequence[str], *, mid_conversation: bool, rng: random.Random, examples: int
) -> tuple[dict[str, Any], list[tuple[str, str, tuple[str, ...]]]]:
    """How many of ``replies``, sent copied (not withheld), chat_ready changes, by kind of
    form dropped; and ``examples`` of them (before, after, kinds)."""
    by_kind: Counter[str] = Counter()
    changed = []
    sent = 0
    for reply in replies:
        found = copyable(reply)
        if found.claimed_action is not None:
            continue
        sent += 1
        ready = chat_ready_reply(found.text, mid_conversation=mid_conversation)
        if ready.dropped:
            by_kind.update(ready.dropped)
            changed.append((found.text, ready.text, ready.dropped))
    figures = {
        "sent": sent,
        "changed": len(changed),
        "by_form": {kind: by_kind[kind] for kind in EMAIL_FORMS},
    }
    return figures, rng.sample(changed, min(examples, len(changed)))


def read_conversations(path: Path) -> list[Conversation]:
    return [record for record in read_logs(path) if isinstance(record, Conversation)]


def indexed_replies(conversations: Sequence[Conversation]) -> list[str]:
    """The agent reply of every exchange an index holds, scrubbed with the rules alone."""
    scrubbed = scrub_conversations(conversations, Counter(), None)
    return [entry.agent_reply for c in scrubbed for entry in entries_of(c)]


def _table(title: str, rows: Sequence[tuple[str, int]], total: int) -> list[str]:
    lines = [f"{title:<64} {'replies':>8} {'share':>7}"]
    lines += [f"  {name:<62} {n:>8} {n / max(total, 1):>7.3f}" for name, n in rows]
    return lines


def _claims_table(title: str, counts: dict[str, Any]) -> list[str]:
    rows = [
        ("withheld (a person takes over)", counts["withheld"]),
        *((f"  {kind}", n) for kind, n in counts["withheld_by_claim"].items()),
        ("sent shortened", counts["sent_shortened"]),
        *((f"  without {kind}", n) for kind, n in counts["shortened_by"].items()),
        ("sent whole", counts["sent_whole"]),
    ]
    return _table(f"{title} ({counts['replies']:,})", rows, counts["replies"])


def _forms_table(title: str, counts: dict[str, Any]) -> list[str]:
    rows = [
        ("changed by chat_ready", counts["changed"]),
        *((f"  {kind} dropped", n) for kind, n in counts["by_form"].items()),
    ]
    return _table(f"{title} ({counts['sent']:,} sent)", rows, counts["sent"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logs", type=Path, default=SAMPLE, help="JSONL, CSV or Slack export")
    parser.add_argument("--examples", type=int, default=0, help="changed replies to print")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "claims.json")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    conversations = read_conversations(args.logs)
    written = [m.text for c in conversations for m in c.messages if m.role == "agent"]
    indexed = indexed_replies(conversations)
    results: dict[str, Any] = {
        "logs": str(args.logs),
        "conversations": len(conversations),
        "claims": {
            "agent_messages_as_written": claim_counts(written),
            "indexed_replies_scrubbed": claim_counts(indexed),
        },
        "email_forms": {},
    }
    lines = _claims_table(
        "agent messages as written", results["claims"]["agent_messages_as_written"]
    )
    lines += _claims_table(
        "indexed replies, scrubbed", results["claims"]["indexed_replies_scrubbed"]
    )
    shown = []
    for position, mid_conversation in (("first reply", False), ("later reply", True)):
        counts, picked = email_form_counts(
            indexed, mid_conversation=mid_conversation, rng=rng, examples=args.examples
        )
        results["email_forms"][position.replace(" ", "_")] = counts
        lines += _forms_table(f"indexed replies sent copied as a {position}", counts)
        shown += [(position, *example) for example in picked]
    print("\n".join(lines))
    for position, before, after, dropped in shown:
        print(f"\n===== as a {position}: {', '.join(dropped)}\n--- before chat_ready:\n{before}")
        print(f"--- sent:\n{after}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
