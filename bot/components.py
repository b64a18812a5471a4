"""Builds the components from settings, for the CLI jobs and the server alike.

Nothing here loads a model: the objects load lazily, in whichever worker first uses them.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.adapters.scrubbing import PersonalDataScrubber
from bot.core.config import EngineConfig
from bot.ops import tables as ops_tables
from bot.settings import Settings
from bot.slack import tables as slack_tables
from bot.store import tables as conversation_tables
from finetune import tables as finetune_tables
from finetune.pipeline import GeneratorPaths
from retrieval import tables as knowledge_tables
from retrieval.calibration import (
    answers_match,
    calibration_of,
    calibration_path,
    chosen_target_recall,
    load_calibration,
    signals_used,
)
from retrieval.config import TuningConfig
from retrieval.database import SchemaHistory
from retrieval.embedder import resolve_embedder_location
from retrieval.name_tagger import NameTagger
from retrieval.names import NameFinder, load_known_names
from retrieval.verifier import VerifierRecipe

if TYPE_CHECKING:
    from retrieval.knowledge import KnowledgeBase

log = logging.getLogger(__name__)

# The components whose tables are declared once (SQLAlchemy) with an Alembic history each;
# `migrate-db` copies their tables generically. Issue 17 moves the others here one by one.
DECLARED_TABLES: tuple[SchemaHistory, ...] = (
    conversation_tables.HISTORY,
    slack_tables.HISTORY,
    finetune_tables.HISTORY,
    ops_tables.HISTORY,
    knowledge_tables.HISTORY,
)


def open_knowledge_base(settings: Settings) -> KnowledgeBase:
    """The knowledge base of the home; its tables go to PostgreSQL when
    ``storage.database_url`` names it (replicas on several hosts), else to the home's
    SQLite file."""
    from retrieval.knowledge import KnowledgeBase  # lazy: faiss

    paths = settings.paths.ensure()
    return KnowledgeBase.open(
        paths.database,
        paths.indexes,
        settings.retrieval,
        postgres_url=settings.storage.postgres_url,
    )


def name_finder(settings: Settings) -> NameFinder | None:
    """What finds people's names for the home: the configured recogniser, the keep-words,
    and the names learned from the logs so far; None when PII scrubbing is off."""
    config = settings.retrieval
    if not config.scrub_pii:
        return None
    return NameFinder(
        known_names=load_known_names(known_names_path(settings)),
        keep_words=config.keep_words,
        recognizer="spacy" if config.name_recognizer == "spacy" else None,
        cache=settings.paths.cache,
        tagger=name_tagger() if config.name_tagger else None,
    )


@functools.cache
def name_tagger() -> NameTagger:
    """The package's learned name tagger, one per process (it loads on first use): the
    server's scrubber and an ingest in the same process share its weights."""
    return NameTagger()


def pii_scrubber(
    settings: Settings, executor: Executor
) -> PersonalDataScrubber | Callable[[str], str]:
    """What the engine applies to customer text before storing or searching it, the
    server's and the command line's engine alike."""
    if not settings.retrieval.scrub_pii:
        return lambda text: text
    return PersonalDataScrubber(name_finder(settings), executor, known_names_path(settings))


def known_names_path(settings: Settings) -> Path:
    # Beside the index versions: replicas on several hosts share indexes/.
    return settings.paths.indexes / "known_names.json"


def generator_paths(settings: Settings) -> GeneratorPaths:
    """The home folder's model locations, as the generator's jobs take them; the model
    registry and the cycle log go to PostgreSQL when ``storage.database_url`` names it."""
    paths = settings.paths.ensure()
    return GeneratorPaths(
        paths.base_models, paths.adapters, paths.database, settings.storage.postgres_url
    )


