"""How likely an adapter finds a given reply: the learning signal of a short retraining.

A small model trained for seconds or minutes rarely changes what greedy decoding writes,
but the loss of the reply it was taught drops at once. :func:`reply_losses` measures that
loss (mean negative log-likelihood per reply token, as in training) for one adapter on
its base, with the prompt built the way the adapter was trained and is served.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from finetune.config import GeneratorConfig
from finetune.prompting import PromptRequest
from finetune.registry import AdapterRecord, ModelRegistry


def reply_losses(
    adapter: AdapterRecord,
    cases: Sequence[tuple[PromptRequest, str]],
    *,
    config: GeneratorConfig,
    database: Path,
) -> list[float]:
    """Mean per-token loss of each ``(request, reply)`` under ``adapter``; lower is likelier.

    The instructions and prompt budget are the adapter's own (its generator_config.json);
    replies are cut at ``config.max_new_tokens`` tokens, as training cuts its targets.
    Raises BaseModelError when the adapter's base cannot be loaded.
    """
    from finetune.modeling import load_adapter, load_base
    from finetune.prompting import PromptFormat
    from finetune.training import validation_loss

    registry = ModelRegistry.open(database)
    try:
        base_record = registry.base(adapter.base_id)
    finally:
        registry.close()
    loaded = load_base(base_record.model_ref, device=config.device)
    model = load_adapter(loaded, adapter.folder, merge=False)
    with open(adapter.folder / "generator_config.json", encoding="utf-8") as fh:
        trained = json.load(fh)
    fmt = PromptFormat(
        loaded.tokenizer,
        instructions=trained.get("instructions", config.instructions),
        max_prompt_tokens=trained.get("max_prompt_tokens", config.max_prompt_tokens),
        max_target_tokens=config.max_new_tokens,
    )
    pad = loaded.tokenizer.pad_token_id or 0
    return [
        validation_loss(model, [fmt.encode_example(request, reply)], 1, pad)
        for request, reply in cases
    ]
