"""The one settings object, built once from defaults < config file < environment < CLI.

Components define their own validated config models (``RetrievalConfig``,
``GeneratorConfig``); this module composes them, so nothing deeper reads ``os.environ``.
Environment variables use the ``SUPPORTBOT_`` prefix and ``__`` for nesting, e.g.
``SUPPORTBOT_RETRIEVAL__TOP_K=8``. The config file is ``<home>/supportbot.toml`` unless
``SUPPORTBOT_CONFIG`` or ``--config`` names another.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.adapters.config import GeneratorSettings
from bot.core.config import EngineConfig
from bot.ops.config import OpsConfig
from bot.slack.config import SlackConfig, SlackEnvironmentSource
from bot.web.config import WebConfig
from retrieval.config import RetrievalConfig, recipe

DEFAULT_HOME = Path(".supportbot")


class ServerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(
        "127.0.0.1", description="Interface the server listens on (0.0.0.0: every interface)."
    )
    port: int = Field(
        8080,
        ge=0,
        le=65535,
        description="Port of the chat API, the widget, the dashboard and Slack's events.",
    )
    health_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of a second listener on `host` serving only /healthz and /metrics,"
        " with a small connection cap of its own, so that probes and scrapes are answered "
        "while the main port is flooded. Unset: off (both stay on the main port as well).",
    )


class StorageConfig(BaseModel):
    """Where conversations, ratings, flags and corrections are kept."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str | None = Field(
        None,
        description="Unset: SQLite in the home folder (one box). `postgresql://user@host/db`: "
        "a PostgreSQL server that several `supportbot serve` replicas share. "
        "`sqlite:///path` names another SQLite file.",
    )
    pool_size: int = Field(
        10, ge=1, le=200, description="Most PostgreSQL connections one process keeps open."
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, url: str | None) -> str | None:
        if url is None or url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            return url
        raise ValueError("must start with sqlite:/// or postgresql://")

    def url_or_default(self, home_database: Path) -> str:
        """The database URL, ``sqlite:///<home>/supportbot.db`` when none is set."""
        return self.database_url or f"sqlite:///{home_database}"

    @property
    def postgres_url(self) -> str | None:
        """The PostgreSQL URL replicas share, or None on SQLite."""
        url = self.database_url
        return url if url is not None and url.startswith(("postgresql://", "postgres://")) else None


class RetrainConfig(BaseModel):
    """Retraining cycles (``supportbot retrain``) and how the server follows them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tolerance: float = recipe(
        0.02,
        ge=0.0,
        le=1.0,
        description="A new adapter is promoted unless a gate figure (ROUGE-L, grounded "
        "share) is worse than the live adapter's by more than this.",
    )
    approved_weight: int = recipe(
        2,
        ge=0,
        le=20,
        description="Times an operator-approved reply is repeated in training.",
    )
    corrected_weight: int = recipe(
        3,
        ge=0,
        le=20,
        description="Times an operator's corrected answer is repeated.",
    )
    feedback_share: float = recipe(
        0.3,
        ge=0.0,
        lt=1.0,
        description="Approved and corrected replies (in their weights' proportions) are "
        "repeated until they make up at least this share of a cycle's training examples, so "
        "that a cycle its budget stops within an epoch still learns every correction.",
    )
    interval_hours: float | None = Field(
        None,
        gt=0.0,
        description="`supportbot serve` runs a cycle this often (in a subprocess); unset: off.",
    )
    budget_minutes: float = Field(
        30.0, gt=0.0, description="Training budget of one cycle, in minutes."
    )
    lock_stale_minutes: float = recipe(
        360.0,
        gt=0.0,
        description="A cycle lock whose owner sent no heartbeat for this long is taken over "
        "(a dead owner on this host is taken over at once).",
    )
    eval_corrections: int = recipe(
        50,
        ge=0,
        description="Most recent corrections added to the held-out gate set.",
    )
    poll_seconds: float = recipe(
        30.0,
        gt=0.0,
        description="How often the server checks for a newly promoted (or rolled back) adapter.",
    )
    # On by default, as in `supportbot train`: retrieval is the largest lever on answers,
    # the step spends a share of the same budget (not more time), it is skipped when that
    # share is under retrieval.tuning.min_budget_s, and the gate keeps the live pair unless
    # the candidate is at least as good.
    tune_embedder: bool = Field(
        True,
        description="Tune the embedder in each cycle too (a new embedder and index version, "
        "promoted through its own gate).",
    )
    embedder_budget_share: float = recipe(
        0.3,
        gt=0.0,
        lt=1.0,
        description="Share of the cycle's budget given to the embedder.",
    )
    # A fifth of the default 30 minutes is the verifier's own limit (retrieval.verifier_minutes):
    # its floor of 120 steps took 2-4 minutes on two quiet cores, and it cut wrong answers on
    # the sample by a quarter, which a cycle that re-fits the hand-off without it gives up.
    verifier_budget_share: float = recipe(
        0.2,
        ge=0.0,
        lt=1.0,
        description="Share of the cycle's budget for training a new reply verifier when the "
        "embedder step promotes a pair whose hand-off fit cannot weigh the one served; what "
        "it leaves unused goes to the adapter.",
    )
    embedder_tolerance: float = recipe(
        0.01,
        ge=0.0,
        le=1.0,
        description="A tuned embedder is promoted unless validation top-1, the wrong-answer "
        "rate at the target hand-off recall or the share of corrections retrieved first is "
        "worse than the live pair's by more than this.",
    )

    @model_validator(mode="after")
    def _shares_leave_the_adapter_time(self) -> RetrainConfig:
        if self.embedder_budget_share + self.verifier_budget_share >= 1.0:
            raise ValueError(
                f"retrain.embedder_budget_share ({self.embedder_budget_share}) and"
                f" retrain.verifier_budget_share ({self.verifier_budget_share}) leave no time"
                " to train the adapter: together they must be below 1"
            )
        return self


class Settings(BaseSettings):
    """Everything configurable. Construct with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="SUPPORTBOT_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    home: Path = Field(
        DEFAULT_HOME,
        description="Folder holding all state: the database, indexes, models and logs.",
    )
    log_level: str = Field(
        "INFO", description="Least severe log records written: DEBUG, INFO, WARNING or ERROR."
    )
    # Each section's description heads its table in the settings reference (docs/settings.md).
    retrieval: RetrievalConfig = Field(
        RetrievalConfig(),
        description="How past answers are found: the embedder, the index, personal data"
        " scrubbing, and the embedder's tuning in `supportbot train`.",
    )
    generator: GeneratorSettings = Field(
        GeneratorSettings(),
        description="The model that writes replies: its base, its prompt, where it runs, and"
        " its LoRA training in `supportbot train`.",
    )
    engine: EngineConfig = Field(
        EngineConfig(),
        description="How the bot decides to answer, copy or hand off, and what it says when"
        " it hands off.",
    )
    web: WebConfig = Field(
        WebConfig(),
        description="The chat API and the widget: which sites may embed it, rate limits"
        " and connection limits.",
    )
    server: ServerConfig = Field(ServerConfig(), description="Where `supportbot serve` listens.")
    slack: SlackConfig = Field(
        SlackConfig(),
        description="The Slack app: tokens, how it connects, operators; off until tokens"
        " are given.",
    )
    ops: OpsConfig = Field(
        OpsConfig(), description="The operators' dashboard: logins, pages and metrics."
    )
    retrain: RetrainConfig = Field(
        RetrainConfig(),
        description="Retraining cycles (`supportbot retrain`, or scheduled by the server)"
        " and the gates a new model passes.",
    )
    storage: StorageConfig = Field(
        StorageConfig(),
        description="Where conversations, ratings, flags and corrections are kept.",
    )

    @model_validator(mode="after")
    def _evidence_within_retrieved(self) -> Settings:
        # The engine gives the generator the best generator.retrieved_k of the
        # retrieval.top_k answers it retrieves.
        if self.generator.retrieved_k > self.retrieval.top_k:
            raise ValueError(
                f"generator.retrieved_k ({self.generator.retrieved_k}) cannot exceed"
                f" retrieval.top_k ({self.retrieval.top_k})"
            )
        return self

    @property
    def paths(self) -> HomePaths:
        return HomePaths(self.home)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # SLACK_BOT_TOKEN & co. carry no SUPPORTBOT_ prefix; the prefixed names win.
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            env_settings,
            SlackEnvironmentSource(settings_cls),
        ]
        config_file = _CONFIG_FILE_OVERRIDE or _default_config_file()
        if config_file is not None and config_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


