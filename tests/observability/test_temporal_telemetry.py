"""The worker's Temporal client exports the SDK's Prometheus metrics, and OpenTelemetry
tracing wraps workflows and activities when switched on (real local Temporal server)."""

from __future__ import annotations

import socket
import uuid
from datetime import timedelta

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from observability.temporal import ObservabilityError, sdk_runtime, tracing_interceptors


@activity.defn
async def record_ping(name: str) -> str:
    return f"recorded {name}"


@workflow.defn
class PingWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            record_ping, name, start_to_close_timeout=timedelta(seconds=10)
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _run_ping(client: Client) -> str:
    queue = f"telemetry-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[PingWorkflow],
                      activities=[record_ping], workflow_runner=UnsandboxedWorkflowRunner()):
        return await client.execute_workflow(
            PingWorkflow.run, "B-1", id=f"ping-{uuid.uuid4().hex}", task_queue=queue,
            execution_timeout=timedelta(seconds=30),
        )


async def test_the_worker_serves_the_sdk_metrics_for_prometheus(temporal_env):
    address = f"127.0.0.1:{_free_port()}"
    runtime = sdk_runtime(address)
    assert runtime is not None
    target = temporal_env.client.service_client.config.target_host
    client = await Client.connect(target, runtime=runtime)
    assert await _run_ping(client) == "recorded B-1"
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://{address}/metrics", timeout=5)).text
    assert "temporal_workflow_completed" in text
    assert "temporal_activity_execution_latency" in text


def test_a_malformed_metrics_address_is_refused_with_an_example():
    with pytest.raises(ObservabilityError, match="host:port"):
        sdk_runtime("9464")


def test_tracing_off_adds_no_interceptor():
    assert tracing_interceptors(False) == []


async def test_tracing_on_records_workflow_and_activity_spans(temporal_env):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    target = temporal_env.client.service_client.config.target_host
    client = await Client.connect(target, interceptors=tracing_interceptors(True))
    assert await _run_ping(client) == "recorded B-1"
    names = {span.name for span in exporter.get_finished_spans()}
    assert "StartWorkflow:PingWorkflow" in names
    assert "RunActivity:record_ping" in names
