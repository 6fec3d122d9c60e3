"""EBR_WMS_URL / EBR_QMS_URL select the HTTP adapters in both composition roots: the API's
routes and the worker's activities then reach the external systems (a fake WMS and QMS on
loopback here); unset, both use the built-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from activities.qms import QmsActivities
from activities.wms import WmsActivities
from api.app import build_services, create_app
from qms import messages as q
from qms.builtin import BuiltinQms
from qms.http_adapter import HttpQms
from qms.port import QmsError
from runtime.seed import seed_demo
from runtime.worker_main import production_activities
from settings.config import Settings
from store.external_journal import JournaledQms, JournaledWms
from tests.logins import bearer
from tests.wms.fake_server import FakeServer, Fault, serve
from tests.wms.test_erp import batch_row
from wms import messages as m
from wms.builtin import BuiltinWms
from wms.http_adapter import HttpWms
from wms.port import WmsError


@pytest.fixture
def remote(wms: BuiltinWms, engine: Engine) -> Iterator[tuple[FakeServer, FakeServer]]:
    """An 'external' WMS and QMS: the built-ins on their own database, behind HTTP."""
    qms = BuiltinQms(engine, wms)
    wms_routes = {"lots/get": (wms.lot, m.LotQuery),
                  "scan/verify": (wms.verify_scan, m.ScanRequest),
                  "genealogy/backward": (wms.backward, m.GenealogyQuery)}
    qms_routes = {"deviations/open": (qms.open_deviation, q.OpenDeviationRequest),
                  "deviations/open-for-batch": (qms.open_deviations, q.OpenDeviationsQuery)}
    with (serve(FakeServer(routes=wms_routes, business_errors=(WmsError,))) as fake_wms,
          serve(FakeServer(routes=qms_routes, business_errors=(QmsError,))) as fake_qms):
        yield fake_wms, fake_qms


def settings_for(tmp_path: Path, wms_url: str | None, qms_url: str | None) -> Settings:
    return Settings(var_dir=tmp_path / "site", env="test", wms_url=wms_url, qms_url=qms_url,
                    wms_timeout_s=0.5, qms_timeout_s=0.5, _env_file=None)


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("EBR_WMS_URL", "http://wms.example:8080/v1")
    monkeypatch.setenv("EBR_WMS_TIMEOUT_S", "2.5")
    settings = Settings(_env_file=None)
    assert (settings.wms_url, settings.wms_timeout_s, settings.qms_url) == (
        "http://wms.example:8080/v1", 2.5, None)


def test_worker_activities_use_the_adapters_only_when_urls_are_set(tmp_path):
    def ports(settings: Settings) -> tuple[object, object]:
        acts = production_activities(settings)
        wms = next(a for a in acts if isinstance(a, WmsActivities)).wms
        qms = next(a for a in acts if isinstance(a, QmsActivities)).qms
        return wms, qms

    wms, qms = ports(settings_for(tmp_path, None, None))
    assert isinstance(wms, BuiltinWms) and isinstance(qms, BuiltinQms)
    wms, qms = ports(settings_for(tmp_path, "http://127.0.0.1:9/v1", "http://127.0.0.1:9/q"))
    # The adapters, journaled so the eBMR lists what the external systems confirmed.
    assert isinstance(wms, JournaledWms) and isinstance(qms, JournaledQms)
    assert isinstance(wms.inner, HttpWms) and isinstance(qms.inner, HttpQms)
    assert wms.inner.exchange.http.timeout.read == 0.5


@pytest.fixture
async def api(tmp_path: Path, remote: tuple[FakeServer, FakeServer]
              ) -> AsyncIterator[tuple[httpx.AsyncClient, FakeServer, FakeServer]]:
    fake_wms, fake_qms = remote
    settings = settings_for(tmp_path, fake_wms.url, fake_qms.url)
    (tmp_path / "site").mkdir()
    svc = build_services(settings)
    seed_demo(svc.engine)
    app = create_app(settings, svc)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as http:
        batch_row(svc.engine, "B-X", "running")
        yield http, fake_wms, fake_qms


async def test_api_routes_reach_the_external_wms_and_qms(api):
    http, fake_wms, fake_qms = api
    op = await bearer(http, "operator")
    r = await http.get("/api/v1/wms/lots/ASC-2601", headers=op)
    assert r.status_code == 200 and r.json()["on_hand"] == "25"
    assert fake_wms.seen[-1][0] == "lots/get"
    scan = await http.post("/api/v1/wms/scan/verify", headers=op, json={
        "raw": "]C1010760123456001310ASC-2603", "material_code": "RM-ASC"})
    assert scan.status_code == 409 and scan.json()["error"]["code"] == "lot_on_hold"
    r = await http.post("/api/v1/qms/deviations", headers={**op, "Idempotency-Key": "dev-1"},
                        json={"batch_id": "B-X", "classification": "minor", "title": "Spill",
                              "description": "50 g spilled at the scale"})
    assert r.status_code == 201, r.text
    assert fake_qms.seen[-1][1]["Idempotency-Key"] == "dev-1"
    listed = await http.get("/api/v1/qms/deviations?batch_id=B-X", headers=op)
    assert [d["title"] for d in listed.json()] == ["Spill"]


async def test_local_only_operations_are_refused_with_an_external_wms(api):
    http, _, _ = api
    sup = await bearer(http, "supervisor")
    r = await http.get("/api/v1/wms/stock", headers=sup)
    assert r.status_code == 409 and "external WMS" in r.json()["error"]["message"]


async def test_an_external_outage_is_503_and_a_bad_answer_502(api):
    http, fake_wms, _ = api
    op = await bearer(http, "operator")
    fake_wms.faults["lots/get"] = [Fault(status=503, body={}), Fault(body={"lot": 1})]
    r = await http.get("/api/v1/wms/lots/ASC-2601", headers=op)
    assert r.status_code == 503 and r.json()["error"]["code"] == "system_unavailable"
    r = await http.get("/api/v1/wms/lots/ASC-2601", headers=op)
    assert r.status_code == 502 and r.json()["error"]["code"] == "contract_violation"