@dataclass(frozen=True)
class HomePaths:
    """Where each kind of state lives under the home folder; two homes never share a file."""

    home: Path

    @property
    def database(self) -> Path:
        return self.home / "supportbot.db"

    @property
    def indexes(self) -> Path:
        return self.home / "indexes"

    @property
    def base_models(self) -> Path:
        return self.home / "models" / "base"

    @property
    def adapters(self) -> Path:
        return self.home / "models" / "adapters"

    @property
    def embedders(self) -> Path:
        return self.home / "models" / "embedders"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def cache(self) -> Path:
        """What is built once from installed packages and rebuilt when missing (the list
        of given names the name finder builds on first use)."""
        return self.home / "cache"

    @property
    def config_file(self) -> Path:
        return self.home / "supportbot.toml"

    def ensure(self) -> HomePaths:
        for folder in (self.home, self.indexes, self.base_models, self.adapters, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        return self


class SettingsError(ValueError):
    """Raised with a readable list of the bad values when settings do not validate."""


# Set only by load_settings for the duration of one construction; pydantic-settings builds
# sources inside a classmethod, so the chosen file has to be handed over this way.
_CONFIG_FILE_OVERRIDE: Path | None = None


def _default_config_file() -> Path | None:
    home = os.environ.get("SUPPORTBOT_HOME")
    return (Path(home) if home else DEFAULT_HOME) / "supportbot.toml"


def load_settings(*, config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings: defaults < config file < environment < ``overrides`` (CLI).

    Raises SettingsError naming each bad value.
    """
    global _CONFIG_FILE_OVERRIDE
    if config_file is None and overrides.get("home") is not None:
        config_file = Path(overrides["home"]) / "supportbot.toml"
    if config_file is None and os.environ.get("SUPPORTBOT_CONFIG"):
        config_file = Path(os.environ["SUPPORTBOT_CONFIG"])
    _CONFIG_FILE_OVERRIDE = config_file
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']} (got {_shown_input(err)!r})"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None
    finally:
        _CONFIG_FILE_OVERRIDE = None


# A database URL may carry its password.
_SECRET_NAME = re.compile(r"token|secret|password|database_url|api_key", re.IGNORECASE)
_MASK = "**********"


def _shown_input(error: Any) -> Any:
    """The bad value as an error may show it: tokens and secrets masked (Slack tokens)."""
    if any(_SECRET_NAME.search(str(part)) for part in error["loc"]):
        return _MASK
    return _masked(error.get("input"))


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _MASK if _SECRET_NAME.search(str(k)) else _masked(v) for k, v in value.items()}
    return value
