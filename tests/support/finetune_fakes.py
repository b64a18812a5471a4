"""Stand-ins for the generator's tests: an in-memory retriever, a toy support corpus, and
tiny models of several architectures built from configs in seconds, saved as a base-model
folder where a test configures ``generator.base_model``. Test code, so not shipped in
``finetune``; torch is imported where a model is built, so that tests without one stay fast.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from finetune.config import GeneratorConfig
from finetune.examples import iter_turns
from finetune.pipeline import GeneratorPaths, NoLiveAdapterError
from finetune.registry import ModelRegistry
from retrieval.records import Conversation, LogMessage, Query, RetrievedExchange, query_text

CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_END_OF_TEXT = "<|endoftext|>"  # GPT-2's; id 0: the tiny models' bos, eos and pad ids
_WORD_RE = re.compile(r"\w+")

# (customer question variants, agent reply) per topic of a toy outdoor-gear shop.
_TOPICS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("how do I return my tent", "can I send back the tent I bought", "I want to return boots"),
        "You can return unused items within 30 days. Start at shop.com/returns. Article KB-RET-01.",
    ),
    (
        ("where is my order", "my parcel has not arrived yet", "when will my package come"),
        "Orders ship in 2 working days. Track it at shop.com/track. Article KB-SHP-02.",
    ),
    (
        ("do you price match", "I saw the jacket cheaper elsewhere", "can you match a lower price"),
        "We match prices of authorised dealers for 14 days. Article KB-PRC-03.",
    ),
    (
        (
            "how much is express shipping",
            "what does fast delivery cost",
            "is there express delivery",
        ),
        "Express delivery costs $9.95 and arrives next day. Article KB-SHP-04.",
    ),
    (
        ("my stove is broken", "the camping stove stopped working", "warranty claim for my stove"),
        "Stoves carry a 2 year warranty. Send photos via shop.com/warranty. Article KB-WAR-05.",
    ),
)


def toy_conversations(repeats: int = 4) -> list[Conversation]:
    """Single- and two-turn conversations over a handful of topics, with stable ids."""
    conversations = []
    for r in range(repeats):
        for t, (questions, reply) in enumerate(_TOPICS):
            question = questions[(r + t) % len(questions)]
            messages = [LogMessage("customer", f"hi, {question}?"), LogMessage("agent", reply)]
            if r % 2:
                messages += [
                    LogMessage("customer", "thanks a lot"),
                    LogMessage("agent", "You are welcome, happy trails!"),
                ]
            conversations.append(Conversation(id=f"conv-{t}-{r}", messages=tuple(messages)))
    return conversations


def toy_corpus_lines() -> list[str]:
    return [m.text for c in toy_conversations() for m in c.messages]


class InMemoryRetriever:
    """Bag-of-words cosine search over the exchanges of some conversations; honours
    ``exclude_conversation_ids`` and merges hits with the same reply (``support``)."""

    def __init__(self, conversations: Sequence[Conversation]) -> None:

        self.entries = [
            (f"{t.conversation_id}#{i}", t)
            for c in conversations
            for i, t in enumerate(iter_turns(c))
        ]
        self._vectors = [_bag(query_text(t.history, t.customer_text)) for _, t in self.entries]
        self.calls: list[tuple[str, frozenset[str]]] = []  # (query, excluded ids) per batch query

    def search_batch(
        self,
        queries: Sequence[Query],
        k: int,
        *,
        exclude_conversation_ids: Sequence[Collection[str]] | None = None,
    ) -> list[list[RetrievedExchange]]:
        excluded = exclude_conversation_ids or [()] * len(queries)
        self.calls.extend(
            (q.customer_text, frozenset(skip)) for q, skip in zip(queries, excluded, strict=True)
        )
        return [
            self.search(q.context, q.customer_text, k, exclude_conversation_ids=skip)
            for q, skip in zip(queries, excluded, strict=True)
        ]

    def search(
        self,
        context: Sequence[LogMessage],
        customer_text: str,
        k: int,
        *,
        exclude_conversation_ids: Collection[str] = (),
    ) -> list[RetrievedExchange]:
        query = _bag(query_text(context, customer_text))
        scored = sorted(
            (
                (_cosine(query, vector), source_id, turn)
                for (source_id, turn), vector in zip(self.entries, self._vectors, strict=True)
                if turn.conversation_id not in exclude_conversation_ids
            ),
            key=lambda item: (-item[0], item[1]),
        )
        hits: dict[str, RetrievedExchange] = {}
        for score, source_id, turn in scored:
            if turn.reply in hits:
                hit = hits[turn.reply]
                hits[turn.reply] = RetrievedExchange(**{**hit.__dict__, "support": hit.support + 1})
            elif len(hits) < k:
                hits[turn.reply] = RetrievedExchange(
                    score,
                    source_id,
                    turn.customer_text,
                    turn.reply,
                    "log",
                    turn.conversation_id,
                    turn.history,
                )
        return list(hits.values())


def tiny_tokenizer(
    lines: Sequence[str], *, chat_template: bool = False, vocab_size: int = 400
) -> Any:
    """A byte-level BPE tokenizer trained on ``lines`` (any byte sequence stays encodable)
    whose one special token begins, ends and pads texts; with ChatML markers when asked."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        lines,
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[_END_OF_TEXT],
        show_progress=False,
    )
    tokenizer: Any = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe._tokenizer,
        bos_token=_END_OF_TEXT,
        eos_token=_END_OF_TEXT,
        pad_token=_END_OF_TEXT,
    )
    if chat_template:
        tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
        tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def tiny_model(architecture: str, vocab_size: int, *, seed: int = 0, context: int = 512) -> Any:
    """A randomly initialised causal LM of ``architecture`` ("gpt2", "llama", "qwen2")."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, Qwen2Config

    small: dict[str, Any] = {
        "vocab_size": vocab_size,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "pad_token_id": 0,
    }
    configs: dict[str, Any] = {
        "gpt2": lambda: GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=context, **small),
        "llama": lambda: LlamaConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=context,
            **small,
        ),
        "qwen2": lambda: Qwen2Config(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=context,
            **small,
        ),
    }
    torch.manual_seed(seed)
    model: Any = AutoModelForCausalLM.from_config(configs[architecture]())  # type: ignore[no-untyped-call]
    model.eval()
    return model


def train_tiny_model(
    model: Any, tokenizer: Any, text: str, *, steps: int = 40, learning_rate: float = 1e-2
) -> Any:
    """Train ``model`` a little as a causal LM on random 64-token windows of ``text``;
    return it in eval mode. A freshly initialised tiny model repeats one token, and its tied
    embeddings are so small that LoRA alone cannot make any token much likelier than
    1/vocabulary; a few dozen steps on the logs fix both."""
    import torch

    ids = torch.tensor(tokenizer(text).input_ids)  # (tokens,)
    windows = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - 65, (8,), generator=windows)
        batch = torch.stack([ids[s : s + 64] for s in starts])  # (8, 64)
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model


def transcript(conversations: Sequence[Conversation]) -> str:
    """The conversations as one ``Customer:``/``Agent:`` text, a line per message."""
    labels = {"customer": "Customer", "agent": "Agent"}
    return "\n".join(f"{labels[m.role]}: {m.text}" for c in conversations for m in c.messages)


def save_tiny_base(
    folder: Path,
    conversations: Sequence[Conversation] | None = None,
    *,
    architecture: str = "gpt2",
    chat_template: bool = False,
    extra_lines: Sequence[str] = (),
    context: int = 256,
    seed: int = 0,
) -> Path:
    """A tiny randomly initialised base model of ``architecture`` and a tokenizer trained on
    the messages of ``conversations`` (default: the toy logs) and ``extra_lines``, saved to
    ``folder`` for ``generator.base_model`` in tests, where loading the packaged SmolLM2
    would take most of a minute; returns ``folder``."""
    conversations = toy_conversations() if conversations is None else conversations
    lines = [m.text for c in conversations for m in c.messages] + list(extra_lines)
    tokenizer = tiny_tokenizer(lines, chat_template=chat_template)
    model = tiny_model(architecture, len(tokenizer), seed=seed, context=context)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


# Llama's Hugging Face layer names and llama.cpp's.
_GGUF_LLAMA_LAYER = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def write_tiny_gguf(model: Any, tokenizer: Any, path: Path) -> Path:
    """Write a Llama ``model`` (float32) and its byte-level BPE ``tokenizer`` (with its chat
    template) as a GGUF file the way llama.cpp's converter lays them out, so that
    transformers reads back the same model; return ``path``."""
    import json

    import gguf
    import numpy as np

    config = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_rope_freq_base(float(config.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)

    tokens = sorted(tokenizer.get_vocab(), key=tokenizer.get_vocab().get)
    special = set(tokenizer.all_special_tokens)
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_tokenizer_model("gpt2")  # llama.cpp's name for byte-level BPE
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in special else 1 for t in tokens])  # 3: control token
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_add_bos_token(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)

    weights = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    writer.add_tensor("token_embd.weight", weights["model.embed_tokens.weight"])
    writer.add_tensor("output_norm.weight", weights["model.norm.weight"])
    if not config.tie_word_embeddings:
        writer.add_tensor("output.weight", weights["lm_head.weight"])
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    for i in range(config.num_hidden_layers):
        for hf_name, gguf_name in _GGUF_LLAMA_LAYER.items():
            tensor = weights[f"model.layers.{i}.{hf_name}.weight"]
            # llama.cpp interleaves the rotary halves of q and k per head; transformers
            # undoes it on load, so it must be done here for the weights to round-trip.
            if gguf_name in ("attn_q", "attn_k"):
                n = heads if gguf_name == "attn_q" else kv_heads
                # (out, in) -> (heads, 2, out/heads/2, in) -> swap the middle two -> (out, in)
                tensor = (
                    tensor.reshape(n, 2, tensor.shape[0] // n // 2, *tensor.shape[1:])
                    .swapaxes(1, 2)
                    .reshape(tensor.shape)
                )
            writer.add_tensor(f"blk.{i}.{gguf_name}.weight", np.ascontiguousarray(tensor))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def tiny_live_loader(
    conversations: Sequence[Conversation], config: GeneratorConfig, loads: list[str]
) -> Any:
    """A stand-in for :func:`finetune.pipeline.load_live_generator` in server tests: one
    tiny gpt2 served under the name of the registry's live adapter (whose folder need hold
    no weights). Appends each name it loads to ``loads``."""
    from finetune.generation import ReplyGenerator  # lazy: torch
    from finetune.modeling import LoadedModel  # lazy: torch

    tokenizer = tiny_tokenizer([m.text for c in conversations for m in c.messages])
    model = tiny_model("gpt2", len(tokenizer), context=256)

    def load(paths: GeneratorPaths, _: GeneratorConfig) -> ReplyGenerator:
        registry = ModelRegistry.open(paths)
        try:
            live = registry.live_adapter()
        finally:
            registry.close()
        if live is None:
            raise NoLiveAdapterError("nothing live")
        generator = ReplyGenerator.from_config(LoadedModel(model, tokenizer, "tiny"), config)
        generator.version = live.folder.name
        loads.append(live.folder.name)
        return generator

    return load


def randomised_lora(base_folder: Path, config: GeneratorConfig, *, std: float = 0.5) -> Any:
    """The base in ``base_folder`` with a fresh LoRA adapter whose B matrices are random
    (seeded): peft starts them at zero, an adapter that changes nothing a test could see."""
    import torch

    from finetune.modeling import attach_lora, load_base  # lazy: torch

    model = attach_lora(load_base(base_folder), config)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)
    return model


def publish_live_adapter(
    paths: GeneratorPaths,
    base_folder: Path,
    config: GeneratorConfig,
    conversations: Sequence[Conversation],
    *,
    source: str = "pretrained",
    base_metrics: dict[str, Any] | None = None,
) -> Path:
    """Publish a :func:`randomised_lora` adapter on ``base_folder``, register the base (as
    ``source``) and the adapter, and make it live; its folder."""
    from finetune.training import publish_adapter  # lazy: torch

    folder = publish_adapter(
        randomised_lora(base_folder, config),
        adapters_root=paths.adapters,
        config=config,
        base_folder=base_folder,
        metrics={},
        training_conversations=conversations,
    )
    registry = ModelRegistry.open(paths)
    try:
        base = registry.register_base(
            base_folder, source=source, model_ref=str(base_folder), metrics=base_metrics
        )
        registry.promote(registry.register_adapter(folder, base_id=base.id).id)
    finally:
        registry.close()
    return folder


def _bag(text: str) -> Counter[str]:
    return Counter(_WORD_RE.findall(text.lower()))


def _cosine(a: Counter[str], b: Counter[str]) -> float:
    dot = sum(count * b[word] for word, count in a.items())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0
