"""Prometheus metrics of one application, in a registry of its own.

A registry per app (not prometheus-client's global one) lets tests and several apps in one
process each count their own requests.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.core.types import Reply

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_FIRST_TOKEN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


class WebMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "supportbot_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "supportbot_http_request_duration_seconds",
            "Time from request to the end of the response (streams included).",
            ("route", "method"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "supportbot_http_requests_in_flight",
            "Requests being handled now.",
            registry=self.registry,
        )
        self.replies = Counter(
            "supportbot_replies",
            "Bot replies sent, by how they were produced (generated, copied, handoff).",
            ("outcome",),
            registry=self.registry,
        )
        self.retractions = Counter(
            "supportbot_reply_retractions",
            "Streamed replies withdrawn and replaced before they were done.",
            registry=self.registry,
        )
        self.handoffs = Counter(
            "supportbot_handoffs",
            "Conversations handed to a human: asked by the customer, or decided by the bot.",
            ("trigger",),
            registry=self.registry,
        )
        self.ratings = Counter(
            "supportbot_ratings",
            "Ratings received, by value.",
            ("value",),
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "supportbot_rate_limited_requests",
            "Requests refused with 429 by the per-client rate limit.",
            registry=self.registry,
        )
        self.flags_refused = Counter(
            "supportbot_flags_refused",
            "Flags not stored: the review queue was at its cap (queue_full), half full for"
            " a reply sent while unsure (unsure_half_full), or the client had raised its"
            " hourly share (client).",
            ("why",),
            registry=self.registry,
        )
        self.time_to_first_token = Histogram(
            "supportbot_time_to_first_token_seconds",
            "Time from a customer message to the first text of the reply.",
            buckets=_FIRST_TOKEN_BUCKETS,
            registry=self.registry,
        )

        self.storage_writable = Gauge(
            "supportbot_storage_writable",
            "1 while the conversation store can write, 0 while its disk is full.",
            registry=self.registry,
        )
        self.storage_refused_writes = Gauge(
            "supportbot_storage_refused_writes",
            "Writes the conversation store refused for lack of disk space since start-up.",
            registry=self.registry,
        )
        self.storage_writable.set(1)

    def observe_storage(self, writable: bool, refused_writes: int) -> None:
        self.storage_writable.set(1 if writable else 0)
        self.storage_refused_writes.set(refused_writes)

    def observe_reply(self, reply: Reply) -> None:
        self.replies.labels(outcome=reply.outcome.value).inc()
        if reply.handoff:
            # "can I talk to a human?" typed is the customer's hand-off as much as the button.
            self.handoffs.labels(trigger="customer" if reply.asked_for_person else "bot").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
