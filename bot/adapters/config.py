"""Settings of the serving generator (``Settings.generator``): the model's own settings
(:class:`finetune.config.GeneratorConfig`) plus where replies are generated.

``backend = "local"`` (the default) runs the trained model in the server's own batching
worker. ``backend = "openai"`` sends each prompt to an OpenAI-compatible inference server
(vLLM, text-generation-inference) at ``endpoint``, e.g.
``SUPPORTBOT_GENERATOR__BACKEND=openai SUPPORTBOT_GENERATOR__ENDPOINT=http://vllm:8000/v1``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from finetune.config import GeneratorConfig
from retrieval.config import recipe

_BASE_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")

Backend = Literal["local", "openai"]
RemoteApi = Literal["chat", "completions"]


class GeneratorSettings(GeneratorConfig):
    backend: Backend = Field(
        "local",
        description="'local': the trained model in this process; 'openai': an "
        "OpenAI-compatible inference server at `endpoint`.",
    )
    endpoint: str | None = Field(
        None,
        description="Base URL of the inference server's OpenAI API, up to and including "
        "/v1 (e.g. http://127.0.0.1:8000/v1).",
    )
    remote_api: RemoteApi = Field(
        "chat",
        description="'chat': POST /chat/completions with chat messages (the server applies "
        "the model's chat template); 'completions': POST /completions with the plain "
        "Customer:/Agent: transcript that models without a chat template are trained on.",
    )
    remote_model: str | None = Field(
        None,
        description="The `model` of each request: the served model's name, or the name of "
        "a LoRA adapter given to vLLM's --lora-modules.",
    )
    api_key: SecretStr | None = Field(
        None, description="Sent as 'Authorization: Bearer ...'; never logged."
    )
    temperature: float = recipe(
        0.0,
        ge=0.0,
        le=2.0,
        description="Sampling temperature (0: greedy, as the local model).",
    )
    connect_timeout_s: float = recipe(
        5.0,
        gt=0.0,
        description="Longest wait to connect to the inference server.",
    )
    read_timeout_s: float = recipe(
        20.0,
        gt=0.0,
        description="Longest silence of the server (before the first token or between two); "
        "keep it below engine.generation_timeout_s.",
    )
    max_retries: int = recipe(
        2,
        ge=0,
        le=10,
        description="Further attempts after a connection error or a 429/5xx answer, only "
        "before the first token (text already streamed is never repeated).",
    )
    retry_backoff_s: float = recipe(
        0.5,
        ge=0.0,
        le=30.0,
        description="First wait before a retry; doubles each time.",
    )
    max_connections: int = recipe(
        64,
        ge=1,
        le=4096,
        description="Concurrent requests to the inference server.",
    )

    @field_validator("endpoint")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not _BASE_URL.match(value):
            raise ValueError(f"endpoint {value!r} must be an http(s) URL like http://host:8000/v1")
        return value

    @model_validator(mode="after")
    def _remote_is_complete(self) -> GeneratorSettings:
        if self.backend == "openai":
            missing = [name for name in ("endpoint", "remote_model") if getattr(self, name) is None]
            if missing:
                raise ValueError(f"generator backend 'openai' needs {' and '.join(missing)}")
        return self