def scheduled_cycle_command(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """argv and extra environment for a ``supportbot retrain`` subprocess that sees the
    same settings as the server (passed as environment, which beats the config file)."""
    argv = [sys.executable, "-m", "bot.cli", "--home", str(settings.home), "retrain"]
    env = {"HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    dumped = settings.model_dump(
        mode="json", include={"generator", "retrieval", "retrain", "storage"}
    )
    for name, value in dumped.items():
        env[f"SUPPORTBOT_{name.upper()}"] = json.dumps(value)
    env["SUPPORTBOT_LOG_LEVEL"] = settings.log_level
    return [*argv, "--no-progress"], env


# -- the hand-off decision the server applies ------------------------------------------------


def calibrated_engine_config(config: EngineConfig, home: Path, embedder_id: str) -> EngineConfig:
    """``config`` with the fitted values from the home folder, where the settings did not
    set them explicitly and the calibration was made with the same embedder."""
    return apply_calibration(config, load_calibration(home), embedder_id, home)


# The engine settings a calibration sets (the keys of apply_calibration's fitted values),
# each unless the settings set it explicitly.
CALIBRATED_SETTINGS = (
    "confidence_threshold",
    "confidence_bias",
    "score_weight",
    "margin_weight",
    "support_weight",
    "vote_share_weight",
    "answer_probability_weight",
    "question_typicality_weight",
    "verifier_probability_weight",
)


def apply_calibration(
    config: EngineConfig, payload: Mapping[str, Any] | None, embedder_id: str, home: Path
) -> EngineConfig:
    """``config`` with the fitted values of ``payload`` (the calibration file of ``home``,
    loaded) for ``embedder_id``, as :func:`calibrated_engine_config`; ``config`` itself
    when none applies."""
    if payload is None:
        return config
    entry = calibration_of(payload, embedder_id)
    if entry is None:
        log.warning(
            "calibration in %s was fitted for embedder %s, not %s: using the configured"
            " confidence settings; run `supportbot calibrate` again",
            home,
            payload.get("embedder_id"),
            embedder_id,
        )
        return config
    result = entry["result"]
    weights = result["weights"]
    fitted = {
        "confidence_threshold": result["threshold"],
        "confidence_bias": weights["bias"],
        "score_weight": max(weights["score"], 0.0),
        "margin_weight": max(weights["margin"], 0.0),
        "support_weight": max(weights["support"], 0.0),
        # Calibrations saved before the vote share existed were fitted without it.
        "vote_share_weight": max(weights.get("vote_share", 0.0), 0.0),
        "answer_probability_weight": max(weights.get("answer_probability", 0.0), 0.0),
        "question_typicality_weight": max(weights.get("question_typicality", 0.0), 0.0),
        "verifier_probability_weight": max(weights.get("verifier_probability", 0.0), 0.0),
    }
    update = {k: v for k, v in fitted.items() if k not in config.model_fields_set}
    return config.model_copy(update=update)


def tuning_config(settings: Settings) -> TuningConfig:
    """The embedder tuning settings of ``train`` and ``retrain``, with the hand-off target
    an operator chose (the dashboard, ``calibrate --target-recall``) in place of
    ``retrieval.tuning.target_handoff_recall``: a refit keeps their choice."""
    tuning = settings.retrieval.tuning
    chosen = chosen_target_recall(load_calibration(settings.home))
    if chosen is None:
        return tuning
    return tuning.model_copy(update={"target_handoff_recall": chosen})


def verifier_recipe(settings: Settings) -> VerifierRecipe | None:
    """How ``calibrate`` and ``train`` train the reply verifier; None when it is switched
    off. It starts from the default embedder's weights, whatever embedder serves."""
    retrieval = settings.retrieval
    if not retrieval.verifier:
        return None
    return VerifierRecipe(
        resolve_embedder_location(retrieval.embedder),
        answers_match,
        minutes=retrieval.verifier_minutes,
        steps=retrieval.verifier_steps,
        min_steps=retrieval.verifier_min_steps,
        max_questions=retrieval.verifier_questions,
    )


@dataclass(frozen=True)
class ServedConfidence:
    """The hand-off decision the server makes for an embedder: what ``supportbot
    calibrate`` and ``supportbot train`` print as served, and the server logs at start-up,
    all read through :func:`calibrated_engine_config`."""

    threshold: float
    signals: list[str]  # the confidence signals weighed (a weight above 0)
    source: str  # where the threshold comes from, in words


def served_confidence(config: EngineConfig, home: Path, embedder_id: str) -> ServedConfidence:
    """What the server will apply with ``config`` (the settings' engine section) and the
    calibration saved in ``home``, when it searches with ``embedder_id``."""
    served = calibrated_engine_config(config, home, embedder_id)
    return served_from(config, served, home, embedder_id)


def served_from(
    config: EngineConfig, served: EngineConfig, home: Path, embedder_id: str
) -> ServedConfidence:
    """What :func:`served_confidence` says of ``served``, the engine settings that
    :func:`apply_calibration` made of ``config`` (the settings' engine section)."""
    if "confidence_threshold" in config.model_fields_set:
        source = "engine.confidence_threshold in the settings"
    elif served is config:  # no calibration applies: it returned the settings as they are
        source = f"the default: no calibration fitted for embedder {embedder_id}"
    else:
        source = f"fitted, {calibration_path(home)}"
    return ServedConfidence(
        served.confidence_threshold, signals_used(served.confidence_weights), source
    )


def format_served(served: ServedConfidence) -> str:
    """One line, the same wherever it is printed or logged."""
    return (
        f"served:      hand-off threshold {served.threshold:.3f}"
        f" ({served.source}), signals {', '.join(served.signals) or 'none'}"
    )
