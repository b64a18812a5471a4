"""Closing remarks ("ok I will check the guide, thanks") on real text: reach, false
positives and worst-case time of retrieval.small_talk (issue 19).

    python benchmarks/small_talk_closers.py

* The sample corpus (data/sample/conversations.jsonl and eval.jsonl, read as raw JSONL):
  every customer turn, with whether an agent had answered before it. Prints every turn that
  is a closing remark and was not small talk before closing remarks counted, to be read by
  hand: one that asks or reports something is a false positive.
* Banking77 (../shared/datasets/banking77, Casanueva et al. 2020, CC BY 4.0; read, never
  copied): every test and train message is a question or a problem, so every one read as a
  closing remark (as if an answer had come before) is a false positive; they are printed.
* Near misses: each Banking77 test message and each sample turn that is not small talk
  after a closing remark, with a full stop ("ok thanks, I'll check the guide. " + the
  message) and without ("thanks I'll check the guide " + the message), and before one (the
  message + " thanks, I'll wait"): a closing remark with a question or a problem in it.
  Every one read as a closing remark is a false positive; they are printed. (Those over the
  100-character cap are counted apart: they fail on length alone.) This set found three
  holes while the reader was written (a statement read across a full stop, "I can" as a
  subject, "to" as a preposition), mended since: its 0 is a figure on the set the reader
  was mended on, not a held-out one.
* The messages customers wrote that issue 19 quotes, and 40 closing remarks written after
  the reader (WRITTEN_AFTER): how many are recognised, and the ones missed.
* Time: adversarial and random messages of 2,000 characters through the closing-remark
  reader without its length cap, and through the phrase reader, beside the single regex
  ``phrase( phrase)*`` it replaced; the slowest of each (each input's best of three runs).
  Times are wall-clock on whatever machine runs it.

Writes benchmarks/results/small_talk_closers.json. Not run in CI.
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.banking77 import load_rows
from retrieval import small_talk
from retrieval.small_talk import pleasantry

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = [ROOT / "data" / "sample" / "conversations.jsonl", ROOT / "data" / "sample" / "eval.jsonl"]
RESULTS = Path(__file__).resolve().parent / "results"

# What customers wrote after a helpful answer (issue 19's tester and the others it quotes).
QUOTED = [
    "ok I will check the guide, thanks",
    "great, I'll try that now",
    "perfect that's all I needed",
    "ok thanks I'll wait for the email",
    "cool, will do. thanks!",
    "no that's everything, bye",
]

# Closing remarks written after the reader, to measure its reach on remarks it was not
# written from: 32 of these 40 were recognised on the first run; the atomic-group fix ("pop
# into") and "place" came from them, so the figure now is 34 on a set no longer held out.
WRITTEN_AFTER = [
    "Ok great, I'll have a look at the tracking link",
    "thanks a lot, I'll wait for the refund then",
    "Perfect, thank you! I'll reset my password now.",
    "ok cool I'll try it later",
    "Got it, thanks. I'll keep an eye out for the email.",
    "thank you so much I will call the courier tomorrow",
    "Alright thanks, will check my spam folder",
    "ok brilliant, I'll order the size up",
    "Great, that answers my question. Thanks!",
    "Thanks, I'll give that a go",
    "ok thank you I'll just wait then",
    "Awesome, I'll check it out. Cheers!",
    "Okay, I'll follow the instructions in the article, thanks",
    "thanks!! will do",
    "ok perfect, I'm going to try that now",
    "Thanks for the info, I'll check the help center",
    "ty, I'll wait a few more days",
    "Lovely, thanks. I'll pop into the store on Saturday",
    "ok I'll contact my bank then, thanks for your help",
    "Super, I'll fill in the form. Thanks",
    "Thanks, I'll look out for the label",
    "great thanks i'll try again",
    "ok that makes sense, I'll wait for the delivery",
    "cheers, I'll register it on the website",
    "Okay thanks, I will return it this week",
    "thanks, let me check my email",
    "perfect, I'll use the link you sent",
    "Great, I'll download the app and try again. Thanks",
    "Thank you, I'll read the guide first",
    "ok thanks I'll sort it out",
    "Ok, I'll go ahead and place a new order. Thanks!",
    "thank you, I'll check back later",
    "thanks so much, that fixed it",
    "alright, I'll be patient. thanks",
    "ok great, I'll let you know if I need anything else",
    "noted, I'll check the return policy",
    "Thanks! Have a great weekend, I'll wait for the parcel",
    "fab, thanks, I'll try that",
    "ok thanks, I'll update the app",
    "Thanks, I'll have a read of that",
]

ADVERSARIAL = [
    "bye " * 500 + "x",
    "thank you " * 200 + "?",
    "ok " * 666 + "x",
    "i'll check " * 180 + "x",
    "i'll " * 500,
    "i'll just just " + "just " * 400 + "x",
    "i'll check the the the the the " * 60 + "x",
    "will do " * 250 + "x",
    "thanks i'll check " + "a " * 990 + "x",
    "that's all i needed " * 100 + "x",
    "no " * 666 + "x",
    "a" * 2000,
    "i'll wait and check and " * 90 + "x",
    "have a good day " * 120 + "x",
    "i'll try that thanks " * 95 + "x",
]
_PHRASES_TO_MIX = (
    "ok thanks i'll i will check the guide and let you know bye that's all i needed no great"
    " perfect will do try that now wait for email just it worked thank you bye"
)


def customer_turns(path: Path) -> Iterator[tuple[str, bool, str]]:
    """(conversation id, whether an agent answered before, text) of every customer turn."""
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        answered = False
        for message in record.get("messages") or []:
            if not isinstance(message, dict):
                continue
            if message.get("role") == "customer" and isinstance(message.get("text"), str):
                yield str(record.get("id")), answered, message["text"]
            elif message.get("role") == "agent":
                answered = True


def sample_figures() -> dict[str, object]:
    turns = [turn for path in SAMPLE for turn in customer_turns(path)]
    new = []
    for conversation, answered, text in turns:
        if pleasantry(text) is None and pleasantry(text, after_answer=True) is not None:
            new.append(
                {
                    "conversation": conversation,
                    "after_answer": answered,
                    "kind": str(pleasantry(text, after_answer=True)),
                    "text": text,
                }
            )
    return {
        "customer_turns": len(turns),
        "after_an_answer": sum(answered for _, answered, _ in turns),
        "small_talk_before": sum(pleasantry(text) is not None for _, _, text in turns),
        "closing_remarks_after_an_answer": sum(m["after_answer"] for m in new),
        "closing_remarks_as_first_message": sum(not m["after_answer"] for m in new),
        "matches": new,
    }


def banking77_figures(split: str) -> dict[str, object]:
    texts = [row.text for row in load_rows(split)]
    matched = [t for t in texts if pleasantry(t, after_answer=True) is not None]
    return {"messages": len(texts), "matched": len(matched), "matches": matched}


NEAR_MISS_AROUND = [
    ("ok thanks, I'll check the guide. ", ""),
    ("thanks I'll check the guide ", ""),  # no full stop: the statement must end by itself
    ("", " thanks, I'll wait"),
]
_LONGEST_CLOSING_S = 100


def near_miss_figures() -> dict[str, object]:
    questions = [row.text for row in load_rows("test")]
    questions += [
        text for path in SAMPLE for _, _, text in customer_turns(path) if pleasantry(text) is None
    ]
    built = [before + q + after for q in questions for before, after in NEAR_MISS_AROUND]
    short = [t for t in built if len(t) <= _LONGEST_CLOSING_S]
    matched = [t for t in short if pleasantry(t, after_answer=True) is not None]
    return {"messages": len(built), "within_length_cap": len(short), "matched": matched}


def slowest(read: Callable[[str], object], texts: list[str]) -> tuple[float, str]:
    worst, which = 0.0, ""
    for text in texts:
        took = float("inf")
        for _ in range(3):  # the best of three: a machine shared with other work is noisy
            began = time.perf_counter()
            read(text)
            took = min(took, time.perf_counter() - began)
        if took > worst:
            worst, which = took, text[:30]
    return worst * 1000.0, which


def time_figures() -> dict[str, object]:
    rng = random.Random(19)
    words = _PHRASES_TO_MIX.split()
    randoms = [" ".join(rng.choice(words) for _ in range(400))[:2000] for _ in range(300)]
    texts = [t[:2000] for t in ADVERSARIAL] + randoms
    normal = [small_talk._normal(t) for t in texts]
    old_regex = re.compile(rf"(?:{small_talk._ANY})(?: (?:{small_talk._ANY}))*")
    rows = {
        "closing-remark reader, 2,000 chars, no length cap": slowest(
            small_talk._closing_kind, normal
        ),
        "pleasantry(after_answer=True), 2,000 chars": slowest(
            lambda t: pleasantry(t, after_answer=True), texts
        ),
        "pleasantry(after_answer=True), cut to 100 chars": slowest(
            lambda t: pleasantry(t, after_answer=True), [t[:100] for t in texts]
        ),
        "phrase reader, 2,000 chars": slowest(
            lambda t: small_talk._only_phrases(t, small_talk._CLOSING_PHRASE), normal
        ),
        "phrase reader, 'bye' x25 + 'x' (101 chars)": slowest(
            lambda t: small_talk._only_phrases(t, small_talk._PHRASE), ["bye " * 25 + "x"]
        ),
        "old phrase( phrase)* regex, 'bye' x25 + 'x' (101 chars)": slowest(
            old_regex.fullmatch, ["bye " * 25 + "x"]
        ),
    }
    return {
        "inputs": len(texts),
        "longest_chars": max(map(len, texts)),
        "slowest_ms": {name: round(ms, 3) for name, (ms, _) in rows.items()},
        "slowest_input": {name: which for name, (_, which) in rows.items()},
    }


def main() -> None:
    sample = sample_figures()
    banking = {split: banking77_figures(split) for split in ("test", "train")}
    near_misses = near_miss_figures()
    quoted = {text: str(pleasantry(text, after_answer=True)) for text in QUOTED}
    quoted_before = sum(pleasantry(text) is not None for text in QUOTED)
    written = {text: str(pleasantry(text, after_answer=True)) for text in WRITTEN_AFTER}
    missed = [text for text, kind in written.items() if kind == "None"]
    timing = time_figures()

    print("sample corpus: customer turns that are closing remarks and were not small talk")
    for match in sample["matches"]:  # type: ignore[attr-defined]
        print(f"  {match['conversation']} [{match['kind']}] {match['text']!r}")
    print(
        f"  {sample['customer_turns']} turns, {sample['after_an_answer']} after an answer,"
        f" {sample['small_talk_before']} small talk before;"
        f" new closing remarks: {sample['closing_remarks_after_an_answer']} after an answer"
        f" (counted), {sample['closing_remarks_as_first_message']} as a first message (not)"
    )
    for split, figures in banking.items():
        print(
            f"Banking77 {split}: {figures['matched']} of {figures['messages']} questions read"
            " as closing remarks (all false positives)"
        )
        for text in figures["matches"]:  # type: ignore[attr-defined]
            print(f"  {text!r}")
    print(
        f"near misses (a closing remark around a real question): {len(near_misses['matched'])}"
        f" of {near_misses['within_length_cap']} read as closing remarks"
        f" ({near_misses['messages']} built, the rest over the length cap)"
    )
    for text in near_misses["matched"]:  # type: ignore[attr-defined]
        print(f"  {text!r}")
    print(
        f"issue 19's quoted closers recognised: {sum(k != 'None' for k in quoted.values())}"
        f" of {len(quoted)} ({quoted_before} were small talk before)"
    )
    print("  " + "; ".join(f"{t!r} -> {k}" for t, k in quoted.items()))
    print(
        f"closing remarks written after the reader: {len(written) - len(missed)} of {len(written)}"
    )
    for text in missed:
        print(f"  missed: {text!r}")
    print(f"worst time over {timing['inputs']} inputs (up to {timing['longest_chars']} chars):")
    for name, ms in timing["slowest_ms"].items():  # type: ignore[attr-defined]
        print(f"  {name:<58} {ms:>9.3f} ms")

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "small_talk_closers.json"
    out.write_text(
        json.dumps(
            {
                "sample": sample,
                "banking77": banking,
                "near_misses": near_misses,
                "quoted": quoted,
                "written_after": written,
                "time": timing,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
