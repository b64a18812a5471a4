"""Reply generation: greedy decoding with a KV cache, streamed as text deltas.

Several prompts decode together (left padding, attention masks, per-row positions); a row
that finishes leaves the batch so the others stop paying for it. Text is streamed as it
becomes final: an incomplete UTF-8 sequence, a possible start of a stop string and
trailing whitespace are held back, so joining the stream gives exactly ``generate()``.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

try:  # transformers >= 4.56 stores a cache as layers; older caches are never joined
    from transformers.cache_utils import DynamicLayer

    _PLAIN_LAYER: type | None = DynamicLayer
except ImportError:  # pragma: no cover - depends on the installed transformers
    _PLAIN_LAYER = None

from finetune.config import GeneratorConfig
from finetune.modeling import LoadedModel
from finetune.prompting import PromptFormat, PromptRequest


@dataclass(frozen=True)
class DecodeSettings:
    max_new_tokens: int
    stop_strings: tuple[str, ...] = ()
    no_repeat_ngram_size: int = 0  # a generated n-gram may not occur twice (0: off)


@dataclass(frozen=True)
class DecodeEvent:
    row: int  # index of the prompt in the batch as given
    text: str  # newly final text, possibly empty
    finished: bool
    token: int | None = None  # the token decoded at this step (None: cancelled)


class ReplyGenerator:
    """Owns a model and its tokenizer; turns prompt requests into replies. Not thread-safe:
    one thread (the generation worker) should own it."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        prompt_format: PromptFormat,
        *,
        max_new_tokens: int = 160,
        no_repeat_ngram_size: int = 6,
        device: str = "cpu",
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.prompt_format = prompt_format
        self.max_new_tokens = max_new_tokens
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.device = torch.device(device)
        pad = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
        self.pad_token_id = int(pad or 0)
        self.max_positions = _max_positions(model)
        self._cache_argument = cache_keyword(model)
        self._last_logits_only = _takes(model, "logits_to_keep")
        self.version = ""  # which adapter version this serves, when known

    @classmethod
    def from_config(cls, loaded: LoadedModel, config: GeneratorConfig) -> ReplyGenerator:
        room = _max_positions(loaded.model) - config.max_new_tokens
        fmt = PromptFormat.for_config(
            loaded.tokenizer, config, max_prompt_tokens=max(16, min(config.max_prompt_tokens, room))
        )
        return cls(
            loaded.model,
            loaded.tokenizer,
            fmt,
            max_new_tokens=config.max_new_tokens,
            no_repeat_ngram_size=config.no_repeat_ngram_size,
            device=config.device,
        )

    def settings(
        self, *, max_new_tokens: int | None = None, stop: Sequence[str] = ()
    ) -> DecodeSettings:
        return DecodeSettings(
            max_new_tokens=max_new_tokens or self.max_new_tokens,
            stop_strings=tuple(self.prompt_format.stop_strings) + tuple(stop),
            no_repeat_ngram_size=self.no_repeat_ngram_size,
        )

    def stream(
        self, request: PromptRequest, *, max_new_tokens: int | None = None, stop: Sequence[str] = ()
    ) -> Iterator[str]:
        """Yield the reply as text deltas while it is decoded (greedy, deterministic)."""
        prompt = self.prompt_format.encode(request).input_ids
        settings = self.settings(max_new_tokens=max_new_tokens, stop=stop)
        for events in self.decode_batch([prompt], [settings]):
            for event in events:
                if event.text:
                    yield event.text

    def generate(
        self, request: PromptRequest, *, max_new_tokens: int | None = None, stop: Sequence[str] = ()
    ) -> str:
        """The whole reply; equal to joining :meth:`stream`."""
        return "".join(self.stream(request, max_new_tokens=max_new_tokens, stop=stop))

    def generate_batch(
        self,
        requests: Sequence[PromptRequest],
        *,
        batch_size: int = 8,
        max_new_tokens: int | None = None,
    ) -> list[str]:
        """Replies for many requests, ``batch_size`` at a time (similar lengths together)."""
        replies = self.generate_within(
            requests, None, batch_size=batch_size, max_new_tokens=max_new_tokens
        )
        return [reply or "" for reply in replies]  # without a deadline, none is cut

    def generate_within(
        self,
        requests: Sequence[PromptRequest],
        deadline: float | None,
        *,
        batch_size: int = 8,
        max_new_tokens: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> list[str | None]:
        """:meth:`generate_batch` that stops at ``deadline`` (a ``clock()`` instant; None:
        never). The clock is read before each batch, between its prompts' prefills (on a
        CPU, where they are prefilled one at a time) and after each decoding step, so it
        returns at most a prompt's prefill or a step past the deadline, however many tokens
        the batch had left to write. A reply that the deadline cut, or whose batch never
        started, is None: it is not a reply, and must not be scored as one.
        """
        prompts = [self.prompt_format.encode(r).input_ids for r in requests]
        settings = self.settings(max_new_tokens=max_new_tokens)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        replies: list[str | None] = [None] * len(prompts)

        def expired() -> bool:
            return deadline is not None and clock() >= deadline

        for start in range(0, len(order), batch_size):
            if expired():
                break
            chunk = order[start : start + batch_size]
            parts: list[list[str]] = [[] for _ in chunk]
            finished = [False] * len(chunk)
            steps = self.decode_batch(
                [prompts[i] for i in chunk], [settings] * len(chunk), should_stop=expired
            )
            with contextlib.closing(steps):  # a batch cut short frees its KV cache at once
                for events in steps:
                    for event in events:
                        parts[event.row].append(event.text)
                        finished[event.row] = finished[event.row] or event.finished
                    if expired():
                        break
            for row, index in enumerate(chunk):
                if finished[row]:
                    replies[index] = "".join(parts[row])
        return replies

    def decode_batch(
        self,
        prompts: Sequence[list[int]],
        settings: Sequence[DecodeSettings],
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> Generator[list[DecodeEvent], None, None]:
        """Decode the prompts together; yield, after each step, one event per row decoded.

        Every row gets exactly one ``finished`` event. ``should_stop()`` is asked between
        prompts' prefills (see :meth:`DecodeBatch.admit`); the rows of prompts it left out
        get no event. (The worker, whose clients may go away, steps a DecodeBatch itself.)
        """
        batch = DecodeBatch(self)
        batch.admit(prompts, settings, keys=range(len(prompts)), should_stop=should_stop)
        while batch:
            yield batch.step()

    def _prefill(
        self, prompts: Sequence[list[int]]
    ) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor]:
        # A prompt longer than the model's positions keeps its end (the customer's message).
        prompts = [p[-(self.max_positions - 1) :] for p in prompts]
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):  # left padding: every row ends at the last column
            ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            attention[i, width - len(prompt) :] = 1
        ids, attention = ids.to(self.device), attention.to(self.device)
        position_ids = (attention.cumsum(-1) - 1).clamp(min=0)  # (B, T) real-token positions
        # Only the last position's logits are used: projecting every prompt token onto the
        # vocabulary would cost more than the whole body of a small model.
        extra = {"logits_to_keep": 1} if self._last_logits_only else {}
        out = self.model(
            input_ids=ids,
            attention_mask=attention,
            position_ids=position_ids,
            use_cache=True,
            **extra,
        )
        return out.logits[:, -1, :], cache_of(out), attention, position_ids[:, -1]

    def forward_cached(
        self, tokens: torch.Tensor, attention: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> tuple[torch.Tensor, Any]:
        """Feed one token per row after ``cache``; the next-token logits and the cache."""
        arguments = {self._cache_argument: cache}
        out = self.model(
            input_ids=tokens,
            attention_mask=attention,
            position_ids=positions,
            use_cache=True,
            **arguments,
        )
        return out.logits[:, -1, :], cache_of(out)


@dataclass
class _Row:
    key: int  # the caller's name for this row, reported in its events
    prompt_length: int
    settings: DecodeSettings
    text: _TextAssembler
    generated: list[int]


class DecodeBatch:
    """Rows that decode together, one token each per :meth:`step`.

    Continuous batching: :meth:`admit` may add prompts between steps. They are prefilled on
    their own, then their KV cache is joined to the running one (both left-padded to one
    width; every row's newest token sits in the last column), so a request that arrives
    mid-reply gets its first token at the next step and from then on shares the running
    rows' forward pass instead of taking turns with them. Finished rows leave at once, and
    columns that only padded them are dropped. Caches that cannot be joined this way (e.g.
    sliding-window layers) are reported by :attr:`joinable`; the caller then starts another
    batch instead. Not thread-safe: the generation worker's thread owns it.
    """

    def __init__(self, generator: ReplyGenerator) -> None:
        self._generator = generator
        self._reset()

    def _reset(self) -> None:
        self._rows: list[_Row] = []
        self._logits: torch.Tensor | None = None  # (B, V) next-token logits of every row
        self._pending: torch.Tensor | None = None  # (B, 1) picked tokens not yet fed
        self._cache: Any = None
        self._attention: torch.Tensor | None = None  # (B, T) 1 for real tokens
        self._positions: torch.Tensor | None = None  # (B,) position of each row's last token

    def __len__(self) -> int:
        return len(self._rows)

    def row_keys(self) -> list[int]:
        return [row.key for row in self._rows]

    @property
    def joinable(self) -> bool:
        """Whether :meth:`admit` can add rows while others are decoding."""
        return self._cache is None or _joinable(self._cache)

    def admit(
        self,
        prompts: Sequence[list[int]],
        settings: Sequence[DecodeSettings],
        keys: Iterable[int],
        *,
        should_stop: Callable[[], bool] | None = None,
    ) -> int:
        """Prefill ``prompts`` and add them; their first tokens come at the next step. A
        prompt that fails to prefill raises and leaves the running rows untouched.

        ``should_stop()`` is asked between prompts where they are prefilled one at a time
        (on a CPU): once it is true, the prompts not yet prefilled are left out. Returns
        how many of ``prompts`` were added, the first ones.
        """
        if not prompts:
            return 0
        if self._rows and not self.joinable:
            raise ValueError("this model's KV cache cannot be joined; start another batch")
        generator = self._generator
        rows = [
            _Row(key, len(p), s, _TextAssembler(generator.tokenizer, s.stop_strings), [])
            for key, p, s in zip(keys, prompts, settings, strict=True)
        ]
        with torch.inference_mode():
            # Every prompt is prefilled before anything joins: a failure changes nothing.
            parts = self._prefill_parts(prompts, should_stop)
            logits, cache, attention, positions = _stack(parts)
            rows = rows[: logits.shape[0]]
            if not self._rows:
                self._logits, self._cache = logits, cache
                self._attention, self._positions = attention, positions
            else:
                self._advance()
                assert self._logits is not None and self._attention is not None
                assert self._positions is not None
                _join_caches(self._cache, cache)
                self._attention = _join_left_padded(self._attention, attention)
                self._logits = torch.cat([self._logits, logits])
                self._positions = torch.cat([self._positions, positions])
        self._rows.extend(rows)
        return len(rows)

    def _prefill_parts(
        self, prompts: Sequence[list[int]], should_stop: Callable[[], bool] | None = None
    ) -> list[_Prefilled]:
        """Prefill results that together hold ``prompts`` in order.

        On a CPU each prompt is prefilled alone and the caches joined: one left-padded
        batch computes every row to the longest prompt's length and costs more than the
        prompts one by one (32 prompts of 400-760 tokens on a small GPT-2 base: 495 ms
        as one batch, 215 ms one by one). Accelerators keep the batch, and so do caches
        that cannot be joined. One at a time, they stop at the first prompt after
        ``should_stop()`` turns true (the first is always prefilled).
        """
        generator = self._generator
        if len(prompts) == 1 or generator.device.type != "cpu":
            return [generator._prefill(prompts)]
        first = generator._prefill(prompts[:1])
        if not _joinable(first[1]):
            return [generator._prefill(prompts)]  # once per batch, for unusual caches only
        parts = [first]
        for prompt in prompts[1:]:
            if should_stop is not None and should_stop():
                break
            parts.append(generator._prefill([prompt]))
        return parts

    def step(self, is_cancelled: Callable[[int], bool] | None = None) -> list[DecodeEvent]:
        """Decode one token for every row; one event per row (``finished`` once)."""
        if not self._rows:
            return []
        generator = self._generator
        stop_ids = generator.prompt_format.stop_token_ids
        events: list[DecodeEvent] = []
        keep: list[int] = []
        with torch.inference_mode():
            self._advance()
            logits = self._logits
            assert logits is not None
            greedy = torch.argmax(logits, dim=-1).tolist()  # (B,) one call for the batch
            for b, row in enumerate(self._rows):
                if is_cancelled is not None and is_cancelled(row.key):
                    events.append(DecodeEvent(row.key, "", True))
                    continue
                token = _pick_token(logits[b], greedy[b], row.generated, row.settings)
                row.generated.append(token)
                if token in stop_ids:
                    events.append(DecodeEvent(row.key, row.text.finish(), True, token))
                    continue
                delta, stopped = row.text.push(token)
                limit = len(row.generated) >= row.settings.max_new_tokens or (
                    row.prompt_length + len(row.generated) >= generator.max_positions
                )
                if stopped or limit:
                    tail = "" if stopped else row.text.finish()
                    events.append(DecodeEvent(row.key, delta + tail, True, token))
                    continue
                events.append(DecodeEvent(row.key, delta, False, token))
                keep.append(b)
            self._keep(keep)
        return events

    def _keep(self, keep: list[int]) -> None:
        """Drop the rows not in ``keep``; the kept ones feed their new token next."""
        if not keep:
            self._reset()  # frees the cache
            return
        assert self._attention is not None and self._positions is not None
        if len(keep) < len(self._rows):
            index = torch.tensor(keep, device=self._generator.device)
            self._cache.batch_select_indices(index)
            self._attention, self._positions = self._attention[index], self._positions[index]
            self._rows = [self._rows[b] for b in keep]
            self._trim()
        self._pending = torch.tensor(
            [[row.generated[-1]] for row in self._rows], device=self._generator.device
        )
        self._logits = None

    def _advance(self) -> None:
        """Feed the pending tokens, so every row has next-token logits again."""
        if self._pending is None:
            return
        assert self._attention is not None and self._positions is not None
        rows = len(self._rows)
        self._attention = torch.cat([self._attention, self._attention.new_ones((rows, 1))], 1)
        self._positions = self._positions + 1  # (B,) position of the token being fed
        self._logits, self._cache = self._generator.forward_cached(
            self._pending, self._attention, self._positions[:, None], self._cache
        )
        self._pending = None

    def _trim(self) -> None:
        """Drop leading columns that are padding in every row (left by rows that left)."""
        assert self._attention is not None
        if not _joinable(self._cache):
            return
        first = int(torch.nonzero(self._attention.any(dim=0))[0].item())
        if first == 0:
            return
        self._attention = self._attention[:, first:]
        for layer in self._cache.layers:
            layer.keys = layer.keys[..., first:, :]
            layer.values = layer.values[..., first:, :]


def _forward_parameters(model: Any) -> Mapping[str, inspect.Parameter]:
    # A peft wrapper passes keyword arguments through to the model it wraps.
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inspect.signature(base.forward).parameters


def _takes(model: Any, argument: str) -> bool:
    return argument in _forward_parameters(model)


def cache_keyword(model: Any) -> str:
    # transformers 5 renamed ``past_key_values`` to ``cache`` (the old name warns, then goes).
    return "cache" if _takes(model, "cache") else "past_key_values"


def cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _joinable(cache: Any) -> bool:
    # Only plain growing layers hold exactly one column per token; sliding-window or static
    # layers keep other shapes and positions, and are not joined.
    layers: list[Any] = list(getattr(cache, "layers", None) or [])
    return (
        _PLAIN_LAYER is not None
        and bool(layers)
        and all(type(layer) is _PLAIN_LAYER for layer in layers)
    )


_Prefilled = tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor]


