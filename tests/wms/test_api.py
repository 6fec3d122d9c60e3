"""WMS and QMS over the HTTP API: stock and genealogy reads, receipts replayed by key,
QA lot status with a signature, and the deviation lifecycle with a signed disposition."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import build_services, create_app
from runtime.seed import demo_user, seed_demo
from settings.config import Settings
from wms import messages as m
from wms.builtin import BuiltinWms
from wms.seed import seed_inventory


class Client:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def as_(self, role: str) -> dict[str, str]:
        user = demo_user(role)
        r = await self.http.post("/api/v1/auth/login",
                                 json={"username": user.username, "password": user.password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[Client, BuiltinWms]]:
    settings = Settings(var_dir=tmp_path, env="test", _env_file=None)
    svc = build_services(settings)
    seed_demo(svc.engine)
    seed_inventory(svc.engine)
    app = create_app(settings, svc)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as http:
        yield Client(http), BuiltinWms(svc.engine)


async def test_receipt_is_replayed_by_key_and_starts_in_quarantine(api):
    client, _ = api
    headers = {**await client.as_("supervisor"), "Idempotency-Key": "grn-1"}
    body = {"material_code": "RM-MCC", "lot_number": "MCC-2603", "quantity": "20",
            "unit": "kg", "bin_code": "WH-A-01", "expiry": "2031-01-31"}
    first = await client.http.post("/api/v1/wms/receipts", json=body, headers=headers)
    again = await client.http.post("/api/v1/wms/receipts", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["replayed"] is True
    r = await client.http.get("/api/v1/wms/lots/MCC-2603", headers=headers)
    assert (r.json()["status"], r.json()["on_hand"]) == ("quarantine", "20")
    refused = await client.http.post("/api/v1/wms/receipts", json=body,
                                     headers=await client.as_("operator"))
    assert refused.status_code == 403


async def test_lot_hold_and_signed_release_by_qa(api):
    client, _ = api
    qa = await client.as_("qa")
    r = await client.http.post("/api/v1/wms/lots/MCC-2602/status", headers=qa,
                               json={"status": "released", "reason": "CoA ok",
                                     "password": "wrong"})
    assert r.status_code == 401
    r = await client.http.post("/api/v1/wms/lots/MCC-2602/status", headers=qa,
                               json={"status": "released", "reason": "CoA ok",
                                     "password": demo_user("qa").password})
    assert r.status_code == 200, r.text
    assert (r.json()["old_status"], r.json()["status"]) == ("quarantine", "released")
    r = await client.http.post("/api/v1/wms/lots/MCC-2602/status", headers=qa,
                               json={"status": "on_hold", "reason": "Complaint C-9"})
    assert r.json()["status"] == "on_hold"
    scan = await client.http.post("/api/v1/wms/scan/verify", headers=qa, json={
        "raw": "]C1010760123456002010MCC-2602", "material_code": "RM-MCC"})
    assert scan.status_code == 409
    assert scan.json()["error"]["code"] == "lot_on_hold"
    assert "Complaint C-9" in scan.json()["error"]["message"]


async def test_genealogy_forward_and_backward(api):
    client, wms = api
    wms.issue(m.IssueRequest(key="i-1", batch_id="B-7", phase_instance="p#1", line=1,
                             material_code="RM-ASC", lot_number="ASC-2601", quantity="1200",
                             unit="g", actor="olivia"))
    wms.record_output(m.OutputRequest(key="o-1", batch_id="B-7", material_code="VC-BLEND-500",
                                      lot_number="VC-0007", quantity="2", unit="kg",
                                      to_bin="FG-01", actor="sam"))
    headers = await client.as_("auditor")
    fwd = (await client.http.get("/api/v1/wms/genealogy/forward/ASC-2601",
                                 headers=headers)).json()
    assert [(x["batch_id"], x["output_lot"]) for x in fwd["links"]] == [("B-7", "VC-0007")]
    back = (await client.http.get("/api/v1/wms/genealogy/backward/VC-0007",
                                  headers=headers)).json()
    assert [(x["input_lot"], x["quantity"], x["unit"]) for x in back["links"]] == [
        ("ASC-2601", "1.2", "kg")]
    missing = await client.http.get("/api/v1/wms/genealogy/backward/NOPE", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_lot"


async def test_deviation_raised_investigated_and_dispositioned_with_signature(api):
    client, _ = api
    op = await client.as_("operator")
    r = await client.http.post("/api/v1/qms/deviations", headers=op, json={
        "batch_id": "B-7", "phase_instance": "dispensing/weigh/weigh-mcc#1",
        "classification": "major", "title": "Spill", "description": "200 g spilled",
        "lots": ["MCC-2601"]})
    assert r.status_code == 201, r.text
    dev = r.json()["deviation_id"]
    qa = await client.as_("qa")
    body = {"disposition": "accept", "rationale": "Re-dispensed", "capa_ref": "CAPA-7",
            "password": demo_user("qa").password}
    r = await client.http.post(f"/api/v1/qms/deviations/{dev}/disposition", headers=qa,
                               json=body)
    assert r.status_code == 409 and "investigation" in r.json()["error"]["message"]
    await client.http.post(f"/api/v1/qms/deviations/{dev}/notes", headers=qa,
                           json={"note": "Operator retrained"})
    r = await client.http.post(f"/api/v1/qms/deviations/{dev}/disposition", headers=qa,
                               json=body)
    assert r.status_code == 200 and r.json()["status"] == "closed"
    listed = (await client.http.get("/api/v1/qms/deviations?batch_id=B-7", headers=qa)).json()
    assert listed[0]["disposition_by"] == "qa" and listed[0]["notes"][0]["note"]
