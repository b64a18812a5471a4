"""Loading base models and attaching LoRA adapters.

A base is a Hugging Face causal LM given by id or local path, or a short name or ``.gguf``
file (converted once into the home, see :mod:`finetune.base_models`); a folder is any that
``from_pretrained`` reads, the GPT-2 bases earlier releases bootstrapped from the logs
included. LoRA targets follow peft's per-architecture defaults unless configured.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from finetune.base_models import BaseModelError, resolve_base
from finetune.config import GeneratorConfig

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model with its tokenizer and where it came from."""

    model: Any  # PreTrainedModel or PeftModel
    tokenizer: Any
    source: str  # model id or folder


def load_base(
    source: str | Path, *, device: str = "cpu", base_root: Path | None = None
) -> LoadedModel:
    """Load a causal LM and its tokenizer, in eval mode, by Hugging Face id, local folder,
    short name of a packaged model or ``.gguf`` path; a ``.gguf`` is read from its folder
    converted once under ``base_root`` (the home's base-model folder), which it needs.

    Raises BaseModelError when it cannot be loaded (offline and not cached, wrong folder,
    missing file or package).
    """
    ref = resolve_base(source, base_root=base_root)
    try:
        tokenizer: Any = AutoTokenizer.from_pretrained(ref)
        model: Any = AutoModelForCausalLM.from_pretrained(ref, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise BaseModelError(f"cannot load base model {ref!r}: {exc}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    name_causal_lm_loss(model)
    model.to(device)
    model.eval()
    return LoadedModel(model, tokenizer, ref)


def name_causal_lm_loss(model: Any) -> None:
    """Say which loss ``model`` trains with where its class name does not: transformers
    reads it from the name (``...ForCausalLM``), finds none in ``GPT2LMHeadModel`` (the
    bases earlier releases bootstrapped, tests' tiny GPT-2s), warns on every run and falls
    back to this same loss."""
    if getattr(model, "loss_type", "") is None:
        model.loss_type = "ForCausalLM"


def lora_target_modules(
    model: PreTrainedModel, *, override: tuple[str, ...] | None = None
) -> list[str] | str:
    """Module names LoRA adapts: ``override`` if given; otherwise peft's default for the
    architecture, or all linear layers when peft has none."""
    if override:
        return list(override)
    model_type = getattr(model.config, "model_type", "")
    defaults = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
    if defaults:
        return list(defaults)
    log.info("peft has no LoRA default for %r; adapting all linear layers", model_type)
    return "all-linear"


def attach_lora(loaded: LoadedModel, config: GeneratorConfig) -> Any:
    """Wrap the base in a fresh trainable LoRA adapter (base weights frozen)."""
    targets = lora_target_modules(loaded.model, override=config.lora_target_modules)
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        fan_in_fan_out=getattr(loaded.model.config, "model_type", "") == "gpt2",
    )
    with peft_wrapping():
        return get_peft_model(loaded.model, lora)


@contextlib.contextmanager
def peft_wrapping() -> Iterator[None]:
    """Around peft wrapping a model: peft (0.21) reads transformers' (5.x) deprecated
    ``is_gradient_checkpointing`` alias, and transformers warns on every wrap. Nothing of
    ours reads it; only that warning, from there, is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="`is_gradient_checkpointing` is deprecated",
            category=FutureWarning,
            module="transformers.modeling_utils",
        )
        yield


def load_adapter(loaded: LoadedModel, adapter_folder: Path, *, merge: bool = False) -> Any:
    """Put a saved adapter on the base; ``merge`` folds it into the weights for serving speed."""
    with peft_wrapping():
        model = PeftModel.from_pretrained(loaded.model, str(adapter_folder))
    model.eval()
    if merge:
        return model.merge_and_unload()
    return model


@contextlib.contextmanager
def merged_adapter(model: Any) -> Iterator[None]:
    """Inside, ``model``'s (a peft model's) adapter is folded into the base weights, as
    serving folds it: unmerged, every adapted layer runs the adapter's two small matrix
    products and its dropout beside the base's at each decoding step. Afterwards the
    adapter is separate again (to train on or save). ``model.disable_adapter()`` inside
    unmerges it on the fly, so the base can still be compared."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    model.merge_adapter()
    try:
        yield
    finally:
        if any(m.merged for m in model.modules() if isinstance(m, BaseTunerLayer)):
            model.unmerge_adapter()