def _stack(parts: Sequence[_Prefilled]) -> _Prefilled:
    """One prefill result holding the rows of ``parts`` in order, left-padded to the widest.

    One concatenation per layer for all parts: joining them one at a time would copy the
    growing cache once per prompt.
    """
    if len(parts) == 1:
        return parts[0]
    width = max(attention.shape[1] for _, _, attention, _ in parts)
    cache = parts[0][1]
    for n, layer in enumerate(cache.layers):
        layer.keys = torch.cat([_pad_left(p[1].layers[n].keys, width) for p in parts])
        layer.values = torch.cat([_pad_left(p[1].layers[n].values, width) for p in parts])
    attention = torch.cat([F.pad(p[2], (width - p[2].shape[1], 0)) for p in parts])
    logits = torch.cat([p[0] for p in parts])
    positions = torch.cat([p[3] for p in parts])
    return logits, cache, attention, positions


def _join_caches(running: Any, new: Any) -> None:
    """Append ``new``'s rows to ``running`` in place, left-padding the narrower one."""
    for mine, theirs in zip(running.layers, new.layers, strict=True):
        width = max(mine.keys.shape[-2], theirs.keys.shape[-2])
        mine.keys = torch.cat([_pad_left(mine.keys, width), _pad_left(theirs.keys, width)])
        mine.values = torch.cat([_pad_left(mine.values, width), _pad_left(theirs.values, width)])


