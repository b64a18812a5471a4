"""Looking at one adapter from outside the server: the loss it gives a reply, what it writes.

A small model trained for seconds or minutes rarely changes what greedy decoding writes,
but the loss of the reply it was taught drops at once: :func:`reply_losses` measures that
loss (mean negative log-likelihood per reply token, as in training). :func:`adapter_replies`
decodes replies as the server would. Both build prompts the way the adapter was trained,
with its own instructions and prompt budget, so two adapters can be compared on the same
requests whichever one is live.
"""

from __future__ import annotations

from collections.abc import Sequence

from finetune.config import GeneratorConfig
from finetune.pipeline import GeneratorPaths, load_registered_adapter
from finetune.prompting import PromptFormat, PromptRequest
from finetune.registry import AdapterRecord


def reply_losses(
    adapter: AdapterRecord,
    cases: Sequence[tuple[PromptRequest, str]],
    *,
    config: GeneratorConfig,
    paths: GeneratorPaths,
) -> list[float]:
    """Mean per-token loss of each ``(request, reply)`` under ``adapter``; lower is likelier.

    Replies are cut at ``config.max_new_tokens`` tokens, as training cuts its targets.
    Raises BaseModelError when the adapter's base cannot be loaded.
    """
    from finetune.training import validation_loss  # lazy: torch

    loaded, trained = load_registered_adapter(adapter, config, paths, merge=False)
    fmt = PromptFormat(
        loaded.tokenizer,
        instructions=trained.instructions,
        max_prompt_tokens=trained.max_prompt_tokens,
        max_target_tokens=config.max_new_tokens,
    )
    pad = loaded.tokenizer.pad_token_id or 0
    return [
        validation_loss(loaded.model, [fmt.encode_example(request, reply)], 1, pad)
        for request, reply in cases
    ]


def adapter_replies(
    adapter: AdapterRecord,
    requests: Sequence[PromptRequest],
    *,
    config: GeneratorConfig,
    paths: GeneratorPaths,
) -> list[str]:
    """What ``adapter`` (merged into its base) writes for each request, decoded with
    ``config``'s settings as the server decodes. Raises BaseModelError."""
    from finetune.generation import ReplyGenerator  # lazy: torch

    loaded, trained = load_registered_adapter(adapter, config, paths, merge=True)
    generator = ReplyGenerator.from_config(loaded, trained)
    return generator.generate_batch(list(requests), batch_size=config.max_batch_size)
