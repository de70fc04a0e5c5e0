"""Prometheus metrics (`prometheus-client`), correct with several worker processes.

Counters and histograms are incremented where things happen, in whichever worker that is.
With `PROMETHEUS_MULTIPROC_DIR` set (`idp serve --workers N` sets it to a fresh directory
before the workers start), every process writes its values to that directory and `/metrics`,
answered by any one worker, adds them all up (prometheus-client's multiprocess mode). With
one process they live in memory.

What only the database knows (the outbox's backlog, the age of its oldest undelivered
message) is read at scrape time by `render`'s caller and passed in, so every scrape answers
the same whichever worker serves it. Labels are bounded: route templates, never paths;
grant types we implement; upstream aliases and client ids the operator registered.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

REQUESTS = Counter("idp_http_requests", "HTTP requests answered, by route template",
                   ["method", "route", "status"])
LATENCY = Histogram("idp_http_request_duration_seconds",
                    "Time from a request's arrival to its response's end, by route template",
                    ["method", "route"],
                    buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
TOKENS = Counter("idp_token_requests", "Token endpoint requests by grant type and outcome "
                 "(issued, or the RFC 6749 error code)", ["grant_type", "outcome"])
SIGNINS = Counter("idp_signins", "Sign-in checks by method (password, or the upstream's "
                  "alias) and outcome (success, failure, throttled)", ["method", "outcome"])
THROTTLED = Counter("idp_throttled", "Requests held back by a throttle", ["what"])
CONSENT_CHANGES = Counter("idp_consent_changes", "Consent ledger entries by action",
                          ["action"])
# Global Privacy Control signals seen on the do-not-sell page and the account center, by
# whether a signed-in account was there to apply them to ("signed_in" or "signed_out"): a
# count, never who sent them (CCPA metrics, Cal. Code Regs. tit. 11 §7102).
GPC_SIGNALS = Counter("idp_gpc_signals", "Global Privacy Control signals received on "
                      "the privacy pages", ["account"])
DELIVERY_FAILURES = Counter("idp_outbox_delivery_failures",
                            "Failed outbox delivery attempts, by app (client id; 'upstream' "
                            "for messages to an identity provider)", ["client_id"])
# Labelled, like every metric here, so that no value (and, with several workers, no file)
# exists until a serving process sets one: the CLI imports this module too.
POOL_IN_USE = Gauge("idp_db_pool_connections_in_use",
                    "Database connections checked out of the pool, all workers",
                    ["database"], multiprocess_mode="livesum")
POOL_SIZE = Gauge("idp_db_pool_size", "Database connections the pool may hold, all workers",
                  ["database"], multiprocess_mode="livesum")


class OutboxState(Collector):
    """The outbox as read at scrape time (by the caller, from the database)."""

    def __init__(self, backlog: int, oldest_age_seconds: float) -> None:
        self.backlog = backlog
        self.oldest_age_seconds = oldest_age_seconds

    def collect(self) -> Iterable[GaugeMetricFamily]:
        yield GaugeMetricFamily("idp_outbox_backlog",
                                "Messages neither delivered nor abandoned", value=self.backlog)
        yield GaugeMetricFamily("idp_outbox_oldest_undelivered_age_seconds",
                                "Age of the oldest message neither delivered nor abandoned "
                                "(0 when there is none)", value=self.oldest_age_seconds)


def render(outbox: OutboxState) -> bytes:
    """The exposition text: every process's metrics (or this one's) and the outbox's."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    text = generate_latest(registry)
    outbox_registry = CollectorRegistry()
    outbox_registry.register(outbox)
    return text + generate_latest(outbox_registry)


def process_exited(pid: int) -> None:
    """Drop a finished worker's live gauges (its counters stay in the totals)."""
    if os.environ.get(MULTIPROCESS_DIR):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
