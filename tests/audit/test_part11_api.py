"""Part 11 over HTTP, without Temporal: the first signature of a session, altered
signatures shown as such, administrators without QA rights, users never deleted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from api.app import build_services, create_app
from runtime.seed import demo_user, seed_demo
from settings.config import Settings
from tests.sample_plan import PLAN
from workflows.messages import StepRecordInput

APPROVE = "/api/v1/recipes/{}/versions/1.0.0/approve"


class Site:
    def __init__(self, http: httpx.AsyncClient, svc) -> None:  # type: ignore[no-untyped-def]
        self.http, self.svc = http, svc

    async def token(self, role: str) -> dict[str, str]:
        r = await self.http.post("/api/v1/auth/login", json={
            "username": role, "password": demo_user(role).password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    settings = Settings(var_dir=tmp_path, env="test", site_timezone="Europe/Berlin",
                        _env_file=None)
    svc = build_services(settings)
    seed_demo(svc.engine)
    app = create_app(settings, svc)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as http:
        yield Site(http, svc)


async def test_first_signature_of_a_session_needs_the_user_id_later_ones_do_not(site):
    approver = await site.token("approver")
    password = demo_user("approver").password
    r = await site.http.post(APPROVE.format("VC-BLEND"), headers=approver,
                             json={"password": password})
    assert r.status_code == 422 and r.json()["error"]["code"] == "user_id_required"
    assert site.svc.recipes.get("VC-BLEND", "1.0.0").status == "in_review"
    r = await site.http.post(APPROVE.format("VC-BLEND"), headers=approver,
                             json={"username": "approver", "password": password})
    assert r.status_code == 200 and r.json()["status"] == "approved"
    # The same session signs again: the password alone is enough.
    r = await site.http.post(APPROVE.format("WG-PARA"), headers=approver,
                             json={"password": password})
    assert r.status_code == 200 and r.json()["status"] == "approved"
    # A new session starts over.
    r = await site.http.post(APPROVE.format("COS-CREAM"), headers=await site.token("approver"),
                             json={"password": password})
    assert r.status_code == 422 and r.json()["error"]["code"] == "user_id_required"


async def test_signing_with_another_users_id_is_refused(site):
    r = await site.http.post(APPROVE.format("VC-BLEND"), headers=await site.token("approver"),
                             json={"username": "qa", "password": demo_user("qa").password})
    assert r.status_code == 401 and "not the signed-in user's" in r.json()["error"]["message"]
    assert site.svc.recipes.get("VC-BLEND", "1.0.0").status == "in_review"


async def test_an_altered_signed_value_shows_as_altered_with_its_manifestation(site):
    svc = site.svc
    svc.records.create_batch("B-T", PLAN, {"scale": "SCALE-01"}, "supervisor")
    intent = svc.users.sign(svc.users.get("operator"), demo_user("operator").password,
                            "performed", "operator", username="operator",
                            first_in_session=True)
    svc.records.record_step(StepRecordInput("B-T", "b/b/lod", "u-1", "check", "LOD", "pass",
                                            {"value": "1.1", "unit": "percent"}, intent))
    qa = await site.token("qa")
    step = (await site.http.get("/api/v1/batches/B-T/record", headers=qa)).json()["steps"][0]
    shown = step["signature"]["manifestation"]
    assert step["signature_verified"] is True and shown["status"] == "verified"
    assert shown["text"].startswith("Olivia Operator (operator), performed, ")
    assert shown["signed_at_local"].endswith(("(UTC+01:00)", "(UTC+02:00)"))
    assert step["signature"]["signed_at"].endswith("+00:00")  # stored and signed: UTC

    with svc.engine.begin() as conn:  # someone with database access edits the value
        conn.exec_driver_sql("UPDATE step_records SET values_json = "
                             "'{\"unit\": \"percent\", \"value\": \"0.9\"}'")
    step = (await site.http.get("/api/v1/batches/B-T/record", headers=qa)).json()["steps"][0]
    assert step["signature_verified"] is False
    assert step["signature"]["manifestation"]["status"] == "altered"
    assert "ALTERED" in step["signature"]["manifestation"]["text"]
    login = await site.http.post("/login", data={"username": "qa",
                                                 "password": demo_user("qa").password})
    page = await site.http.get("/batches/B-T",
                               headers={"Cookie": f"ebr_session={login.cookies['ebr_session']}"})
    assert page.status_code == 200 and "ALTERED" in page.text


async def test_being_administrator_grants_no_qa_rights(site):
    admin = await site.token("admin")
    r = await site.http.post("/api/v1/qms/deviations/DEV-000001/disposition", headers=admin,
                             json={"disposition": "accept", "rationale": "x",
                                   "username": "admin", "password": demo_user("admin").password})
    assert r.status_code == 403
    r = await site.http.post("/api/v1/wms/lots/MCC-2602/status", headers=admin, json={
        "status": "released", "reason": "CoA ok", "username": "admin",
        "password": demo_user("admin").password})
    assert r.status_code == 403
    assert (await site.http.get("/api/v1/audit", headers=admin)).status_code == 403
    site.svc.records.create_batch("B-ADM", PLAN, {"scale": "SCALE-01"}, "supervisor")
    r = await site.http.post("/api/v1/batches/B-ADM/release", headers=admin, json={
        "decision": "released", "username": "admin", "password": demo_user("admin").password})
    assert r.status_code == 403 and "qa role" in r.json()["error"]["message"]


async def test_users_cannot_be_deleted_over_the_api_and_ids_stay_taken(site):
    admin = await site.token("admin")
    r = await site.http.delete("/api/v1/users/operator", headers=admin)
    assert r.status_code in (404, 405)
    app = site.http._transport.app  # type: ignore[attr-defined]
    deleting = [c.path for c in iter_route_contexts(app.routes) if "DELETE" in (c.methods or ())]
    assert deleting == []  # no route deletes anything: users, audit entries, signatures
    await site.http.post("/api/v1/users/operator/deactivate", headers=admin,
                         json={"reason": "left"})
    r = await site.http.post("/api/v1/users", headers=admin, json={
        "username": "operator", "full_name": "New Operator", "roles": ["operator"],
        "password": "temporary-pass-1", "reason": "rehire"})
    assert r.status_code == 409 and "never reused" in r.json()["error"]["message"]
    listed = {u["username"]: u for u in (await site.http.get("/api/v1/users",
                                                             headers=admin)).json()}
    assert listed["operator"]["active"] is False


async def test_an_administrator_set_password_blocks_signing_until_changed(site):
    admin = await site.token("admin")
    await site.http.post("/api/v1/users", headers=admin, json={
        "username": "ann", "full_name": "Ann Approver", "roles": ["approver"],
        "password": "temporary-pass-1", "reason": "new approver"})
    r = await site.http.post("/api/v1/auth/login",
                             json={"username": "ann", "password": "temporary-pass-1"})
    ann = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await site.http.post(APPROVE.format("VC-BLEND"), headers=ann,
                             json={"username": "ann", "password": "temporary-pass-1"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "password_change_required"
    r = await site.http.post("/api/v1/auth/password", headers=ann, json={
        "current_password": "temporary-pass-1", "new_password": "only-ann-knows-2"})
    ann = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await site.http.post(APPROVE.format("VC-BLEND"), headers=ann,
                             json={"username": "ann", "password": "only-ann-knows-2"})
    assert r.status_code == 200, r.text


async def test_reusing_a_recent_password_is_refused_over_the_api(site):
    qa = await site.token("qa")
    old = demo_user("qa").password
    r = await site.http.post("/api/v1/auth/password", headers=qa, json={
        "current_password": old, "new_password": "qa-second-pass-2"})
    qa = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await site.http.post("/api/v1/auth/password", headers=qa, json={
        "current_password": "qa-second-pass-2", "new_password": old})
    assert r.status_code == 422 and "used recently" in r.json()["error"]["message"]
