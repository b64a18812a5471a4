"""Settings of the Slack adapter: tokens, how it connects, operators, pacing and limits.

The application settings embed this model as ``slack`` (``SUPPORTBOT_SLACK__OPERATORS_CHANNEL``,
``[slack]`` in the TOML file). Slack's own variable names work too, through
:class:`SlackEnvironmentSource`: ``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET``,
``SLACK_APP_TOKEN`` and ``SUPPORTBOT_SLACK_API_URL``. Tokens are ``SecretStr``: they never
appear in a repr, a log line or a settings error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from retrieval.config import recipe

Mode = Literal["http", "socket", "off"]

_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")

# Slack's conventional variable names -> fields of SlackConfig.
STANDARD_ENVIRONMENT = {
    "SLACK_BOT_TOKEN": "bot_token",
    "SLACK_SIGNING_SECRET": "signing_secret",
    "SLACK_APP_TOKEN": "app_token",
    "SUPPORTBOT_SLACK_API_URL": "slack_api_url",
}


class SlackConfig(BaseModel):
    """How the bot talks to Slack; off until tokens are given."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["auto", "http", "socket", "off"] = Field(
        "auto",
        description="'http': Events API on POST /slack/events of the web server; 'socket': "
        "Socket Mode (app-level token, no public URL); 'auto': socket when an app token is "
        "set, http when a bot token and signing secret are, otherwise off.",
    )
    bot_token: SecretStr | None = Field(
        None,
        description="Bot User OAuth token (xoxb-...).",
    )
    signing_secret: SecretStr | None = Field(
        None,
        description="Signing secret that verifies requests to /slack/events (http mode).",
    )
    app_token: SecretStr | None = Field(
        None,
        description="App-level token with connections:write (xapp-...), for Socket Mode.",
    )
    slack_api_url: str = recipe(
        "https://slack.com/api/",
        description="Base URL of the Slack Web API; tests and staging point it at a fake.",
    )
    operators_channel: str | None = Field(
        None,
        description="Channel id (C.../G...) where hand-offs are posted; its members are "
        "operators. The bot must be a member.",
    )
    operator_user_ids: tuple[str, ...] = Field(
        (), description="Further user ids (U...) treated as operators."
    )
    operators_cache_s: float = recipe(
        300.0,
        ge=0,
        le=86_400,
        description="How long the operators' channel members are cached.",
    )
    progress_interval_s: float = recipe(
        1.0,
        ge=0.05,
        le=60,
        description="Least time between two progress updates of a reply being written "
        "(chat.update is rate limited per workspace).",
    )
    placeholder_text: str = Field(
        "…thinking",
        min_length=1,
        max_length=200,
        description="Shown in Slack while a reply is being written.",
    )
    user_rate_per_minute: float = recipe(
        12.0,
        gt=0,
        le=10_000,
        description="Sustained messages per minute per Slack user.",
    )
    user_rate_burst: int = recipe(
        5,
        ge=1,
        le=1_000,
        description="Messages a user may send at once before the rate applies.",
    )
    rate_limited_message: str = Field(
        "You're sending messages faster than I can answer. Please wait {seconds} seconds and "
        "send your question again.",
        min_length=1,
        description="Sent to a Slack user over the rate limit; {seconds} becomes the wait.",
    )
    dedup_ttl_s: float = recipe(
        3600.0,
        ge=600,
        le=7 * 86_400,
        description="How long event ids are remembered; Slack retries for about 5 minutes.",
    )
    api_timeout_s: float = recipe(
        10.0,
        gt=0,
        le=120,
        description="Timeout of one Web API call.",
    )
    api_max_retries: int = recipe(
        3,
        ge=0,
        le=10,
        description="Retries of a Web API call that is rate limited or fails "
        "with 500/503 (Retry-After is honoured).",
    )
    final_delivery_attempts: int = recipe(
        3,
        ge=1,
        le=20,
        description="Attempts to deliver a finished reply, each after the "
        "client's own retries, before it is reported as undelivered.",
    )
    final_retry_backoff_s: float = recipe(
        2.0,
        ge=0,
        le=300,
        description="First wait between two delivery attempts (doubles).",
    )
    thread_context_chars: int = recipe(
        600,
        ge=0,
        le=10_000,
        description="When the bot is mentioned inside a thread it has not seen, this much of "
        "the earlier thread text is prepended to the question (0: none). It counts towards "
        "the engine's max_message_chars.",
    )

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        value = value.strip()
        if not _URL.match(value):
            raise ValueError(f"slack_api_url {value!r} is not an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("operators_channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and not _CHANNEL_ID.match(value.strip()):
            raise ValueError(
                f"operators_channel {value!r} must be a channel id such as C0123ABCD, not a name"
            )
        return value.strip() if value else None

    @field_validator("operator_user_ids")
    @classmethod
    def _users(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if not _USER_ID.match(value):
                raise ValueError(f"operator user id {value!r} must look like U0123ABCD")
        return values

    @model_validator(mode="after")
    def _tokens_fit_mode(self) -> SlackConfig:
        # Checked after validation so that an error shows the model (secrets masked), never
        # the raw token.
        _check_prefix("bot_token", self.bot_token, "xoxb-")
        _check_prefix("app_token", self.app_token, "xapp-")
        needs: dict[str, tuple[str, ...]] = {
            "http": ("bot_token", "signing_secret"),
            "socket": ("bot_token", "app_token"),
        }
        missing = [name for name in needs.get(self.mode, ()) if getattr(self, name) is None]
        if missing:
            raise ValueError(f"slack mode {self.mode!r} needs {', '.join(missing)}")
        return self

    @property
    def resolved_mode(self) -> Mode:
        """The mode in effect: ``auto`` resolved from the tokens present."""
        if self.mode != "auto":
            return self.mode
        if self.bot_token is not None and self.app_token is not None:
            return "socket"
        if self.bot_token is not None and self.signing_secret is not None:
            return "http"
        return "off"

    def secret(self, name: Literal["bot_token", "signing_secret", "app_token"]) -> str:
        """The plain value of a token the resolved mode needs (validated to be present)."""
        value: SecretStr | None = getattr(self, name)
        if value is None:
            raise ValueError(f"slack {name} is not configured")
        return value.get_secret_value()


def _check_prefix(name: str, value: SecretStr | None, prefix: str) -> None:
    if value is not None and not value.get_secret_value().startswith(prefix):
        raise ValueError(f"slack {name} must start with {prefix!r}")


def standard_slack_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``slack`` settings given by Slack's conventional variables in ``environ``."""
    found = {
        field: environ[name] for name, field in STANDARD_ENVIRONMENT.items() if environ.get(name)
    }
    return {"slack": found} if found else {}


class SlackEnvironmentSource(PydanticBaseSettingsSource):
    """Settings source for ``SLACK_BOT_TOKEN`` and friends, which carry no ``SUPPORTBOT_``
    prefix. Placed after the prefixed environment, so ``SUPPORTBOT_SLACK__BOT_TOKEN`` wins."""

    def __init__(
        self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(settings_cls)
        self._environ = os.environ if environ is None else environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        value = self.__call__().get(field_name)
        return value, field_name, isinstance(value, dict)

    def __call__(self) -> dict[str, Any]:
        return standard_slack_environment(self._environ)
