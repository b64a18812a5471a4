"""LoRA on tiny models of each architecture: attach, train a few steps, publish, reload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune.config import GeneratorConfig
from finetune.examples import TrainingExample, build_examples, iter_turns, retrieve_for_turns
from finetune.generation import ReplyGenerator
from finetune.modeling import attach_lora, load_adapter, load_base, lora_target_modules
from finetune.prompting import PromptFormat, PromptRequest
from finetune.training import LoraSettings, publish_adapter, train_lora, validation_loss
from tests.support.finetune_fakes import (
    InMemoryRetriever,
    randomised_lora,
    save_tiny_base,
    toy_conversations,
)

CONVERSATIONS = toy_conversations(repeats=2)
RETRIEVER = InMemoryRetriever(CONVERSATIONS)
CONFIG = GeneratorConfig(
    lora_r=4,
    lora_alpha=8,
    lora_dropout=0.0,
    retrieved_k=1,
    max_prompt_tokens=120,
    max_new_tokens=24,
    no_repeat_ngram_size=0,
)


def _base_folder(tmp_path: Path, architecture: str, chat: bool) -> Path:
    return save_tiny_base(
        tmp_path / "base", CONVERSATIONS, architecture=architecture, chat_template=chat
    )


def _generator(model: object, tokenizer: object) -> ReplyGenerator:
    fmt = PromptFormat(
        tokenizer, instructions="Answer.", max_prompt_tokens=120, max_target_tokens=24
    )
    return ReplyGenerator(model, tokenizer, fmt, max_new_tokens=12, no_repeat_ngram_size=0)


def _toy_examples() -> list[TrainingExample]:
    """One training example per reply of the toy corpus, its best past exchange as evidence."""
    turns = [t for c in CONVERSATIONS for t in iter_turns(c)]
    return build_examples(
        turns,
        retrieve_for_turns(turns, RETRIEVER, 4),
        k=1,
        reference_rate=1.0,
        handoff_reply="Let me check.",
        seed=0,
    )


REQUEST = PromptRequest(
    "hi, where is my order?", (), tuple(RETRIEVER.search((), "where is my order", 1))
)


@pytest.mark.parametrize(
    ("architecture", "chat", "targets"),
    [
        ("gpt2", False, ["c_attn"]),
        ("llama", True, ["q_proj", "v_proj"]),
        ("qwen2", True, ["q_proj", "v_proj"]),
    ],
)
def test_adapter_trains_saves_and_reloads(
    tmp_path: Path, architecture: str, chat: bool, targets: list[str]
) -> None:
    folder = _base_folder(tmp_path, architecture, chat)
    loaded = load_base(folder)
    assert lora_target_modules(loaded.model) == targets
    model = attach_lora(loaded, CONFIG)
    generator = _generator(model, loaded.tokenizer)
    assert generator.prompt_format.uses_chat_template == chat
    examples = _toy_examples()
    held = [generator.prompt_format.encode_example(e.request, e.target) for e in examples[:4]]
    untrained = validation_loss(model, held, 4, loaded.tokenizer.pad_token_id or 0)
    metrics = train_lora(
        model,
        generator.prompt_format,
        examples,
        examples[:4],
        LoraSettings(
            budget_s=60, learning_rate=2e-2, batch_size=4, max_epochs=2, early_stop_patience=0
        ),
        progress=False,
    )
    assert metrics["steps"] > 0 and metrics["best_val_loss"] is not None
    # The adapter learnt: the replies it was taught are likelier than before. (What a random
    # tiny model writes greedily may not change: its argmax can outlast a few steps.)
    assert metrics["best_val_loss"] < untrained - 0.005
    after = generator.generate(REQUEST)

    published = publish_adapter(
        model,
        adapters_root=tmp_path / "adapters",
        config=CONFIG,
        base_folder=folder,
        metrics=metrics,
        training_conversations=CONVERSATIONS,
    )
    assert published.name == "v0001"
    names = {p.name for p in published.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "generator_config.json",
        "metrics.json",
        "manifest.json",
    } <= names
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["conversations"] == len(CONVERSATIONS) and len(manifest["data_sha256"]) == 64

    reloaded = load_adapter(load_base(folder), published)
    assert _generator(reloaded, loaded.tokenizer).generate(REQUEST) == after
    merged = load_adapter(load_base(folder), published, merge=True)
    assert _generator(merged, loaded.tokenizer).generate(REQUEST) == after


def test_configured_targets_override_the_defaults(tmp_path: Path) -> None:
    loaded = load_base(_base_folder(tmp_path, "llama", True))
    assert lora_target_modules(loaded.model, override=("o_proj",)) == ["o_proj"]


@pytest.mark.parametrize(
    "budget_s,steps,validation_examples",
    [
        # Four steps end at 8 s; a fifth would end at 10 s and is not started. A pass over
        # one batch of validation would cost a step, far over its 3% of the budget: none.
        (9.0, 4, 0),
        # 3% of 200 s is 6 s, 12 examples (3 batches) at 0.5 s each: kept, and paid for.
        (200.0, None, 12),
    ],
)
def test_no_step_or_validation_pass_is_started_that_would_end_past_the_budget(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    budget_s: float,
    steps: int | None,
    validation_examples: int,
) -> None:
    """Each pass through the decoder costs 1 s of a fake clock (a step makes two: the
    prompt as a cache, then the reply; so does a validation batch): training, its
    validation passes included, ends within the budget whatever it affords."""
    from types import SimpleNamespace

    import finetune.training

    now = [0.0]
    monkeypatch.setattr(finetune.training, "time", SimpleNamespace(monotonic=lambda: now[0]))
    folder = _base_folder(tmp_path, "llama", True)
    model = attach_lora(load_base(folder), CONFIG)
    model.get_base_model().model.register_forward_pre_hook(
        lambda *_: now.__setitem__(0, now[0] + 1.0)
    )
    fmt = PromptFormat(
        load_base(folder).tokenizer,
        instructions="Answer.",
        max_prompt_tokens=120,
        max_target_tokens=24,
    )
    examples = _toy_examples()
    settings = LoraSettings(
        budget_s=budget_s, learning_rate=1e-3, batch_size=4, max_epochs=50, early_stop_patience=0
    )
    metrics = train_lora(model, fmt, examples * 20, examples * 4, settings, progress=False)

    assert metrics["stopped"] == "budget"
    assert metrics["validation_examples"] == validation_examples
    assert (metrics["best_val_loss"] is None) is (validation_examples == 0)
    assert budget_s - 8.0 <= now[0] <= budget_s  # within a step and a validation pass
    if steps is not None:
        assert (metrics["steps"], now[0]) == (steps, 8.0)


@pytest.mark.parametrize("architecture", ["gpt2", "llama", "qwen2"])
def test_reply_loss_is_the_models_own_loss(architecture: str, tmp_path: Path) -> None:
    """The output layer runs at reply positions only, and the prompt as a cache without a
    graph: the loss must be the model's own, on rows of different prompt and reply lengths;
    with the prompt's gradient kept, the gradients must be the model's own too."""
    import torch

    from finetune.training import _collate, reply_loss

    base = load_base(_base_folder(tmp_path, architecture, chat=False))
    tokenizer = base.tokenizer
    model = attach_lora(base, CONFIG)
    fmt = PromptFormat(
        tokenizer, instructions="Answer.", max_prompt_tokens=120, max_target_tokens=24
    )
    turns = [t for c in CONVERSATIONS for t in iter_turns(c)][:6]
    evidence = tuple(RETRIEVER.search((), "where is my order", 1))
    requests = [
        PromptRequest(t.customer_text, t.history, evidence[: i % 2]) for i, t in enumerate(turns)
    ]
    encoded = [fmt.encode_example(r, t.reply) for r, t in zip(requests, turns, strict=True)]
    batch = _collate(encoded, tokenizer.pad_token_id or 0)
    prompts = {e.input_ids.index(next(x for x in e.labels if x != -100)) for e in encoded}
    assert len({len(e.input_ids) for e in encoded}) > 1 and len(prompts) > 1
    for p in model.parameters():
        if p.requires_grad:  # LoRA's B starts at zero: give the adapter something to say
            torch.nn.init.normal_(p, std=0.05)

    def loss_and_grads(compute: object) -> tuple[float, list[torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        loss = compute()  # type: ignore[operator]
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
        return loss.item(), grads

    own, own_grads = loss_and_grads(lambda: model(**batch).loss)
    full, full_grads = loss_and_grads(lambda: reply_loss(model, batch, prompt_gradient=True))
    cached, cached_grads = loss_and_grads(lambda: reply_loss(model, batch))
    assert full == pytest.approx(own, rel=1e-5) and cached == pytest.approx(own, rel=1e-5)
    pairs = zip(own_grads, full_grads, strict=True)
    assert own_grads and all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in pairs)
    # Without the prompt's gradient every adapter weight still learns from the reply.
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in cached_grads)


def test_merged_adapter_decodes_as_the_adapter_and_separates_again(tmp_path: Path) -> None:
    """Evaluation decodes with the adapter folded into the weights (as serving does): the
    logits are the adapter's, disabling it inside gives the base's, and afterwards the
    adapter is separate again with its weights unchanged."""
    import torch

    from finetune.modeling import merged_adapter

    folder = _base_folder(tmp_path, "llama", True)
    loaded = load_base(folder)
    model = randomised_lora(folder, CONFIG, std=0.05)
    ids = torch.tensor(
        [
            PromptFormat(
                loaded.tokenizer,
                instructions="Answer.",
                max_prompt_tokens=120,
                max_target_tokens=24,
            )
            .encode(REQUEST)
            .input_ids
        ]
    )
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    with torch.no_grad():
        adapted = model(input_ids=ids).logits
        with model.disable_adapter():
            base = model(input_ids=ids).logits
        assert not torch.allclose(adapted, base, atol=1e-4)
        with merged_adapter(model):
            assert torch.allclose(model(input_ids=ids).logits, adapted, atol=1e-4)
            with model.disable_adapter():
                assert torch.allclose(model(input_ids=ids).logits, base, atol=1e-4)
        assert torch.allclose(model(input_ids=ids).logits, adapted, atol=1e-4)
    layers = [m for m in model.modules() if hasattr(m, "merged")]
    assert layers and not any(m.merged for m in layers)
    with merged_adapter(model):  # left merged inside: separated on the way out
        assert all(m.merged for m in layers)
    assert not any(m.merged for m in layers)
    for name, parameter in model.named_parameters():
        if "lora_" in name:
            assert torch.equal(parameter, lora_before[name])
