"""Settings of the operators' dashboard: sessions, login limits, page sizes, how long
customers' details are kept for operators.

Meant to sit in the application settings as ``ops`` (``SUPPORTBOT_OPS__SESSION_HOURS``,
``[ops]`` in the TOML file); nothing in :mod:`bot.ops` reads the environment.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from retrieval.config import recipe


class OpsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    session_hours: float = Field(
        12.0, gt=0, le=24 * 30, description="How long a login lasts before asking again."
    )
    login_attempts_per_minute: float = recipe(
        5.0,
        gt=0,
        le=1000,
        description="Login attempts allowed per minute per client IP and per (IP, name); "
        "failures per name from addresses that never logged in as it are limited alike.",
    )
    known_login_addresses: int = recipe(
        10_000,
        ge=10,
        le=1_000_000,
        description="(address, name) pairs of successful logins remembered (most recent "
        "kept): their attempts are not held back by others' failures against the name.",
    )
    login_burst: int = recipe(
        5,
        ge=1,
        le=1000,
        description="Login attempts allowed at once before the rate applies.",
    )
    page_size: int = Field(25, ge=5, le=500, description="Flags per page of the review queue.")
    metrics_days: int = recipe(
        30,
        ge=1,
        le=365,
        description="Days shown on the metrics page unless another is chosen.",
        # The page has its own chooser: this is only where it starts.
    )
    customer_details_days: float = recipe(
        30,
        ge=0,
        le=3650,
        description="Days the e-mails, phone numbers and names scrubbed from a customer's "
        "own messages are kept for the operators of that conversation (shown on its page "
        "only), then deleted; 0 keeps none.",
        # A retention period a privacy policy states once: the everyday page is full.
    )