def _pad_left(states: torch.Tensor, width: int) -> torch.Tensor:
    """(B, H, T, D) -> (B, H, width, D) with zeros before the first column."""
    missing = width - states.shape[-2]
    return F.pad(states, (0, 0, missing, 0)) if missing else states


def _join_left_padded(running: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Stack two (B, T) attention masks whose rows end in the last column."""
    width = max(running.shape[1], new.shape[1])
    return torch.cat(
        [F.pad(running, (width - running.shape[1], 0)), F.pad(new, (width - new.shape[1], 0))]
    )


def _pick_token(
    logits: torch.Tensor, greedy: int, generated: list[int], settings: DecodeSettings
) -> int:
    n = settings.no_repeat_ngram_size
    if n > 0 and len(generated) >= n - 1:
        banned = _banned_tokens(generated, n)
        if greedy in banned:
            logits = logits.clone()
            logits[list(banned)] = float("-inf")
            return int(torch.argmax(logits).item())
    return greedy


def _banned_tokens(generated: list[int], n: int) -> set[int]:
    """Tokens that would repeat an n-gram already in ``generated`` (the prompt is exempt:
    copying evidence is the point)."""
    if n == 1:
        return set(generated)
    prefix = generated[len(generated) - n + 1 :]
    return {
        generated[i + n - 1]
        for i in range(len(generated) - n + 1)
        if generated[i : i + n - 1] == prefix
    }


def _max_positions(model: Any) -> int:
    config = model.config
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1 << 30


class _TextAssembler:
    """Incremental detokenization of one row with stop strings."""

    def __init__(self, tokenizer: Any, stop_strings: Sequence[str]) -> None:
        self._tokenizer = tokenizer
        self._stops = tuple(s for s in stop_strings if s)
        self._ids: list[int] = []
        self._emitted = ""

    def push(self, token: int) -> tuple[str, bool]:
        """Add a token; return the newly final text and whether a stop string was reached."""
        self._ids.append(token)
        text = self._text()
        cut = _first_stop(text, self._stops)
        if cut is not None:
            final = text[:cut].rstrip()
            return self._advance(final), True
        if text.endswith("\ufffd"):  # an incomplete multi-byte character
            return "", False
        safe = text[: len(text) - _held_suffix(text, self._stops)].rstrip()
        return self._advance(safe), False

    def finish(self) -> str:
        text = self._text()
        return self._advance(text.rstrip().rstrip("\ufffd"))

    def _text(self) -> str:
        return str(self._tokenizer.decode(self._ids, skip_special_tokens=True)).lstrip()

    def _advance(self, final: str) -> str:
        if len(final) <= len(self._emitted):
            return ""
        delta = final[len(self._emitted) :]
        self._emitted = final
        return delta


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def _held_suffix(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that could start a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest
