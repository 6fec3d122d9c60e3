"""The ERP and QMS boundary through the HTTP API with a real worker on a real local Temporal
server: a production request becomes a process order and its batch (started through the
batch API's own path, at the ordered size); an operator's open deviation blocks QA's
release until QA signs its disposition; the released batch's confirmation reaches a fake
ERP on loopback exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from runtime.seed import demo_user
from settings.config import Settings
from tests.app_rig import AppRig, app_with_worker
from tests.logins import bearer
from tests.wms.fake_erp import FakeErp, serve_erp
from wms.erp_relay import relay_round

MINI = (Path(__file__).parent / "data" / "mini-pack.yaml").read_text(encoding="utf-8")
ORDER = {"order_id": "PO-77", "product": {"code": "MINI-500"},
         "quantity": {"value": "10000", "unit": "g"}, "due": "2026-12-01",
         "recipe": {"id": "MINI-PACK"}}


class Api:
    def __init__(self, rig: AppRig) -> None:
        self.rig, self.http = rig, rig.http

    async def as_(self, role: str) -> dict[str, str]:
        return await bearer(self.http, role)

    async def post(self, path: str, role: str, body: dict | None = None,
                   password: bool = False) -> httpx.Response:
        body = dict(body or {})
        if password:
            body["username"] = demo_user(role).username
            body["password"] = demo_user(role).password
        return await self.http.post(path, json=body, headers=await self.as_(role))


@pytest.fixture
async def api(temporal_env, tmp_path: Path) -> AsyncIterator[Api]:  # type: ignore[no-untyped-def]
    async with app_with_worker(temporal_env, tmp_path, "erp") as rig:
        api = Api(rig)
        r = await api.post("/api/v1/recipes", "author", {"yaml": MINI, "filename": "mini.yaml"})
        assert r.status_code in (200, 201), r.text
        r = await api.post("/api/v1/recipes/MINI-PACK/versions/1.0.0/submit", "author")
        assert r.status_code == 200, r.text
        r = await api.post("/api/v1/recipes/MINI-PACK/versions/1.0.0/approve", "approver",
                           password=True)
        assert r.status_code == 200, r.text
        yield api


async def test_order_to_batch_deviation_blocks_release_then_confirmation_reaches_erp(
        api, tmp_path):
    r = await api.post("/api/v1/erp/process-orders", "supervisor", ORDER)
    assert r.status_code == 201, r.text
    again = await api.post("/api/v1/erp/process-orders", "supervisor", ORDER)
    assert again.status_code == 200 and again.json()["status"] == "received"

    r = await api.post("/api/v1/erp/process-orders/PO-77/start", "supervisor")
    assert r.status_code == 201, r.text
    batch = r.json()["batch"]
    assert (batch["batch_id"], batch["recipe_version"]) == ("PO-77", "1.0.0")
    assert (batch["batch_size"], batch["batch_unit"]) == ("10", "kg")
    assert r.json()["order"]["status"] == "started"
    repeat = await api.post("/api/v1/erp/process-orders/PO-77/start", "supervisor")
    assert repeat.status_code == 201 and repeat.json()["batch"]["batch_id"] == "PO-77"

    # The operator weighs (issued from the WMS, FEFO) and performs the last step.
    url = "/api/v1/batches/PO-77/steps"
    weigh, fill = batch["steps"]
    api.rig.scale.grams = Decimal("100.00")
    assert (await api.post(f"{url}/{weigh}/weigh", "operator")).status_code == 200
    for step in (weigh, fill):
        r = await api.post(f"{url}/{step}/complete", "operator", password=True)
        assert r.status_code == 200, r.text

    # An operator raises a deviation with a reason; QA cannot release until it is closed.
    r = await api.post("/api/v1/qms/deviations", "operator", {
        "batch_id": "PO-77", "phase_instance": fill, "classification": "minor",
        "title": "Drum label smudged", "description": "Relabelled drum 2 of 3.",
        "lots": ["MCC-2601"]})
    assert r.status_code == 201, r.text
    deviation = r.json()["deviation_id"]
    release = {"decision": "released", "reason": "Record reviewed"}
    r = await api.post("/api/v1/batches/PO-77/release", "qa", release, password=True)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "open_deviations"
    assert deviation in r.json()["error"]["message"]
    r = await api.post(f"/api/v1/qms/deviations/{deviation}/disposition", "qa",
                       {"disposition": "accept", "rationale": "Cosmetic; label replaced"},
                       password=True)
    assert r.status_code == 200 and r.json()["status"] == "closed", r.text
    r = await api.post("/api/v1/batches/PO-77/release", "qa", release, password=True)
    assert r.status_code == 200, r.text

    # The relay queues the released batch's confirmation and delivers it once.
    with serve_erp(FakeErp()) as erp:
        settings = Settings(var_dir=tmp_path, env="test", erp_url=erp.url, _env_file=None)
        engine, wms = api.rig.services.engine, api.rig.services.wms
        assert relay_round(settings, engine, wms).delivered == 1
        assert relay_round(settings, engine, wms).delivered == 0
    (sent,) = erp.ledger.values()
    assert (sent["order_id"], sent["batch_id"]) == ("PO-77", "PO-77")
    assert (sent["good"], sent["scrap"]) == ({"value": "10000", "unit": "g"},
                                             {"value": "0", "unit": "g"})
    assert sent["consumption"] == [{"lot": "MCC-2601", "material": "RM-MCC",
                                    "quantity": "0.1", "unit": "kg"}]
    listed = (await api.http.get("/api/v1/erp/outbox",
                                 headers=await api.as_("auditor"))).json()
    assert [(x["key"], x["status"]) for x in listed] == [("confirmation:PO-77", "delivered")]
    order = (await api.http.get("/api/v1/erp/process-orders/PO-77",
                                headers=await api.as_("auditor"))).json()
    assert order["status"] == "confirmed"


async def test_orders_that_cannot_run_are_refused_before_a_batch_starts(api):
    other = {**ORDER, "order_id": "PO-78", "product": {"code": "VC-BLEND-500"}}
    assert (await api.post("/api/v1/erp/process-orders", "supervisor", other)).status_code == 201
    r = await api.post("/api/v1/erp/process-orders/PO-78/start", "supervisor")
    assert r.status_code == 409 and r.json()["error"]["code"] == "wrong_product"
    assert "MINI-500" in r.json()["error"]["message"]
    changed = {**ORDER, "order_id": "PO-78"}
    r = await api.post("/api/v1/erp/process-orders", "supervisor", changed)
    assert r.status_code == 409 and "new order id" in r.json()["error"]["message"]
    r = await api.post("/api/v1/erp/process-orders", "supervisor", {"order_id": "PO-79"})
    assert r.status_code == 422 and "lacks 'product.code'" in r.json()["error"]["message"]
    r = await api.post("/api/v1/erp/process-orders/PO-404/start", "supervisor")
    assert r.status_code == 404
    r = await api.post("/api/v1/erp/process-orders", "operator", ORDER)
    assert r.status_code == 403
    batches = (await api.http.get("/api/v1/batches", headers=await api.as_("qa"))).json()
    assert batches == []
