"""Request ids, Prometheus metrics and readiness of the API process, over real HTTP calls
into the app with a real SQLite record store."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.app import build_services, create_app
from runtime.seed import seed_demo
from settings.config import Settings
from store.models import Batch


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # Nothing listens on the Temporal address: readiness must say so, quickly.
    settings = Settings(
        var_dir=tmp_path, env="test", temporal_address=f"127.0.0.1:{_closed_port()}",
        _env_file=None,
    )
    svc = build_services(settings)
    seed_demo(svc.engine)
    app = create_app(settings, svc)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


async def test_every_response_carries_a_request_id_and_a_callers_id_is_echoed(http):
    first = await http.get("/healthz")
    second = await http.get("/healthz")
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    echoed = await http.get("/healthz", headers={"X-Request-ID": "tablet-7.req-42"})
    assert echoed.headers["x-request-id"] == "tablet-7.req-42"


async def test_a_hostile_request_id_is_replaced_not_logged(http):
    r = await http.get("/healthz", headers={"X-Request-ID": "x" * 65})
    assert r.headers["x-request-id"] != "x" * 65
    r = await http.get("/healthz", headers={"X-Request-ID": "a\\nb<script>"})
    assert "<" not in r.headers["x-request-id"]


async def test_latency_is_labelled_by_route_template_not_by_batch_id(http):
    await http.get("/api/v1/batches/B-SECRET-1")  # 401: no token, still measured
    text = (await http.get("/metrics")).text
    assert 'route="/api/v1/batches/{batch_id}"' in text
    assert "B-SECRET-1" not in text
    count = samples(text)[(
        "ebr_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/api/v1/batches/{batch_id}"), ("status", "401")),
    )]
    assert count == 1


async def test_batches_by_state_come_from_the_record_store(http):
    svc = http.app.state.services
    from sqlmodel import Session

    with Session(svc.engine) as session:
        for i, state in enumerate(["running", "running", "released"]):
            session.add(Batch(batch_id=f"B-{i}", recipe_id="R", recipe_version="1.0.0",
                              recipe_sha256="0" * 64, product_code="P", product_name="P",
                              batch_size="1", batch_unit="kg",
                              state=state, created_by="supervisor", plan_json="{}"))
        session.commit()
    found = samples((await http.get("/metrics")).text)
    assert found[("ebr_batches", (("state", "running"),))] == 2
    assert found[("ebr_batches", (("state", "released"),))] == 1


async def test_failed_logins_are_counted_apart_from_signature_failures(http):
    for _ in range(2):
        r = await http.post("/api/v1/auth/login",
                            json={"username": "operator", "password": "wrong-password"})
        assert r.status_code == 401
    found = samples((await http.get("/metrics")).text)
    assert found[("ebr_login_failures_total", ())] == 2
    assert not any(name == "ebr_signature_failures_total" for name, _ in found)


async def test_readiness_names_the_dependency_that_is_down(http):
    r = await http.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["temporal"].startswith("unreachable")


async def test_readiness_is_ok_when_temporal_answers(tmp_path, temporal_env):
    settings = Settings(var_dir=tmp_path, env="test", _env_file=None)
    svc = build_services(settings)
    svc._client = temporal_env.client
    app = create_app(settings, svc)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "temporal": "ok"}}


async def test_metrics_can_be_switched_off(tmp_path):
    settings = Settings(var_dir=tmp_path, env="test", metrics_enabled=False, _env_file=None)
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as client:
        assert (await client.get("/metrics")).status_code == 404



async def test_each_request_writes_one_access_line_with_its_request_id(http, caplog):
    import json
    import logging

    from observability.logs import JsonFormatter

    with caplog.at_level(logging.INFO, logger="ebr.access"):
        r = await http.get("/api/v1/batches/B-9", headers={"X-Request-ID": "req-abc"})
    lines = [json.loads(JsonFormatter().format(rec)) for rec in caplog.records
             if rec.name == "ebr.access"]
    assert len(lines) == 1
    assert lines[0]["request_id"] == "req-abc"
    assert lines[0]["status"] == r.status_code == 401
    assert lines[0]["message"] == "GET /api/v1/batches/{batch_id} 401"
