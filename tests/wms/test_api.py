"""WMS and QMS over the HTTP API: stock and genealogy reads, receipts, moves and
adjustments replayed by key and audited, returns of unused material, batch output, scan
refusals that say what is wrong, QA lot status with a signature, and the deviation
lifecycle with a signed disposition."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select

from api.app import build_services, create_app
from runtime.seed import demo_user, seed_demo
from settings.config import Settings
from store.models import AuditEvent
from tests.logins import bearer
from tests.wms.test_erp import batch_row
from wms import messages as m
from wms.builtin import BuiltinWms
from wms.seed import seed_inventory


class Client:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def as_(self, role: str) -> dict[str, str]:
        return await bearer(self.http, role)


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
                                     "username": "qa", "password": "wrong"})
    assert r.status_code == 401
    r = await client.http.post("/api/v1/wms/lots/MCC-2602/status", headers=qa,
                               json={"status": "released", "reason": "CoA ok",
                                     "username": "qa", "password": demo_user("qa").password})
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
    client, wms = api
    batch_row(wms.engine, "B-7", "running")
    op = await client.as_("operator")
    r = await client.http.post("/api/v1/qms/deviations", headers=op, json={
        "batch_id": "B-7", "phase_instance": "dispensing/weigh/weigh-mcc#1",
        "classification": "major", "title": "Spill", "description": "200 g spilled",
        "lots": ["MCC-2601"]})
    assert r.status_code == 201, r.text
    dev = r.json()["deviation_id"]
    qa = await client.as_("qa")
    body = {"disposition": "accept", "rationale": "Re-dispensed", "capa_ref": "CAPA-7",
            "username": "qa", "password": demo_user("qa").password}
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


async def test_moves_and_adjustments_are_audited_and_checked(api):
    client, wms = api
    sup = await client.as_("supervisor")
    move = {"lot_number": "ASC-2601", "from_bin": "WH-A-01", "to_bin": "WH-A-02",
            "quantity": "5000", "unit": "g"}
    r = await client.http.post("/api/v1/wms/moves", json=move,
                               headers={**sup, "Idempotency-Key": "mv-1"})
    assert r.status_code == 201, r.text
    again = await client.http.post("/api/v1/wms/moves", json=move,
                                   headers={**sup, "Idempotency-Key": "mv-1"})
    assert again.json()["replayed"] is True
    bins = {s["bin_code"]: s["quantity"] for s in wms.stock(lot_number="ASC-2601")}
    assert bins == {"WH-A-01": "20", "WH-A-02": "5"}
    adjust = {"lot_number": "ASC-2601", "bin_code": "WH-A-02", "delta": "-0.25", "unit": "kg",
              "reason": "Cycle count CC-12"}
    r = await client.http.post("/api/v1/wms/adjustments", json=adjust, headers=sup)
    assert r.status_code == 201, r.text
    assert wms.lot(m.LotQuery("ASC-2601")).on_hand == "24.75"
    r = await client.http.post("/api/v1/wms/adjustments", headers=sup,
                               json={**adjust, "delta": "-9"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_stock"
    r = await client.http.post("/api/v1/wms/adjustments", headers=sup,
                               json={**adjust, "reason": ""})
    assert r.status_code == 422
    r = await client.http.post("/api/v1/wms/moves", json=move,
                               headers=await client.as_("operator"))
    assert r.status_code == 403
    with Session(wms.engine) as s:
        actions = [(e.action, e.actor, json.loads(e.detail_json)) for e in s.exec(
            select(AuditEvent).where(col(AuditEvent.action).in_(("wms.move", "wms.adjust"))))]
    assert [(a, who) for a, who, _ in actions] == [("wms.move", "supervisor"),
                                                 ("wms.adjust", "supervisor")]
    assert actions[1][2]["reason"] == "Cycle count CC-12"


async def test_unused_material_is_returned_to_stock_and_netted_out_of_genealogy(api):
    client, wms = api
    wms.issue(m.IssueRequest(key="i-1", batch_id="B-8", phase_instance="p#1", line=1,
                             material_code="RM-ASC", lot_number="ASC-2601", quantity="1.5",
                             unit="kg", actor="olivia"))
    op = await client.as_("operator")
    back = {"batch_id": "B-8", "phase_instance": "p#1", "line": 1, "lot_number": "ASC-2601",
            "quantity": "300", "unit": "g", "to_bin": "WH-A-01"}
    r = await client.http.post("/api/v1/wms/returns", json=back, headers=op)
    assert r.status_code == 201, r.text
    assert wms.lot(m.LotQuery("ASC-2601")).on_hand == "23.8"
    r = await client.http.post("/api/v1/wms/returns", json={**back, "quantity": "2000"},
                               headers=op)
    assert r.status_code == 422 and "Only 1.2 kg" in r.json()["error"]["message"]
    sup = await client.as_("supervisor")
    r = await client.http.post("/api/v1/wms/outputs", headers=sup, json={
        "batch_id": "B-8", "material_code": "VC-BLEND-500", "lot_number": "VC-0008",
        "quantity": "2", "unit": "kg", "to_bin": "FG-01"})
    assert r.status_code == 201, r.text
    assert [(x["input_lot"], x["quantity"]) for x in r.json()["inputs"]] == [("ASC-2601", "1.2")]
    fwd = (await client.http.get("/api/v1/wms/genealogy/forward/ASC-2601", headers=op)).json()
    assert [(x["batch_id"], x["output_lot"], x["quantity"]) for x in fwd["links"]] == [
        ("B-8", "VC-0008", "1.2")]
    assert (await client.http.get("/api/v1/wms/lots/VC-0008", headers=op)).json()[
        "status"] == "quarantine"


@pytest.mark.parametrize(("raw", "expected_lot", "code", "message"), [
    ("]C1010760123456002010MCC-2601", "", "wrong_material",
     "This label is RM-MCC Microcrystalline cellulose PH-102, but this step needs RM-ASC"),
    ("]C1010760123456001310ASC-2602", "ASC-2601", "wrong_lot",
     "lot ASC-2601 was picked for this step"),
    ("]C1010760123456001310ASC-2401", "", "lot_expired", "ASC-2401 expired on 2025-12-31"),
    ("]C1010760123456001310ASC-2603", "", "lot_on_hold", "ASC-2603 is on hold"),
    ("]C1010760123456001910ASC-2601", "", "bad_scan", "Check digit"),
])
async def test_scan_refusals_say_what_is_wrong(api, raw, expected_lot, code, message):
    client, _ = api
    r = await client.http.post("/api/v1/wms/scan/verify", headers=await client.as_("operator"),
                               json={"raw": raw, "material_code": "RM-ASC",
                                     "expected_lot": expected_lot})
    assert r.status_code in (409, 422) and r.json()["error"]["code"] == code, r.text
    assert message in r.json()["error"]["message"]


async def test_the_right_lot_scans_with_its_gtin_and_expiry(api):
    client, _ = api
    r = await client.http.post("/api/v1/wms/scan/verify", headers=await client.as_("operator"),
                               json={"raw": "(01)07601234560013(17)280630(10)ASC-2601",
                                     "material_code": "RM-ASC", "expected_lot": "ASC-2601"})
    assert r.status_code == 200, r.text
    assert (r.json()["gtin"], r.json()["expiry"]) == ("07601234560013", "2028-06-30")


@pytest.mark.parametrize(("change", "status", "code", "message"), [
    ({"batch_id": "B-NOPE"}, 404, "unknown_batch", "Batch B-NOPE does not exist"),
    ({"phase_instance": "blending/blend/blend#1"}, 404, "unknown_phase", "no phase"),
    ({"lots": ["NOPE-1"]}, 404, "unknown_lot", "Lot 'NOPE-1' is not in the WMS"),
    ({"batch_id": "", "phase_instance": "x"}, 422, "invalid_request", "give batch_id"),
    ({"classification": "severe"}, 422, "invalid_request", "classification"),
])
async def test_a_deviation_naming_what_does_not_exist_is_refused(api, change, status, code,
                                                                 message):
    client, wms = api
    batch_row(wms.engine, "B-7", "running")
    body = {"batch_id": "B-7", "phase_instance": "dispensing/weigh/weigh-mcc#1",
            "classification": "minor", "title": "Spill", "description": "200 g spilled",
            "lots": ["MCC-2601"]} | change
    r = await client.http.post("/api/v1/qms/deviations", json=body,
                               headers=await client.as_("operator"))
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and message in r.json()["error"]["message"]
    assert (await client.http.get("/api/v1/qms/deviations", headers=await client.as_("qa"))
            ).json() == []
