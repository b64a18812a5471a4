"""Settings of the web server: CORS, rate limits, body size, the client-IP header.

The application settings embed this model as ``web`` (``SUPPORTBOT_WEB__RATE_PER_MINUTE``,
``[web]`` in the TOML file); nothing in :mod:`bot.web` reads the environment.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from retrieval.config import recipe

_ORIGIN = re.compile(r"^https?://[^\s/?#]+$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")
# A bearer token guessed over the network must be out of reach: 16 characters of a random
# token (openssl rand -hex 16 gives 32) at the least.
MIN_METRICS_TOKEN_CHARS = 16
# RFC 6750's b64token: what may follow "Bearer " in an Authorization header.
_BEARER_TOKEN = re.compile(r"^[A-Za-z0-9._~+/-]+=*$")


class WebConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    allowed_origins: tuple[str, ...] = Field(
        (),
        description="Origins (scheme://host[:port]) of the sites that embed the widget and "
        "may call the API from a browser. The server's own origin (its Host header, or "
        "X-Forwarded-Host behind a trusted proxy) always works; '*' allows any site and "
        "must be set on purpose.",
    )
    rate_per_minute: float = Field(
        30.0, gt=0, le=100_000, description="Sustained API requests per minute per client IP."
    )
    rate_burst: int = Field(
        10,
        ge=1,
        le=100_000,
        description="API requests a client may make at once before the per-minute rate applies.",
    )
    max_tracked_clients: int = recipe(
        50_000,
        ge=100,
        description="Client IPs remembered by the rate limiter (oldest first "
        "forgotten), so a flood of addresses cannot exhaust memory.",
    )
    max_body_bytes: int = recipe(
        # Slack's button payloads carry the whole message with its blocks: a long reply
        # makes a click of 20 KB and more. Customer messages are capped by the engine.
        65_536,
        ge=256,
        le=10_000_000,
        description="Largest request body accepted (413 above).",
    )
    trusted_proxy_header: str | None = Field(
        None,
        description="Header holding the client IP set by a reverse proxy you run in front "
        "(e.g. 'X-Forwarded-For'; its last entry is used). Off by default: a client could "
        "otherwise forge it to dodge rate limits.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token a Prometheus scraper sends (scrape config `authorization`)"
        " to read /metrics on the main port, at least 16 characters. Unset: the main port "
        "answers /metrics to loopback clients only (404 to others). The health port "
        "(`server.health_port`) serves /metrics without it.",
    )
    request_read_timeout_s: float = recipe(
        10.0,
        gt=0,
        le=300,
        description="Seconds a client has to send a whole request (headers and body) from "
        "its first byte, or from connecting; a slower one is closed even while it trickles.",
    )
    max_connections: int = recipe(
        2048,
        ge=16,
        le=1_000_000,
        description="Open connections in all. At the cap, a new connection closes the oldest"
        " one still sending its request, or is closed at once; the start-up lowers the cap "
        "to what the open-file limit allows.",
    )
    max_connections_per_ip: int = recipe(
        128,
        ge=1,
        le=1_000_000,
        description="Open connections per client address; more are closed at once. Not "
        "applied behind a trusted proxy, whose own address every connection has.",
    )
    new_conversations_per_minute: float = recipe(
        600.0,
        gt=0,
        le=1_000_000,
        description="Conversations started per minute by all web clients together (on top "
        "of the per-IP rate), so rotating addresses cannot flood the database.",
    )
    new_conversations_burst: int = recipe(
        300,
        ge=1,
        le=1_000_000,
        description="Conversations that may start at once in all.",
    )
    max_open_flags: int = recipe(
        1000,
        ge=1,
        le=10_000_000,
        description="Open flags the review queue may hold; beyond it new flags are not "
        "stored (and counted in supportbot_flags_refused), so a flood cannot bury the queue."
        " Replies sent while unsure may fill only half of it.",
    )
    flags_per_client_per_hour: int = recipe(
        # One customer causes a hand-off or two; an office behind one NAT address a few more.
        20,
        ge=1,
        le=100_000,
        description="Flags (hand-offs, thumbs down, unanswered questions) one web client may "
        "add to the review queue per hour; the rest are not stored. Replies sent while unsure"
        " have as many again of their own, so they cannot use up a customer's hand-offs.",
    )
    expose_source_text: bool = Field(
        True,
        description="Send the start of each source's answer (the business's words, never a "
        "past customer's) where the reply does not already say it; off sends only ids, kinds, "
        "scores and links.",
    )
    retrieval_workers: int = recipe(
        2,
        ge=1,
        le=64,
        description="Threads searching the knowledge base (bounded pool).",
    )
    torch_threads: int | None = recipe(
        None,
        ge=1,
        le=256,
        description="Threads each model computation may use (torch intra-op). Unset: the"
        " CPU cores shared out among the retrieval workers and the generation worker.",
    )
    index_refresh_seconds: float = recipe(
        5.0,
        gt=0,
        le=3600,
        description="How often the server checks for a newer index version.",
    )

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = []
        for origin in origins:
            value = origin.strip().rstrip("/").lower()
            if value != "*" and not _ORIGIN.match(value):
                raise ValueError(
                    f"allowed origin {origin!r} must be '*' or scheme://host[:port] with no path"
                )
            cleaned.append(value)
        return tuple(cleaned)

    @field_validator("trusted_proxy_header")
    @classmethod
    def _header(cls, value: str | None) -> str | None:
        if value is not None and not _HEADER_NAME.match(value):
            raise ValueError(f"trusted_proxy_header {value!r} is not a header name")
        return value or None

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < MIN_METRICS_TOKEN_CHARS:
            raise ValueError(
                f"metrics_token must have at least {MIN_METRICS_TOKEN_CHARS} characters "
                "(e.g. `openssl rand -hex 16`)"
            )
        if not _BEARER_TOKEN.match(value.get_secret_value()):
            raise ValueError(
                "metrics_token may hold only letters, digits and - . _ ~ + / (then = signs),"
                " as a bearer token in an Authorization header"
            )
        return value

    @property
    def any_origin(self) -> bool:
        return "*" in self.allowed_origins
