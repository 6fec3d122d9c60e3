"""Prometheus metrics of the API process.

Business figures (batches by state, phases completed, signatures given) are read from the
record store at scrape time, so they are right across several API processes and after a
restart; only what happens inside this process (request latency, failed signing attempts)
is counted here.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from store.models import Batch, Signature, StepRecord

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds; covers an HTML page (ms) up to an e-signed step waiting on Temporal (s).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RecordStoreCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with Session(self._engine) as session:
            states = session.exec(  # type: ignore[call-overload]
                select(Batch.state, func.count()).group_by(Batch.state)
            ).all()
            phases = session.exec(  # type: ignore[call-overload]
                select(func.count()).select_from(StepRecord).where(StepRecord.version == 1)
            ).scalar_one()
            meanings = session.exec(  # type: ignore[call-overload]
                select(Signature.meaning, func.count()).group_by(Signature.meaning)
            ).all()
        by_state = GaugeMetricFamily(
            "ebr_batches", "Batches in the record store by state", labels=["state"]
        )
        for state, count in states:
            by_state.add_metric([state], count)
        yield by_state
        completed = CounterMetricFamily(
            "ebr_phases_completed", "Phase instances completed (first recorded version)"
        )
        completed.add_metric([], phases)
        yield completed
        signed = CounterMetricFamily(
            "ebr_signatures", "Electronic signatures recorded, by meaning", labels=["meaning"]
        )
        for meaning, count in meanings:
            signed.add_metric([meaning], count)
        yield signed


class ApiMetrics:
    """One registry per app, so tests (and two apps in one process) never share counters."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "ebr_http_request_duration_seconds",
            "API and page request latency",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.signature_failures = Counter(
            "ebr_signature_failures",
            "Failed signing attempts (wrong password, locked account), by route",
            ["route"],
            registry=self.registry,
        )
        self.login_failures = Counter(
            "ebr_login_failures", "Failed logins (wrong user id or password, locked account)",
            registry=self.registry,
        )
        if engine is not None:
            self.registry.register(RecordStoreCollector(engine))

    def authentication_failed(self, route: str) -> None:
        if route.endswith("/auth/login"):
            self.login_failures.inc()
        else:
            self.signature_failures.labels(route=route).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
