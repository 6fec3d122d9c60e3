"""What the Temporal client of a process carries for observability: the SDK's own Prometheus
metrics (worker task latencies, poll counts, activity failures) and, optionally,
OpenTelemetry tracing through temporalio's contrib interceptor."""

from __future__ import annotations

from typing import Any

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig


class ObservabilityError(Exception):
    """A setting asks for something this installation cannot do."""


def sdk_runtime(metrics_address: str | None) -> Runtime | None:
    """A Temporal runtime exporting SDK metrics at `host:port`; None keeps the default."""
    if not metrics_address:
        return None
    host, sep, port = metrics_address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ObservabilityError(
            f"EBR_WORKER_METRICS_ADDRESS={metrics_address!r} is not host:port "
            "(e.g. 0.0.0.0:9464 to let Prometheus scrape the worker)."
        )
    metrics = PrometheusConfig(bind_address=metrics_address)
    return Runtime(telemetry=TelemetryConfig(metrics=metrics))


def tracing_interceptors(enabled: bool) -> list[Any]:
    """temporalio's OpenTelemetry interceptor when tracing is switched on.

    Spans go to whatever tracer provider the process configured; `configure_tracing` sets
    one exporting over OTLP/HTTP (the standard OTEL_EXPORTER_OTLP_* variables apply).
    """
    if not enabled:
        return []
    try:
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError as exc:
        raise ObservabilityError(
            "EBR_OTEL_ENABLED is true but OpenTelemetry is not installed: "
            "pip install 'ebr[otel]'."
        ) from exc
    return [TracingInterceptor()]


def configure_tracing(service_name: str) -> None:
    """Install an SDK tracer provider exporting over OTLP/HTTP, once per process."""
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ObservabilityError(
            "EBR_OTEL_ENABLED is true but the OpenTelemetry SDK or OTLP exporter is missing: "
            "pip install 'ebr[otel]'."
        ) from exc
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
